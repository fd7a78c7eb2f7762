"""Operations on the organisation: organs, departments, outside bodies, staff and role grants."""

from __future__ import annotations

from sqlmodel import Session, col, select

from core import audit, messages
from core.auth import hash_password, revoke_tokens
from core.clock import utcnow
from core.db import get_by
from core.models import (
    Department,
    Municipality,
    Organ,
    OrganKind,
    OutsideBody,
    OutsideBodyKind,
    Role,
    RoleGrant,
    StaffAccount,
)
from core.reasons import Conflict, InvalidInput, Reason

MIN_PASSWORD_LENGTH = 12

messages.register(
    {
        "core.key_taken": (
            "キー「{key}」は既に使われています。",
            "The key {key!r} is already used.",
        ),
        "core.login_taken": (
            "ログインID「{login}」は既に使われています。",
            "The login ID {login!r} is already used.",
        ),
        "core.password_too_short": (
            "パスワードは{min}文字以上にしてください。",
            "The password must have at least {min} characters.",
        ),
        "core.unknown_organ": ("機関「{key}」が見つかりません。", "Organ {key!r} not found."),
        "core.unknown_department": (
            "部署「{key}」が見つかりません。",
            "Department {key!r} not found.",
        ),
        "core.unknown_account": (
            "職員アカウント「{login}」が見つかりません。",
            "Staff account {login!r} not found.",
        ),
        "core.unknown_grant": ("役割の付与 {id} が見つかりません。", "Role grant {id} not found."),
        "core.unknown_role": ("役割「{role}」はありません。", "There is no role {role!r}."),
        "core.department_outside_organ": (
            "部署「{department}」は機関「{organ}」に属していません。",
            "Department {department!r} does not belong to organ {organ!r}.",
        ),
        "core.municipality_exists": (
            "この環境には既に地方公共団体「{name}」が登録されています（1環境につき1団体）。",
            "This deployment already serves {name} (one municipality per deployment).",
        ),
        "core.grant_exists": (
            "この役割は既に付与されています。",
            "This role is already granted.",
        ),
    }
)


def _ensure_free_key(session: Session, model: type, key: str) -> None:
    if session.exec(select(model).where(model.key == key)).first() is not None:  # type: ignore[attr-defined]
        raise Conflict(Reason.of("core.key_taken", key=key, field="key"))


def create_municipality(
    session: Session, actor: audit.Actor, *, key: str, code: str, name_ja: str, name_en: str
) -> Municipality:
    existing = session.exec(select(Municipality)).first()
    if existing is not None:
        raise Conflict(Reason.of("core.municipality_exists", name=existing.name_ja))
    municipality = Municipality(key=key, code=code, name_ja=name_ja, name_en=name_en)
    session.add(municipality)
    session.flush()
    audit.append(
        session,
        "core.municipality_created",
        actor=actor,
        target_type="municipality",
        target_id=municipality.id,
    )
    return municipality


def get_municipality(session: Session) -> Municipality | None:
    return session.exec(select(Municipality)).first()


def create_organ(
    session: Session, actor: audit.Actor, *, key: str, kind: OrganKind, name_ja: str, name_en: str
) -> Organ:
    municipality = get_municipality(session)
    if municipality is None or municipality.id is None:
        raise InvalidInput(Reason.of("core.unknown_organ", key=key))
    _ensure_free_key(session, Organ, key)
    organ = Organ(
        key=key, municipality_id=municipality.id, kind=kind, name_ja=name_ja, name_en=name_en
    )
    session.add(organ)
    session.flush()
    audit.append(
        session,
        "core.organ_created",
        actor=actor,
        target_type="organ",
        target_id=organ.id,
        details={"key": key, "kind": kind.value},
    )
    return organ


def organ_by_key(session: Session, key: str) -> Organ:
    return get_by(session, Organ, "core.unknown_organ", field="organ", key=key)


def department_by_key(session: Session, key: str) -> Department:
    return get_by(session, Department, "core.unknown_department", field="department", key=key)


def create_department(
    session: Session,
    actor: audit.Actor,
    *,
    key: str,
    organ_key: str,
    name_ja: str,
    name_en: str,
    parent_key: str | None = None,
) -> Department:
    organ = organ_by_key(session, organ_key)
    _ensure_free_key(session, Department, key)
    parent = department_by_key(session, parent_key) if parent_key else None
    if parent is not None and parent.organ_id != organ.id:
        raise InvalidInput(
            Reason.of(
                "core.department_outside_organ",
                department=parent.key,
                organ=organ.key,
                field="parent",
            )
        )
    assert organ.id is not None
    department = Department(
        key=key,
        organ_id=organ.id,
        name_ja=name_ja,
        name_en=name_en,
        parent_id=parent.id if parent else None,
    )
    session.add(department)
    session.flush()
    audit.append(
        session,
        "core.department_created",
        actor=actor,
        target_type="department",
        target_id=department.id,
        details={"key": key, "organ": organ.key},
    )
    return department


def create_outside_body(
    session: Session,
    actor: audit.Actor,
    *,
    key: str,
    kind: OutsideBodyKind,
    name_ja: str,
    name_en: str,
    is_public_body: bool,
) -> OutsideBody:
    _ensure_free_key(session, OutsideBody, key)
    body = OutsideBody(
        key=key, kind=kind, name_ja=name_ja, name_en=name_en, is_public_body=is_public_body
    )
    session.add(body)
    session.flush()
    audit.append(
        session,
        "core.outside_body_created",
        actor=actor,
        target_type="outside_body",
        target_id=body.id,
        details={"key": key, "kind": kind.value},
    )
    return body


def account_by_login(session: Session, login: str) -> StaffAccount:
    return get_by(session, StaffAccount, "core.unknown_account", field="login", login=login)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            Reason.of("core.password_too_short", min=MIN_PASSWORD_LENGTH, field="password")
        )


def create_account(
    session: Session,
    actor: audit.Actor,
    *,
    login: str,
    display_name: str,
    password: str,
    department_key: str | None = None,
) -> StaffAccount:
    if session.exec(select(StaffAccount).where(StaffAccount.login == login)).first() is not None:
        raise Conflict(Reason.of("core.login_taken", login=login, field="login"))
    _check_password(password)
    department = department_by_key(session, department_key) if department_key else None
    account = StaffAccount(
        login=login,
        display_name=display_name,
        password_hash=hash_password(password),
        department_id=department.id if department else None,
    )
    session.add(account)
    session.flush()
    audit.append(
        session,
        "core.account_created",
        actor=actor,
        target_type="staff_account",
        target_id=account.id,
    )
    return account


def set_password(
    session: Session, actor: audit.Actor, account: StaffAccount, password: str
) -> None:
    _check_password(password)
    account.password_hash = hash_password(password)
    revoke_tokens(session, account)
    audit.append(
        session,
        "core.password_changed",
        actor=actor,
        target_type="staff_account",
        target_id=account.id,
    )


def grant_role(
    session: Session,
    actor: audit.Actor,
    *,
    login: str,
    role: Role | str,
    organ_key: str,
    department_key: str | None = None,
) -> RoleGrant:
    try:
        role = Role(role)
    except ValueError as error:
        raise InvalidInput(Reason.of("core.unknown_role", role=str(role), field="role")) from error
    account = account_by_login(session, login)
    organ = organ_by_key(session, organ_key)
    department = department_by_key(session, department_key) if department_key else None
    if department is not None and department.organ_id != organ.id:
        raise InvalidInput(
            Reason.of(
                "core.department_outside_organ",
                department=department.key,
                organ=organ.key,
                field="department",
            )
        )
    assert account.id is not None and organ.id is not None
    duplicate = session.exec(
        select(RoleGrant).where(
            RoleGrant.account_id == account.id,
            RoleGrant.role == role.value,
            RoleGrant.organ_id == organ.id,
            RoleGrant.department_id == (department.id if department else None),
            col(RoleGrant.revoked_at).is_(None),
        )
    ).first()
    if duplicate is not None:
        raise Conflict(Reason.of("core.grant_exists"))
    grant = RoleGrant(
        account_id=account.id,
        role=role,
        organ_id=organ.id,
        department_id=department.id if department else None,
        granted_by=actor.id if actor.type == "staff" else None,
    )
    session.add(grant)
    revoke_tokens(session, account)
    session.flush()
    audit.append(
        session,
        "core.role_granted",
        actor=actor,
        target_type="role_grant",
        target_id=grant.id,
        details={
            "account": account.id,
            "role": role.value,
            "organ": organ.id,
            "department": department.id if department else None,
        },
    )
    return grant


def revoke_role(session: Session, actor: audit.Actor, grant_id: int) -> RoleGrant:
    grant = get_by(session, RoleGrant, "core.unknown_grant", id=grant_id, revoked_at=None)
    grant.revoked_at = utcnow()
    grant.revoked_by = actor.id if actor.type == "staff" else None
    session.add(grant)
    account = session.get(StaffAccount, grant.account_id)
    if account is not None:
        revoke_tokens(session, account)
    audit.append(
        session,
        "core.role_revoked",
        actor=actor,
        target_type="role_grant",
        target_id=grant.id,
        details={"account": grant.account_id, "role": grant.role},
    )
    return grant


def grants_of(session: Session, account_id: int, include_revoked: bool = False) -> list[RoleGrant]:
    query = select(RoleGrant).where(RoleGrant.account_id == account_id)
    if not include_revoked:
        query = query.where(col(RoleGrant.revoked_at).is_(None))
    return list(session.exec(query.order_by(col(RoleGrant.id))).all())


def list_organs(session: Session) -> list[Organ]:
    return list(session.exec(select(Organ).order_by(col(Organ.id))).all())


def list_departments(session: Session) -> list[Department]:
    return list(session.exec(select(Department).order_by(col(Department.id))).all())


def list_outside_bodies(session: Session) -> list[OutsideBody]:
    return list(session.exec(select(OutsideBody).order_by(col(OutsideBody.id))).all())
