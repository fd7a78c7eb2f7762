"""Tables of the people the data is about and of their consent and restrictions.

Consent refers to purposes (`governance_purpose.id`), data items (`registry_item.id`) and
recipients (a key, `organ:<core_organ.id>` or `body:<core_outside_body.id>`) by id only; it never
imports governance or registry. Personal values (identifiers, names, kana, household numbers, the
reasons for an unsuitable mark) are encrypted per field; lookups go through keyed hashes.
"""

from __future__ import annotations

import enum
import secrets
from datetime import date, datetime

from sqlalchemy import Column, Date, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from consent.rules import normalise_kana, normalise_name
from core.clock import utcnow
from core.crypto import EncryptedText, keyed_hash_info
from core.db import TOKEN_ID
from core.models import utc_column

ATENA_HASH_PURPOSE = "consent.atena_no"
NAME_HASH_PURPOSE = "consent.name"
KANA_HASH_PURPOSE = "consent.kana"
HOUSEHOLD_HASH_PURPOSE = "consent.household_no"
SCHEMA_VERSION = "ISO/IEC TS 27560:2023; kodomo-consent-1"


def new_id() -> str:
    """A random internal id (never derived from an identifier, so keys can rotate)."""
    return secrets.token_hex(16)


class Sex(enum.StrEnum):
    male = "male"
    female = "female"
    unknown = "unknown"


class Relation(enum.StrEnum):
    """Who gave or withdrew consent, relative to the child (the PII principal)."""

    self_ = "self"
    parent = "parent"  # 親権者 (each parent separately)
    minor_guardian = "minor_guardian"  # 未成年後見人


class GuardianRelation(enum.StrEnum):
    parent = "parent"  # 親権者
    minor_guardian = "minor_guardian"  # 未成年後見人


class ChildView(enum.StrEnum):
    assent = "assent"
    objection = "objection"
    not_asked = "not_asked"


class Channel(enum.StrEnum):
    online = "online"
    paper = "paper"  # a paper form entered by staff
    counter = "counter"  # given in person at the counter


class ConsentState(enum.StrEnum):
    requested = "requested"
    given = "given"
    refused = "refused"
    withdrawn = "withdrawn"
    expired = "expired"


class EventType(enum.StrEnum):
    """DPV-style consent states of ISO/IEC TS 27560 events."""

    requested = "requested"  # ConsentRequested
    given = "given"  # ConsentGiven
    refused = "refused"  # ConsentRefused
    withdrawn = "withdrawn"  # ConsentWithdrawn
    expired = "expired"  # ConsentExpired
    reconfirmed = "reconfirmed"  # RenewedConsentGiven


class RestrictionSource(enum.StrEnum):
    withdrawal = "withdrawal"  # consent withdrawn
    suspension_request = "suspension_request"  # a granted 利用停止 request (Art. 98–103)
    officer_decision = "officer_decision"


class Person(SQLModel, table=True):
    """A person in the register: children, guardians and the rest of the household."""

    __tablename__ = "consent_person"
    # Covering indexes: populations select ids by birth date, eligibility reads the birth date
    # by id; neither needs the wide row (encrypted names).
    __table_args__ = (Index("ix_consent_person_birth_id", "birth_date", "id"),
                      Index("ix_consent_person_id_birth", "id", "birth_date"))

    id: str = Field(default_factory=new_id, primary_key=True, sa_type=TOKEN_ID)
    # 団体内統合宛名番号: an encrypted value and a keyed hash for lookups.
    atena_no: str = Field(sa_column=Column(EncryptedText("consent_person.atena_no"),
                                           nullable=False))
    atena_hash: str = Field(
        sa_column=Column(String(100), nullable=False, unique=True,
                         info=keyed_hash_info("atena_no", ATENA_HASH_PURPOSE)))
    # Full name as "氏 名" and kana as "シ メイ"; hashes of the normalised text for search.
    name: str = Field(sa_column=Column(EncryptedText("consent_person.name"), nullable=False))
    name_hash: str = Field(
        sa_column=Column(String(100), nullable=False, index=True,
                         info=keyed_hash_info("name", NAME_HASH_PURPOSE, normalise_name)))
    kana: str = Field(sa_column=Column(EncryptedText("consent_person.kana"), nullable=False))
    kana_hash: str = Field(
        sa_column=Column(String(100), nullable=False, index=True,
                         info=keyed_hash_info("kana", KANA_HASH_PURPOSE, normalise_kana)))
    # Kept in clear: age rules and set-based eligibility need it.
    birth_date: date = Field(sa_column=Column(Date, nullable=False))
    sex: Sex = Field(default=Sex.unknown, sa_type=String(8))
    household_no: str | None = Field(
        default=None, sa_column=Column(EncryptedText("consent_person.household_no"))
    )
    household_hash: str | None = Field(
        default=None,
        sa_column=Column(String(100), index=True,
                         info=keyed_hash_info("household_no", HOUSEHOLD_HASH_PURPOSE)))
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class Guardianship(SQLModel, table=True):
    """A 親権者 (one row per parent) or 未成年後見人 of a child, with the proof's reference."""

    __tablename__ = "consent_guardianship"
    __table_args__ = (
        UniqueConstraint("child_id", "guardian_id", "relation"),
        Index("ix_consent_guardianship_guardian", "guardian_id"),
        Index("ix_consent_guardianship_in_force", "child_id", "valid_from", "valid_until",
              "guardian_id"),
        # Covers eligibility's lookup of a (child, giver) pair's link in force.
        Index("ix_consent_guardianship_pair", "child_id", "guardian_id", "valid_from",
              "valid_until"),
    )

    id: int | None = Field(default=None, primary_key=True)
    child_id: str = Field(foreign_key="consent_person.id", sa_type=TOKEN_ID)
    guardian_id: str = Field(foreign_key="consent_person.id", sa_type=TOKEN_ID)
    relation: GuardianRelation = Field(sa_type=String(16))
    # e.g. "戸籍謄本 2026-04-01 確認" or a court decision number; a reference, not the document.
    proof_ref: str = Field(default="", max_length=200)
    valid_from: date = Field(sa_column=Column(Date, nullable=False))
    valid_until: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class Notice(SQLModel, table=True):
    """One version of what is shown when consent is asked; immutable once it has been shown."""

    __tablename__ = "consent_notice"
    __table_args__ = (UniqueConstraint("key", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64)
    version: int = 1
    purpose_id: int = Field(foreign_key="governance_purpose.id", index=True)
    controller_organ_id: int = Field(foreign_key="core_organ.id")
    title_ja: str = Field(max_length=200)
    title_en: str = Field(default="", max_length=200)
    text_ja: str = Field(sa_type=Text)
    text_en: str = Field(default="", sa_type=Text)
    withdrawal_method_ja: str = Field(sa_type=Text)
    withdrawal_method_en: str = Field(default="", sa_type=Text)
    retention_class: str = Field(default="R3", max_length=8)
    validity_days: int = 365
    policy_url: str = Field(default="", max_length=300)
    jurisdiction: str = Field(default="JP", max_length=8)
    first_shown_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    created_by: int | None = Field(default=None, foreign_key="core_staff_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class NoticeItem(SQLModel, table=True):
    """A data item a notice asks about (label as shown), necessary or optional."""

    __tablename__ = "consent_notice_item"
    __table_args__ = (UniqueConstraint("notice_id", "item_id"),)

    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="consent_notice.id", index=True)
    item_id: int = Field(foreign_key="registry_item.id")
    label_ja: str = Field(max_length=200)
    label_en: str = Field(default="", max_length=200)
    optional: bool = False


class NoticeRecipient(SQLModel, table=True):
    """A recipient a notice names ("organ:<id>" or "body:<id>"), necessary or optional."""

    __tablename__ = "consent_notice_recipient"
    __table_args__ = (UniqueConstraint("notice_id", "recipient"),)

    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="consent_notice.id", index=True)
    recipient: str = Field(max_length=32)
    label_ja: str = Field(max_length=200)
    label_en: str = Field(default="", max_length=200)
    optional: bool = False


class ConsentRecord(SQLModel, table=True):
    """A consent record after ISO/IEC TS 27560 (LAW.md §12.3–12.5).

    `given_at`, `valid_until` and `withdrawn_at` mirror the events, so eligibility is a query.
    """

    __tablename__ = "consent_record"
    __table_args__ = (
        Index("ix_consent_record_principal", "principal_id", "purpose_id"),
        Index("ix_consent_record_giver", "given_by_id"),
        # Covers the eligibility scan of a purpose's consents in force.
        Index("ix_consent_record_in_force", "purpose_id", "principal_id", "given_by_id",
              "given_at", "valid_until", "withdrawn_at", "child_view", "id"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, sa_type=TOKEN_ID)
    schema_version: str = Field(default=SCHEMA_VERSION, max_length=64)
    principal_id: str = Field(foreign_key="consent_person.id", sa_type=TOKEN_ID)
    given_by_id: str = Field(foreign_key="consent_person.id", sa_type=TOKEN_ID)
    relation: Relation = Field(sa_type=String(16))
    authority_proof: str = Field(default="", max_length=200)
    child_age_at_event: int
    # The age the record was last confirmed at (re-confirmation at the thresholds).
    confirmed_age: int
    child_view: ChildView = Field(sa_type=String(16))
    child_view_reason: str = Field(default="", max_length=200)
    controller_organ_id: int = Field(foreign_key="core_organ.id")
    purpose_id: int = Field(foreign_key="governance_purpose.id", index=True)
    notice_id: int = Field(foreign_key="consent_notice.id", index=True)
    legal_route: str = Field(default="69-2-1", max_length=16)
    language: str = Field(default="ja", max_length=8)
    collection_method: Channel = Field(sa_type=String(16))
    retention_class: str = Field(default="R3", max_length=8)
    withdrawal_method: str = Field(sa_type=Text)
    power_imbalance_note: str = Field(default="", sa_type=Text)
    state: ConsentState = Field(sa_type=String(16))
    given_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    valid_until: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    withdrawn_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    created_by: int | None = Field(default=None, foreign_key="core_staff_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class ConsentScope(SQLModel, table=True):
    """One (item, recipient) pair a record covers: the product of its items and recipients."""

    __tablename__ = "consent_scope"
    __table_args__ = (
        UniqueConstraint("record_id", "item_id", "recipient"),
        Index("ix_consent_scope_flow", "item_id", "recipient", "record_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    record_id: str = Field(foreign_key="consent_record.id", sa_type=TOKEN_ID)
    item_id: int = Field(foreign_key="registry_item.id")
    recipient: str = Field(max_length=32)
    optional: bool = False


class ConsentEvent(SQLModel, table=True):
    """Something that happened to a record, stamped when it happened, with actor and channel."""

    __tablename__ = "consent_event"

    id: int | None = Field(default=None, primary_key=True)
    record_id: str = Field(foreign_key="consent_record.id", index=True, sa_type=TOKEN_ID)
    type: EventType = Field(sa_type=String(16))
    at: datetime = Field(sa_column=utc_column())
    # The person who acted (child or guardian) and the staff account that entered it.
    person_id: str | None = Field(default=None, foreign_key="consent_person.id", sa_type=TOKEN_ID)
    staff_id: int | None = Field(default=None, foreign_key="core_staff_account.id")
    channel: Channel = Field(sa_type=String(16))
    evidence_ref: str = Field(default="", max_length=200)


class Receipt(SQLModel, table=True):
    """A signed consent receipt (JWS, ES256) for a given or withdrawn event."""

    __tablename__ = "consent_receipt"

    id: str = Field(default_factory=new_id, primary_key=True, sa_type=TOKEN_ID)
    record_id: str = Field(foreign_key="consent_record.id", index=True, sa_type=TOKEN_ID)
    event_id: int = Field(foreign_key="consent_event.id")
    issued_at: datetime = Field(sa_column=utc_column())
    key_id: str = Field(max_length=64)
    jws: str = Field(sa_type=Text)


class Restriction(SQLModel, table=True):
    """A person may not be included for a purpose (withdrawal, 利用停止, officer decision)."""

    __tablename__ = "consent_restriction"
    __table_args__ = (Index("ix_consent_restriction_purpose", "purpose_id", "person_id"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: str = Field(foreign_key="consent_person.id", index=True, sa_type=TOKEN_ID)
    purpose_id: int = Field(foreign_key="governance_purpose.id")
    source: RestrictionSource = Field(sa_type=String(24))
    # The record that caused it (a consent record id, a request id), if any.
    source_ref: str = Field(default="", max_length=64)
    reason: str = Field(default="", sa_type=Text)
    valid_from: datetime = Field(sa_column=utc_column())
    valid_until: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    created_by: int | None = Field(default=None, foreign_key="core_staff_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    lifted_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    lifted_by: int | None = Field(default=None, foreign_key="core_staff_account.id")


class UnsuitableMark(SQLModel, table=True):
    """Consent must never count for this child (all purposes, or one): privacy officers only."""

    __tablename__ = "consent_unsuitable_mark"

    id: int | None = Field(default=None, primary_key=True)
    person_id: str = Field(foreign_key="consent_person.id", index=True, sa_type=TOKEN_ID)
    purpose_id: int | None = Field(default=None, foreign_key="governance_purpose.id")
    reason: str = Field(sa_column=Column(EncryptedText("consent_unsuitable_mark.reason"),
                                         nullable=False))
    marked_by: int | None = Field(default=None, foreign_key="core_staff_account.id")
    marked_at: datetime = Field(sa_column=utc_column())
    lifted_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    lifted_by: int | None = Field(default=None, foreign_key="core_staff_account.id")
