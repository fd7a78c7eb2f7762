"""The fictional demo city: organs, departments, outside bodies, one staff account per role."""

from __future__ import annotations

import os
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from core import audit, messages, service
from core.models import DemoMarker, OrganKind, OutsideBodyKind, Role, StaffAccount
from core.settings import Settings, SettingsError

messages.register(
    {
        "core.demo_mode_required": (
            "デモデータは デモモード（KODOMO_DEMO=1）でのみ作成できます。"
            "本番のデータベースに公開パスワードのアカウントを作ることはできません。",
            "The demo city can only be loaded in demo mode (KODOMO_DEMO=1): it would create "
            "accounts with the published demo password in a production database.",
        ),
        "core.demo_database": (
            "このデータベースはデモ用です（{what}）。本番には新しいデータベースを "
            "`kodomo db upgrade` で作成し、職員は `kodomo users create` で登録してください。"
            "デモとして使う場合は KODOMO_DEMO=1 を設定してください。",
            "This database is a demo database ({what}). For production create a new database "
            "with `kodomo db upgrade` and staff with `kodomo users create`; to run the demo, "
            "set KODOMO_DEMO=1.",
        ),
    }
)

CITY_KEY = "wakabadai"
# Shown on the console's sign-in instructions; demo mode only.
DEMO_PASSWORD_ENV = "KODOMO_DEMO_PASSWORD"  # noqa: S105 (a variable name)
DEFAULT_DEMO_PASSWORD = "wakabadai-demo-2026"  # noqa: S105 (the published demo password)

ORGANS = [
    ("mayor", OrganKind.mayor, "若葉台市長", "Mayor of Wakabadai"),
    (
        "board_of_education",
        OrganKind.board_of_education,
        "若葉台市教育委員会",
        "Wakabadai Board of Education",
    ),
]

DEPARTMENTS = [
    # key, organ, name_ja, name_en
    (
        "general_affairs",
        "mayor",
        "総務部 総務課（個人情報保護担当）",
        "General Affairs Division (privacy office)",
    ),
    ("residents", "mayor", "市民部 市民課", "Residents Division"),
    ("digital", "mayor", "企画部 デジタル推進課", "Digital Transformation Division"),
    ("child_family", "mayor", "こども家庭部 こども家庭課", "Children and Families Division"),
    ("childcare", "mayor", "こども家庭部 保育課", "Childcare Division"),
    ("welfare", "mayor", "福祉部 生活福祉課", "Public Assistance Division"),
    ("maternal_health", "mayor", "健康部 母子保健課", "Maternal and Child Health Division"),
    ("school_affairs", "board_of_education", "教育部 学務課", "School Affairs Division"),
    ("school_education", "board_of_education", "教育部 学校教育課", "School Education Division"),
    ("internal_audit", "mayor", "監査室", "Internal Audit Office"),
]

OUTSIDE_BODIES = [
    (
        "pref_child_guidance",
        OutsideBodyKind.other_local_government,
        "若葉県中央児童相談所",
        "Wakaba Prefecture Central Child Guidance Centre",
        True,
    ),
    (
        "kodomo_hospital",
        OutsideBodyKind.hospital,
        "医療法人 若葉台こども病院",
        "Wakabadai Children's Hospital (medical corporation)",
        False,
    ),
    (
        "npo_kodomo_shokudo",
        OutsideBodyKind.npo,
        "NPO法人 わかば子ども食堂ネット",
        "Wakaba Children's Cafeteria Network (NPO)",
        False,
    ),
]

ACCOUNTS = [
    # login, name, department, role, organ
    ("privacy", "個人情報 保護子", "general_affairs", Role.privacy_officer, "mayor"),
    ("privacy2", "審査 二郎", "general_affairs", Role.privacy_officer, "mayor"),
    ("holder", "保有 管理太", "child_family", Role.data_holder, "mayor"),
    ("edu_holder", "学務 花子", "school_affairs", Role.data_holder, "board_of_education"),
    ("analyst", "分析 一郎", "digital", Role.analyst, "mayor"),
    ("support", "支援 さくら", "child_family", Role.support_worker, "mayor"),
    ("auditor", "監査 正", "internal_audit", Role.auditor, "mayor"),
    ("admin", "管理 守", "digital", Role.admin, "mayor"),
]


# The privacy office also acts for the board of education (補助執行), so it can approve
# authorisations for the board's files.
EXTRA_GRANTS: list[tuple[str, Role, str, str | None]] = [
    ("privacy", Role.privacy_officer, "board_of_education", None),
    ("privacy2", Role.privacy_officer, "board_of_education", None),
]


def demo_password() -> str:
    return os.environ.get(DEMO_PASSWORD_ENV, DEFAULT_DEMO_PASSWORD)


def mark_database(session: Session, how: str) -> None:
    """Mark the database as made in demo mode (once)."""
    if session.exec(select(DemoMarker)).first() is None:
        session.add(DemoMarker(how=how))


def demo_traces(session: Session) -> list[str]:
    """What makes this a demo database: its marker and its demo accounts (none when the
    tables do not exist yet, i.e. before the first migration)."""
    try:
        marker = session.exec(select(DemoMarker)).first()
        logins = session.exec(
            select(StaffAccount.login).where(col(StaffAccount.is_demo).is_(True))
        ).all()
    except SQLAlchemyError:
        session.rollback()
        return []
    found = [f"demo marker ({marker.how})"] if marker is not None else []
    if logins:
        found.append("demo accounts: " + ", ".join(sorted(logins)))
    return found


def refuse_demo_database(settings: Settings, session_factory: Callable[[], Session]) -> None:
    """Outside demo mode, refuse to start on a database made or loaded in demo mode."""
    if settings.demo:
        return
    with session_factory() as session:
        traces = demo_traces(session)
    if traces:
        raise SettingsError("KODOMO_DEMO", messages.text("core.demo_database", "en",
                                                         what="; ".join(traces))
                            + " / " + messages.text("core.demo_database", "ja",
                                                    what="; ".join(traces)))


def load(session: Session) -> list[str]:
    """Create the city once; a second run changes nothing and says so."""
    mark_database(session, "demo load")
    if service.get_municipality(session) is not None:
        return ["組織: 既に登録済み / organisation already loaded"]
    actor = audit.SYSTEM
    service.create_municipality(
        session,
        actor,
        key=CITY_KEY,
        code="990001",
        name_ja="若葉台市（架空）",
        name_en="Wakabadai City (fictional)",
    )
    for key, kind, name_ja, name_en in ORGANS:
        service.create_organ(session, actor, key=key, kind=kind, name_ja=name_ja, name_en=name_en)
    for key, organ, name_ja, name_en in DEPARTMENTS:
        service.create_department(
            session, actor, key=key, organ_key=organ, name_ja=name_ja, name_en=name_en
        )
    for key, body_kind, name_ja, name_en, is_public in OUTSIDE_BODIES:
        service.create_outside_body(
            session,
            actor,
            key=key,
            kind=body_kind,
            name_ja=name_ja,
            name_en=name_en,
            is_public_body=is_public,
        )
    password = demo_password()
    lines = [
        "若葉台市（架空）を作成しました / created Wakabadai City (fictional)",
        f"サインイン / sign in: http://127.0.0.1:8000/login  password: {password}",
    ]
    for login, name, department, role, organ in ACCOUNTS:
        account = service.create_account(
            session,
            actor,
            login=login,
            display_name=name,
            password=password,
            department_key=department,
        )
        account.is_demo = True
        session.add(account)
        service.grant_role(
            session, actor, login=login, role=role, organ_key=organ, department_key=department
        )
        lines.append(f"  {login:<11} {role.value}")
    for extra_login, extra_role, extra_organ, extra_department in EXTRA_GRANTS:
        service.grant_role(session, actor, login=extra_login, role=extra_role,
                           organ_key=extra_organ, department_key=extra_department)
    return lines
