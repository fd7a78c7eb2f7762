"""API schemas of core: sign-in, the principal, staff and grants, audit events, Reasons."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.audit import VerifyReport
from core.auth import Principal
from core.models import (
    AuditEvent,
    Department,
    Organ,
    OrganKind,
    OutsideBody,
    OutsideBodyKind,
    Role,
    RoleGrant,
    StaffAccount,
)
from core.reasons import Reason


class ReasonPublic(BaseModel):
    """A Reason as every package's API returns it (see Reason.to_dict)."""

    code: str
    message_ja: str
    message_en: str
    refs: dict[str, Any] = Field(default_factory=dict)
    field: str | None = None
    row: int | None = None

    @classmethod
    def of(cls, reason: Reason) -> ReasonPublic:
        return cls(**reason.to_dict())


class LoginRequest(BaseModel):
    login: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=512)


class TokenPublic(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 (the OAuth token type, not a secret)
    expires_at: datetime


class GrantBase(BaseModel):
    role: Role
    organ: str = Field(description="Organ key")
    department: str | None = Field(None, description="Department key")


class GrantCreate(GrantBase):
    pass


class GrantPublic(BaseModel):
    id: int
    role: Role
    organ_id: int
    department_id: int | None
    granted_at: datetime
    revoked_at: datetime | None


class MePublic(BaseModel):
    account_id: int
    login: str
    display_name: str
    roles: list[Role]

    @classmethod
    def from_principal(cls, principal: Principal) -> MePublic:
        return cls(
            account_id=principal.account_id,
            login=principal.login,
            display_name=principal.display_name,
            roles=sorted(principal.roles),
        )


class StaffBase(BaseModel):
    login: str = Field(min_length=3, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    display_name: str = Field(min_length=1, max_length=200)
    department: str | None = Field(None, description="Department key")


class StaffCreate(StaffBase):
    password: str = Field(min_length=12, max_length=512)


class StaffPublic(BaseModel):
    id: int
    login: str
    display_name: str
    is_active: bool
    grants: list[GrantPublic]

    @classmethod
    def from_account(cls, account: StaffAccount, grants: list[RoleGrant]) -> StaffPublic:
        assert account.id is not None
        return cls(
            id=account.id,
            login=account.login,
            display_name=account.display_name,
            is_active=account.is_active,
            grants=[GrantPublic.model_validate(g, from_attributes=True) for g in grants],
        )


class AuditEventPublic(BaseModel):
    seq: int
    occurred_at: datetime
    actor_type: str
    actor_id: int | None
    actor_person_id: str | None = Field(None, description="a resident actor's person id")
    role: str | None
    organ_id: int | None
    action: str
    target_type: str | None
    target_id: str | None
    purpose_id: int | None
    decision_id: str | None
    details: dict[str, Any]
    prev_hash: str
    key_id: str | None = Field(None, description="the chain key of the link; null: unkeyed")
    hash: str

    @classmethod
    def from_event(cls, event: AuditEvent) -> AuditEventPublic:
        data = {name: getattr(event, name) for name in cls.model_fields if name != "details"}
        return cls(details=json.loads(event.details), **data)


class AuditPage(BaseModel):
    events: list[AuditEventPublic]
    next_before: int | None = Field(description="Pass as `before` for the next, older page")


class ChainProblemPublic(BaseModel):
    seq: int
    code: str
    message_ja: str
    message_en: str


class ChainReport(BaseModel):
    ok: bool
    events: int
    checkpoints: int
    witnessed: int = Field(0, description="witness entries compared")
    warnings: list[str] = Field(default_factory=list, description="Japanese / English")
    problem: ChainProblemPublic | None

    @classmethod
    def from_report(cls, report: VerifyReport) -> ChainReport:
        problem = report.problem
        return cls(
            ok=report.ok,
            events=report.events,
            checkpoints=report.checkpoints,
            witnessed=report.witnessed,
            warnings=[f"{ja} / {en}" for ja, en in report.warnings],
            problem=None
            if problem is None
            else ChainProblemPublic(
                seq=problem.seq,
                code=problem.code,
                message_ja=problem.message_ja,
                message_en=problem.message_en,
            ),
        )


class CheckpointPublic(BaseModel):
    seq: int
    hash: str
    signed_at: datetime
    key_id: str


class ThrottleLifted(BaseModel):
    lifted: int
    message_ja: str
    message_en: str


# ---------------------------------------------------------------- the organisation


class OrganPublic(BaseModel):
    key: str
    kind: OrganKind
    name_ja: str
    name_en: str
    active: bool
    deactivated_at: datetime | None

    @classmethod
    def of(cls, organ: Organ) -> OrganPublic:
        return cls(key=organ.key, kind=OrganKind(organ.kind), name_ja=organ.name_ja,
                   name_en=organ.name_en, active=organ.is_active,
                   deactivated_at=organ.deactivated_at)


class DepartmentPublic(BaseModel):
    key: str
    organ: str = Field(description="Organ key")
    parent: str | None = Field(description="Parent department key")
    name_ja: str
    name_en: str
    active: bool
    deactivated_at: datetime | None


class OutsideBodyPublic(BaseModel):
    key: str
    kind: OutsideBodyKind
    name_ja: str
    name_en: str
    is_public_body: bool
    active: bool
    deactivated_at: datetime | None

    @classmethod
    def of(cls, body: OutsideBody) -> OutsideBodyPublic:
        return cls(key=body.key, kind=OutsideBodyKind(body.kind), name_ja=body.name_ja,
                   name_en=body.name_en, is_public_body=body.is_public_body,
                   active=body.is_active, deactivated_at=body.deactivated_at)


class OrganisationPublic(BaseModel):
    organs: list[OrganPublic]
    departments: list[DepartmentPublic]
    outside_bodies: list[OutsideBodyPublic]

    @classmethod
    def of(cls, organs: list[Organ], departments: list[Department],
           bodies: list[OutsideBody]) -> OrganisationPublic:
        organ_keys = {o.id: o.key for o in organs}
        department_keys = {d.id: d.key for d in departments}
        return cls(
            organs=[OrganPublic.of(o) for o in organs],
            departments=[DepartmentPublic(
                key=d.key, organ=organ_keys.get(d.organ_id, "?"),
                parent=department_keys.get(d.parent_id) if d.parent_id else None,
                name_ja=d.name_ja, name_en=d.name_en, active=d.is_active,
                deactivated_at=d.deactivated_at) for d in departments],
            outside_bodies=[OutsideBodyPublic.of(b) for b in bodies],
        )


class _Change(BaseModel):
    """A change: only the fields sent are changed."""

    model_config = ConfigDict(extra="forbid")


class OrganUpdate(_Change):
    kind: OrganKind | None = None
    name_ja: str | None = Field(None, min_length=1, max_length=200)
    name_en: str | None = Field(None, min_length=1, max_length=200)


class DepartmentUpdate(_Change):
    name_ja: str | None = Field(None, min_length=1, max_length=200)
    name_en: str | None = Field(None, min_length=1, max_length=200)
    parent: str | None = Field(None, max_length=64,
                               description="Parent department key; null: top level")


class OutsideBodyUpdate(_Change):
    kind: OutsideBodyKind | None = None
    name_ja: str | None = Field(None, min_length=1, max_length=200)
    name_en: str | None = Field(None, min_length=1, max_length=200)
    is_public_body: bool | None = None


class StaffUpdate(_Change):
    display_name: str | None = Field(None, min_length=1, max_length=200)
    department: str | None = Field(None, max_length=64,
                                   description="Department key; null: no department")
