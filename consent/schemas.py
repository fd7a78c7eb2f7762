"""The consent API's models, in and out (never a table model)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from consent.models import Channel, ChildView, GuardianRelation, Relation, RestrictionSource


class NoticeItemIn(BaseModel):
    item_id: int
    label_ja: str = Field(min_length=1, max_length=200)
    label_en: str = ""
    optional: bool = False


class NoticeRecipientIn(BaseModel):
    recipient: str = Field(description="organ:<core_organ.id> or body:<core_outside_body.id>")
    label_ja: str = Field(min_length=1, max_length=200)
    label_en: str = ""
    optional: bool = False


class NoticeIn(BaseModel):
    key: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.\-]*$")
    purpose_id: int
    controller_organ_id: int
    title_ja: str = Field(min_length=1, max_length=200)
    title_en: str = ""
    text_ja: str = Field(min_length=1)
    text_en: str = ""
    withdrawal_method_ja: str = Field(min_length=1)
    withdrawal_method_en: str = ""
    retention_class: str = "R3"
    validity_days: int = Field(default=365, ge=1, le=3650)
    policy_url: str = ""
    items: list[NoticeItemIn] = Field(min_length=1)
    recipients: list[NoticeRecipientIn] = Field(min_length=1)


class NoticePublic(BaseModel):
    id: int
    key: str
    version: int
    purpose_id: int
    title_ja: str
    title_en: str
    text_ja: str
    text_en: str
    withdrawal_method_ja: str
    validity_days: int
    first_shown_at: datetime | None
    items: list[NoticeItemIn]
    recipients: list[NoticeRecipientIn]


class ConsentIn(BaseModel):
    """A consent (or refusal) as staff enter it from a paper form or at the counter."""

    principal_id: str = Field(description="the child (PII principal), a consent_person id")
    given_by_id: str | None = Field(default=None, description="who gave it (default: the child)")
    relation: Relation = Relation.self_
    authority_proof: str = Field(default="", max_length=200)
    notice_id: int
    item_ids: list[int]
    recipients: list[str]
    child_view: ChildView | None = None
    child_view_reason: str = Field(default="", max_length=200)
    language: Literal["ja", "en"] = "ja"
    channel: Channel = Channel.paper
    evidence_ref: str = Field(default="", max_length=200)
    power_imbalance_note: str = ""
    decision: Literal["given", "refused"] = "given"
    at: datetime | None = None


class WithdrawIn(BaseModel):
    by_person_id: str | None = Field(default=None, description="who withdrew (default: giver)")
    channel: Channel = Channel.paper
    evidence_ref: str = Field(default="", max_length=200)
    at: datetime | None = None


class ReconfirmIn(BaseModel):
    child_view: ChildView
    child_view_reason: str = ""
    channel: Channel = Channel.counter
    evidence_ref: str = ""


class MarkIn(BaseModel):
    purpose_id: int | None = None
    reason: str = Field(min_length=1)


class RestrictionIn(BaseModel):
    person_id: str
    purpose_id: int
    source: RestrictionSource = RestrictionSource.officer_decision
    source_ref: str = ""
    reason: str = Field(min_length=1)
    valid_from: datetime | None = None
    valid_until: datetime | None = None


class GuardianPublic(BaseModel):
    person_id: str
    name: str
    relation: GuardianRelation
    proof_ref: str
    valid_from: date
    valid_until: date | None


class PersonSearchIn(BaseModel):
    """A person search; sent in the body, never the URL, so names and numbers stay out of logs."""

    atena_no: str | None = Field(None, max_length=32)
    name: str | None = Field(None, max_length=100)
    birth_date: date | None = None


class PersonCandidate(BaseModel):
    """A search hit: enough to recognise the person at the counter, nothing more (no
    guardians, no proofs, no 宛名番号)."""

    id: str
    name: str
    birth_date: date
    age: int


class PersonPublic(BaseModel):
    id: str
    atena_no: str
    name: str
    kana: str
    birth_date: date
    age: int
    sex: str
    guardians: list[GuardianPublic] = Field(default_factory=list)
    children: list[GuardianPublic] = Field(default_factory=list)


class EventPublic(BaseModel):
    id: int
    type: str
    at: datetime
    person_id: str | None
    staff_id: int | None
    channel: str
    evidence_ref: str


class ConsentPublic(BaseModel):
    id: str
    schema_version: str
    principal_id: str
    given_by_id: str
    relation: str
    authority_proof: str
    child_age_at_event: int
    child_view: str
    child_view_reason: str
    purpose_id: int
    notice_id: int
    legal_route: str
    language: str
    collection_method: str
    state: str
    given_at: datetime | None
    valid_until: datetime | None
    withdrawn_at: datetime | None
    withdrawal_method: str
    item_ids: list[int]
    recipients: list[str]
    events: list[EventPublic]
    receipt_ids: list[str]


class RestrictionPublic(BaseModel):
    id: int
    person_id: str
    purpose_id: int
    source: str
    source_ref: str
    reason: str
    valid_from: datetime
    valid_until: datetime | None
    lifted_at: datetime | None


class MarkPublic(BaseModel):
    id: int
    person_id: str
    purpose_id: int | None
    reason: str
    marked_by: int | None
    marked_at: datetime
    lifted_at: datetime | None


class ReceiptPublic(BaseModel):
    id: str
    record_id: str
    issued_at: datetime
    key_id: str
    jws: str
    receipt: dict[str, Any]


class ReconfirmationPublic(BaseModel):
    record_id: str
    principal_id: str
    threshold: int
    age: int
