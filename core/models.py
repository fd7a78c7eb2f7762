"""Tables of the organisation (municipality, organs, departments, outside bodies, staff, roles)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, Column, Index, String, Text
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.db import UtcDateTime


def utc_column(nullable: bool = False) -> Column[datetime]:
    """Every datetime column of every package: stored in UTC, read back aware."""
    return Column(UtcDateTime(), nullable=nullable)


class Role(enum.StrEnum):
    """Governance roles (LAW.md §10.5) plus auditor and admin."""

    privacy_officer = "privacy_officer"  # 総括管理主体
    data_holder = "data_holder"  # 保有・管理主体
    analyst = "analyst"  # 分析主体
    support_worker = "support_worker"  # 活用主体
    auditor = "auditor"
    admin = "admin"


class OrganKind(enum.StrEnum):
    """執行機関 of a municipality (each a separate 行政機関の長等, LAW.md §1.1)."""

    mayor = "mayor"  # 市長
    board_of_education = "board_of_education"  # 教育委員会
    election_commission = "election_commission"  # 選挙管理委員会
    audit_commissioner = "audit_commissioner"  # 監査委員
    agricultural_committee = "agricultural_committee"  # 農業委員会
    fire_department = "fire_department"  # 消防長
    public_enterprise = "public_enterprise"  # 公営企業管理者
    other = "other"


class OutsideBodyKind(enum.StrEnum):
    """Bodies outside the municipality that data may go to or come from."""

    other_local_government = "other_local_government"  # e.g. the prefecture's 児童相談所
    national_government = "national_government"
    independent_administrative_agency = "independent_administrative_agency"
    hospital = "hospital"
    school_corporation = "school_corporation"
    npo = "npo"
    private_business = "private_business"
    other = "other"


class Deactivatable(SQLModel):
    """An organ, department or outside body: deactivated, it can no longer be chosen for
    anything new, and it stays in every record that names it (history is never rewritten)."""

    deactivated_at: datetime | None = Field(default=None, sa_type=UtcDateTime)

    @property
    def is_active(self) -> bool:
        return self.deactivated_at is None


class Municipality(SQLModel, table=True):
    __tablename__ = "core_municipality"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True)
    # 全国地方公共団体コード (6 digits with check digit).
    code: str = Field(max_length=6)
    name_ja: str = Field(max_length=200)
    name_en: str = Field(max_length=200)


class Organ(Deactivatable, table=True):
    __tablename__ = "core_organ"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True)
    municipality_id: int = Field(foreign_key="core_municipality.id", index=True)
    kind: OrganKind = Field(sa_type=String(32))
    name_ja: str = Field(max_length=200)
    name_en: str = Field(max_length=200)


class Department(Deactivatable, table=True):
    __tablename__ = "core_department"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True)
    organ_id: int = Field(foreign_key="core_organ.id", index=True)
    parent_id: int | None = Field(default=None, foreign_key="core_department.id")
    name_ja: str = Field(max_length=200)
    name_en: str = Field(max_length=200)


class OutsideBody(Deactivatable, table=True):
    __tablename__ = "core_outside_body"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True)
    kind: OutsideBodyKind = Field(sa_type=String(40))
    name_ja: str = Field(max_length=200)
    name_en: str = Field(max_length=200)
    # True for another 地方公共団体の機関 or 行政機関等 (matters for Art. 69(2)(iii)).
    is_public_body: bool = False


class StaffAccount(SQLModel, table=True):
    __tablename__ = "core_staff_account"

    id: int | None = Field(default=None, primary_key=True)
    login: str = Field(max_length=64, unique=True)
    display_name: str = Field(max_length=200)
    department_id: int | None = Field(default=None, foreign_key="core_department.id")
    password_hash: str = Field(max_length=255)
    # Raised on sign-out, password change and role change: older tokens stop working.
    token_version: int = 1
    is_active: bool = True
    failed_logins: int = 0
    locked_until: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    # Made by `kodomo demo load` with the published demo password: the service refuses to start
    # outside demo mode while such an account exists.
    is_demo: bool = False


class DemoMarker(SQLModel, table=True):
    """Present when the database was created or loaded in demo mode (one row)."""

    __tablename__ = "core_demo_marker"

    id: int | None = Field(default=None, primary_key=True)
    marked_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    how: str = Field(max_length=32)


class SignInThrottle(SQLModel, table=True):
    """Failed sign-ins counted per address, per login string and per both, whether or not the
    account exists. Keys are keyed hashes: no login or address is stored in clear."""

    __tablename__ = "core_sign_in_throttle"

    key: str = Field(primary_key=True, max_length=80)
    # The keyed hash of the login string, so an officer can lift every block on one login.
    login_digest: str | None = Field(default=None, max_length=64, index=True)
    failures: int = 0
    window_started_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    blocked_until: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class RoleGrant(SQLModel, table=True):
    """A role held by a staff account, bound to an organ and optionally one department."""

    __tablename__ = "core_role_grant"
    __table_args__ = (
        Index("ix_core_role_grant_active", "account_id", "revoked_at"),
        CheckConstraint(
            "role IN ('privacy_officer','data_holder','analyst','support_worker',"
            "'auditor','admin')",
            name="role_known",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="core_staff_account.id", index=True)
    role: Role = Field(sa_type=String(32))
    organ_id: int = Field(foreign_key="core_organ.id")
    department_id: int | None = Field(default=None, foreign_key="core_department.id")
    granted_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    granted_by: int | None = Field(default=None, foreign_key="core_staff_account.id")
    revoked_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    revoked_by: int | None = Field(default=None, foreign_key="core_staff_account.id")


__all__ = [
    "AuditCheckpoint",
    "AuditEvent",
    "Department",
    "Municipality",
    "Organ",
    "OrganKind",
    "OutsideBody",
    "OutsideBodyKind",
    "Role",
    "RoleGrant",
    "StaffAccount",
]


class AuditEvent(SQLModel, table=True):
    """One link of the append-only, hash-chained audit log (ids and codes, never personal data)."""

    __tablename__ = "core_audit_event"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    occurred_at: datetime = Field(sa_column=utc_column())
    actor_type: str = Field(max_length=16)
    actor_id: int | None = None
    # A resident actor's person id (consent_person.id); NULL for staff and the system.
    actor_person_id: str | None = Field(default=None, max_length=64)
    role: str | None = Field(default=None, max_length=32)
    organ_id: int | None = None
    action: str = Field(max_length=80, index=True)
    target_type: str | None = Field(default=None, max_length=64)
    target_id: str | None = Field(default=None, max_length=64)
    purpose_id: int | None = Field(default=None, index=True)
    decision_id: str | None = Field(default=None, max_length=64)
    # Canonical JSON text, so that both backends hash the very same bytes.
    details: str = Field(default="{}", sa_type=Text)
    prev_hash: str = Field(max_length=64)
    # The audit chain key (in the keyring, never here) whose HMAC is `hash`; NULL for the
    # unkeyed SHA-256 links written before the chain was keyed.
    key_id: str | None = Field(default=None, max_length=64)
    hash: str = Field(max_length=64, unique=True)


class AuditCheckpoint(SQLModel, table=True):
    """An Ed25519 signature over the chain's head at one sequence number."""

    __tablename__ = "core_audit_checkpoint"

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(index=True)
    hash: str = Field(max_length=64)
    signed_at: datetime = Field(sa_column=utc_column())
    key_id: str = Field(max_length=64)
    signature: str = Field(max_length=200)
    # NULL for a checkpoint signed in form v1; "head" for a v2 checkpoint; "keyed_from_next"
    # for the v2 checkpoint that marks where keyed links begin (every later event is keyed).
    note: str | None = Field(default=None, max_length=32)
