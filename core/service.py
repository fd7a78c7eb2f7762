"""Operations on the organisation: organs, departments, outside bodies, staff and role grants."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
from core.reasons import Conflict, DomainError, InvalidInput, NotFound, Reason

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
        "core.unknown_outside_body": (
            "外部機関「{key}」が見つかりません。",
            "Outside body {key!r} not found.",
        ),
        "core.unit_inactive": (
            "{what}「{key}」は無効化されているため、新たに選ぶことはできません。",
            "The {what_en} {key!r} has been deactivated and cannot be chosen for anything new.",
        ),
        "core.already_inactive": (
            "{what}「{key}」は既に無効です。",
            "The {what_en} {key!r} is already deactivated.",
        ),
        "core.already_active": (
            "{what}「{key}」は既に有効です。",
            "The {what_en} {key!r} is already active.",
        ),
        "core.unit_in_use": (
            "{what}「{key}」は、次の記録がまだ指定しているため無効にできません。"
            "先に別の{what}へ移すか、終了してください。",
            "The {what_en} {key!r} cannot be deactivated while the records below still name "
            "it. Move them to another {what_en} or end them first.",
        ),
        "core.still_named": (
            "{ref_what}「{ref_key}」がまだ{what}「{key}」を指定しています。",
            "The {ref_what_en} {ref_key!r} still names the {what_en} {key!r}.",
        ),
        "core.still_named_more": (
            "ほかに{count}件の記録がまだ指定しています。",
            "{count} more records still name it.",
        ),
        "core.public_body_fixed": (
            "外部機関「{key}」が公的機関かどうかは、次の記録が指定している間は変更できません"
            "（経路の種類が変わるため）。",
            "Whether {key!r} is a public body cannot change while the records below name it "
            "(the kind of their routes would change).",
        ),
        "core.department_cycle": (
            "部署「{department}」を「{parent}」の下に置くと、部署の親子関係が循環します。",
            "Placing department {department!r} under {parent!r} would make a cycle.",
        ),
        "core.cannot_deactivate_self": (
            "自分自身のアカウントは無効にできません。",
            "You cannot deactivate your own account.",
        ),
        "core.last_admin": (
            "有効なシステム管理者がほかにいないため、アカウント「{login}」は無効にできません。",
            "Account {login!r} cannot be deactivated: no other active account is an "
            "administrator.",
        ),
    }
)

# How each kind of organisational unit is named in messages and audit events.
UNIT_WORDS: dict[str, tuple[str, str]] = {
    "organ": ("機関", "organ"),
    "department": ("部署", "department"),
    "outside_body": ("外部機関", "outside body"),
    "staff_account": ("職員アカウント", "staff account"),
}
# At most this many blocking records are named one by one; the rest are counted.
MAX_NAMED_REFERENCES = 50


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
    organ = active_organ(session, organ_key)
    _ensure_free_key(session, Department, key)
    parent = active_department(session, parent_key, "parent") if parent_key else None
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
    department = active_department(session, department_key) if department_key else None
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
    organ = active_organ(session, organ_key)
    department = active_department(session, department_key) if department_key else None
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


def list_organs(session: Session, *, active_only: bool = False) -> list[Organ]:
    """Every organ (history names deactivated ones too); `active_only` for choosing anew."""
    query = select(Organ).order_by(col(Organ.id))
    if active_only:
        query = query.where(col(Organ.deactivated_at).is_(None))
    return list(session.exec(query).all())


def list_departments(session: Session, *, active_only: bool = False) -> list[Department]:
    query = select(Department).order_by(col(Department.id))
    if active_only:
        query = query.where(col(Department.deactivated_at).is_(None))
    return list(session.exec(query).all())


def list_outside_bodies(session: Session, *, active_only: bool = False) -> list[OutsideBody]:
    query = select(OutsideBody).order_by(col(OutsideBody.id))
    if active_only:
        query = query.where(col(OutsideBody.deactivated_at).is_(None))
    return list(session.exec(query).all())


# ---------------------------------------------------------------- the organisation's lifecycle

Unit = Organ | Department | OutsideBody
UNIT_MODELS: dict[str, type[Organ] | type[Department] | type[OutsideBody]] = {
    "organ": Organ,
    "department": Department,
    "outside_body": OutsideBody,
}


def unit_kind(unit: Unit) -> str:
    """"organ", "department" or "outside_body" (the audit target type of the unit)."""
    return next(kind for kind, model in UNIT_MODELS.items() if isinstance(unit, model))


def _words(kind: str) -> dict[str, Any]:
    ja, en = UNIT_WORDS[kind]
    return {"what": ja, "what_en": en}


def unit_by_key(session: Session, kind: str, key: str) -> Unit:
    """The organ, department or outside body with `key` (active or not), or NotFound."""
    found: Unit = get_by(session, UNIT_MODELS[kind], _UNKNOWN[kind], field=kind, key=key)
    return found


def require_active(unit: Unit, field: str | None = None) -> None:
    """Refuse a deactivated unit as the choice for anything new (it stays in history)."""
    if not unit.is_active:
        kind = unit_kind(unit)
        raise InvalidInput(Reason.of("core.unit_inactive", key=unit.key,
                                     field=field or kind, **_words(kind)))


_UNKNOWN = {"organ": "core.unknown_organ", "department": "core.unknown_department",
            "outside_body": "core.unknown_outside_body"}


def _chosen(session: Session, kind: str, key: str, field: str) -> Any:
    """The active unit `key`, chosen for a new record. Its row stays share-locked until the
    transaction ends (PostgreSQL; on SQLite the writer holds the whole database), so that a
    deactivation, which locks it for update before it looks for what names it, either sees
    the new record or is seen by this choice: never neither."""
    model = UNIT_MODELS[kind]
    found: Any = session.exec(select(model).where(model.key == key).with_for_update(read=True)
                              .execution_options(populate_existing=True)).first()
    if found is None:
        raise NotFound(Reason.of(_UNKNOWN[kind], field=field, key=key))
    require_active(found, field)
    return found


def active_organ(session: Session, key: str, field: str = "organ") -> Organ:
    """The organ, to be chosen for something new: it must exist and be active (`field` is the
    input that named it)."""
    organ: Organ = _chosen(session, "organ", key, field)
    return organ


def active_department(session: Session, key: str, field: str = "department") -> Department:
    department: Department = _chosen(session, "department", key, field)
    return department


def active_outside_body(session: Session, key: str, field: str = "outside_body") -> OutsideBody:
    body: OutsideBody = _chosen(session, "outside_body", key, field)
    return body


def _lock_for_change(session: Session, unit: Unit) -> None:
    """Lock the unit's row for update and read it afresh (see `_chosen`)."""
    model = type(unit)
    session.exec(select(model).where(model.id == unit.id).with_for_update()
                 .execution_options(populate_existing=True)).one()


@dataclass(frozen=True)
class Reference:
    """A record that still names an organ, department or outside body: it must be moved or
    ended before the unit is deactivated."""

    what_ja: str
    what_en: str
    key: str


# Who still names a unit: core knows its own records (departments, accounts, role grants);
# governance and registry register checks for theirs (routes, purposes, files, jobs), since
# core cannot import them. Each check returns only records in force or still editable.
ReferenceCheck = Callable[[Session, Unit], list[Reference]]
_reference_checks: list[ReferenceCheck] = []


def register_reference_check(check: ReferenceCheck) -> None:
    if check not in _reference_checks:
        _reference_checks.append(check)


def _core_references(session: Session, unit: Unit) -> list[Reference]:
    if isinstance(unit, OutsideBody):
        return []
    found: list[Reference] = []
    department_word = UNIT_WORDS["department"]
    if isinstance(unit, Organ):
        departments = select(Department).where(Department.organ_id == unit.id)
        grant_column: Any = col(RoleGrant.organ_id)
    else:
        departments = select(Department).where(Department.parent_id == unit.id)
        grant_column = RoleGrant.department_id
        accounts = session.exec(select(StaffAccount).where(
            StaffAccount.department_id == unit.id, col(StaffAccount.is_active)
        ).order_by(col(StaffAccount.login))).all()
        found += [Reference(*UNIT_WORDS["staff_account"], a.login) for a in accounts]
    found += [Reference(*department_word, d.key) for d in session.exec(
        departments.where(col(Department.deactivated_at).is_(None)).order_by(col(Department.key)))]
    grants = session.exec(
        select(RoleGrant, StaffAccount)
        .join(StaffAccount, col(StaffAccount.id) == RoleGrant.account_id)
        .where(grant_column == unit.id, col(RoleGrant.revoked_at).is_(None))
        .order_by(col(StaffAccount.login), col(RoleGrant.id))).all()
    found += [Reference("役割の付与", "role grant", f"{account.login}:{grant.role}")
              for grant, account in grants]
    return found


def references_to(session: Session, unit: Unit) -> list[Reference]:
    """Every record in force that still names the unit (core's and every registered check's)."""
    found = _core_references(session, unit)
    for check in _reference_checks:
        found += check(session, unit)
    return found


def _blocked(unit: Unit, code: str, references: list[Reference]) -> DomainError:
    """A Conflict: why (`code`), then each blocking record as a Reason of its own (the first
    MAX_NAMED_REFERENCES, then a count)."""
    kind = unit_kind(unit)
    reasons = [Reason.of(code, key=unit.key, **_words(kind))]
    reasons += [Reason.of("core.still_named", key=unit.key, ref_what=r.what_ja,
                          ref_what_en=r.what_en, ref_key=r.key,
                          refs={"kind": r.what_en, "key": r.key}, **_words(kind))
                for r in references[:MAX_NAMED_REFERENCES]]
    if len(references) > MAX_NAMED_REFERENCES:
        reasons.append(Reason.of("core.still_named_more",
                                 count=len(references) - MAX_NAMED_REFERENCES))
    return Conflict(reasons)


def deactivate_unit(session: Session, actor: audit.Actor, unit: Unit) -> Unit:
    """Deactivate an organ, department or outside body; refused (each blocking record named)
    while a route, file, purpose, grant, department or account in force still names it."""
    kind = unit_kind(unit)
    _lock_for_change(session, unit)
    if not unit.is_active:
        raise Conflict(Reason.of("core.already_inactive", key=unit.key, **_words(kind)))
    references = references_to(session, unit)
    if references:
        raise _blocked(unit, "core.unit_in_use", references)
    unit.deactivated_at = utcnow()
    session.add(unit)
    session.flush()
    audit.append(session, f"core.{kind}_deactivated", actor=actor, target_type=kind,
                 target_id=unit.id, details={"key": unit.key})
    return unit


def reactivate_unit(session: Session, actor: audit.Actor, unit: Unit) -> Unit:
    """Make a deactivated unit choosable again; a department only under an active organ and
    an active parent department."""
    kind = unit_kind(unit)
    _lock_for_change(session, unit)
    if unit.is_active:
        raise Conflict(Reason.of("core.already_active", key=unit.key, **_words(kind)))
    if isinstance(unit, Department):
        organ = session.get(Organ, unit.organ_id)
        assert organ is not None
        require_active(organ, "organ")
        parent = session.get(Department, unit.parent_id) if unit.parent_id else None
        if parent is not None:
            require_active(parent, "parent")
    unit.deactivated_at = None
    session.add(unit)
    session.flush()
    audit.append(session, f"core.{kind}_reactivated", actor=actor, target_type=kind,
                 target_id=unit.id, details={"key": unit.key})
    return unit


def _apply_changes(record: Any, changes: dict[str, Any]) -> list[str]:
    """Set the given attributes; the names of those whose value changed."""
    changed = []
    for name, value in changes.items():
        if getattr(record, name) != value:
            setattr(record, name, value)
            changed.append(name)
    return changed


def _record_update(session: Session, actor: audit.Actor, kind: str, record: Any,
                   changed: list[str]) -> None:
    if not changed:
        return
    session.add(record)
    session.flush()
    # Field names only: a display name is personal data, and the chain is never purged.
    audit.append(session, f"core.{kind}_updated", actor=actor, target_type=kind,
                 target_id=record.id, details={"fields": sorted(changed)})


def update_organ(session: Session, actor: audit.Actor, key: str, *,
                 kind: OrganKind | None = None, name_ja: str | None = None,
                 name_en: str | None = None) -> Organ:
    organ = organ_by_key(session, key)
    changes = {n: v for n, v in (("kind", kind), ("name_ja", name_ja), ("name_en", name_en))
               if v is not None}
    _record_update(session, actor, "organ", organ, _apply_changes(organ, changes))
    return organ


_UNCHANGED: Any = object()


def _parent_for(session: Session, department: Department, parent_key: str | None
                ) -> int | None:
    """The id of the department's new parent: same organ, active, and no cycle."""
    if parent_key is None:
        return None
    current = session.get(Department, department.parent_id) if department.parent_id else None
    if current is not None and current.key == parent_key:
        return current.id  # unchanged: kept even when it has been deactivated since
    parent = active_department(session, parent_key, "parent")
    if parent.organ_id != department.organ_id:
        organ = session.get(Organ, department.organ_id)
        raise InvalidInput(Reason.of("core.department_outside_organ", department=parent.key,
                                     organ=organ.key if organ else "?", field="parent"))
    ancestor: Department | None = parent
    while ancestor is not None:
        if ancestor.id == department.id:
            raise InvalidInput(Reason.of("core.department_cycle", department=department.key,
                                         parent=parent.key, field="parent"))
        ancestor = session.get(Department, ancestor.parent_id) if ancestor.parent_id else None
    return parent.id


def update_department(session: Session, actor: audit.Actor, key: str, *,
                      name_ja: str | None = None, name_en: str | None = None,
                      parent_key: str | None = _UNCHANGED) -> Department:
    """Rename a department or move it under another parent of its organ (None: top level).
    A department never moves to another organ: grants and files name the pair."""
    department = department_by_key(session, key)
    changes: dict[str, Any] = {n: v for n, v in (("name_ja", name_ja), ("name_en", name_en))
                               if v is not None}
    if parent_key is not _UNCHANGED:
        changes["parent_id"] = _parent_for(session, department, parent_key)
    changed = [("parent" if n == "parent_id" else n)
               for n in _apply_changes(department, changes)]
    _record_update(session, actor, "department", department, changed)
    return department


def update_outside_body(session: Session, actor: audit.Actor, key: str, *,
                        kind: OutsideBodyKind | None = None, name_ja: str | None = None,
                        name_en: str | None = None, is_public_body: bool | None = None
                        ) -> OutsideBody:
    """Change an outside body; whether it is a public body is fixed while a route names it,
    because the legal route of a provision to it (69(2)(iii)) depends on it."""
    body = unit_by_key(session, "outside_body", key)
    assert isinstance(body, OutsideBody)
    if is_public_body is not None and is_public_body != body.is_public_body:
        _lock_for_change(session, body)
        references = references_to(session, body)
        if references:
            raise _blocked(body, "core.public_body_fixed", references)
    changes = {n: v for n, v in (("kind", kind), ("name_ja", name_ja), ("name_en", name_en),
                                 ("is_public_body", is_public_body)) if v is not None}
    _record_update(session, actor, "outside_body", body, _apply_changes(body, changes))
    return body


# ---------------------------------------------------------------- accounts
# Every change of an account after its creation goes through `change_account`, so that one
# place decides (and bundles guard) who may change accounts.


def _other_active_admins(session: Session, account: StaffAccount) -> int:
    """The other active administrators, their rows locked for update: two administrators
    deactivating each other at once are serialised, and the second finds no other left."""
    return len(set(session.exec(
        select(StaffAccount.id)
        .join(RoleGrant, col(StaffAccount.id) == RoleGrant.account_id)
        .where(RoleGrant.role == Role.admin.value, col(RoleGrant.revoked_at).is_(None),
               col(StaffAccount.is_active), StaffAccount.id != account.id)
        .with_for_update(of=StaffAccount)
    ).all()))


def _is_admin(session: Session, account: StaffAccount) -> bool:
    assert account.id is not None
    return any(g.role == Role.admin.value for g in grants_of(session, account.id))


def change_account(session: Session, actor: audit.Actor, login: str, *,
                   display_name: str | None = None, department_key: str | None = _UNCHANGED,
                   active: bool | None = None) -> StaffAccount:
    """Update an account (display name, department; None: no department) and deactivate or
    reactivate it. Deactivated, it cannot sign in and every token it holds stops working at
    once; the actor cannot deactivate themself, nor the last active administrator."""
    account = account_by_login(session, login)
    changes: dict[str, Any] = {}
    if display_name is not None:
        changes["display_name"] = display_name
    current = session.get(Department, account.department_id) if account.department_id else None
    if department_key is not _UNCHANGED and department_key != (current.key if current else None):
        changes["department_id"] = (active_department(session, department_key).id
                                    if department_key else None)
    changed = [("department" if n == "department_id" else n)
               for n in _apply_changes(account, changes)]
    _record_update(session, actor, "staff_account", account, changed)
    if active is False and account.is_active:
        if actor.type == "staff" and actor.id == account.id:
            raise Conflict(Reason.of("core.cannot_deactivate_self", field="login"))
        if _is_admin(session, account) and _other_active_admins(session, account) == 0:
            raise Conflict(Reason.of("core.last_admin", login=login, field="login"))
        account.is_active = False
        revoke_tokens(session, account)
        session.flush()
        audit.append(session, "core.staff_account_deactivated", actor=actor,
                     target_type="staff_account", target_id=account.id)
    elif active is True and not account.is_active:
        account.is_active = True
        session.add(account)
        session.flush()
        audit.append(session, "core.staff_account_reactivated", actor=actor,
                     target_type="staff_account", target_id=account.id)
    elif active is not None:
        code = "core.already_active" if active else "core.already_inactive"
        raise Conflict(Reason.of(code, key=login, **_words("staff_account")))
    return account


def list_accounts(session: Session) -> list[StaffAccount]:
    return list(session.exec(select(StaffAccount).order_by(col(StaffAccount.login))).all())
