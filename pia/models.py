"""Tables of the PIA record-keeper: assessments, risks, measures, public comments, steps.

The PIA refers to the purpose it assesses by id only (a foreign key by table name): `pia`
never imports governance. Enums are stored as strings.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.models import utc_column


class State(enum.StrEnum):
    draft = "draft"
    review = "review"  # submitted for approval
    public_comment = "public_comment"  # full assessments only
    third_party_review = "third_party_review"  # full assessments only
    approved = "approved"
    returned = "returned"
    superseded = "superseded"  # an approved PIA replaced by a later approval


class Level(enum.StrEnum):
    none = "none"  # 評価不要 (the threshold answers are still the approved record)
    basic = "basic"  # 基礎項目評価
    focused = "focused"  # 重点項目評価
    full = "full"  # 全項目評価


class Stage(enum.StrEnum):
    """The stages of the 全項目評価書 Ⅲ リスク対策 (LAW.md §11.3)."""

    acquisition = "acquisition"  # 入手
    use = "use"  # 使用
    outsourcing = "outsourcing"  # 委託
    provision = "provision"  # 提供・移転
    storage = "storage"  # 保管・消去
    other = "other"  # その他


class SelfRating(enum.StrEnum):
    focus = "focus"  # 特に力を入れている
    sufficient = "sufficient"  # 十分である
    issues = "issues"  # 課題が残されている


class Residual(enum.StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


class Assessment(SQLModel, table=True):
    """One PIA of one version of a purpose's design (the snapshot governance handed over)."""

    __tablename__ = "pia_assessment"
    __table_args__ = (Index("ix_pia_assessment_purpose_status", "purpose_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    purpose_id: int = Field(foreign_key="governance_purpose.id", index=True)
    status: State = Field(default=State.draft, sa_type=String(24))
    # Optimistic locking: every change names the version it was made on and raises it.
    version: int = 1
    # The design snapshot (canonical JSON with register context) and its design hash.
    snapshot: str = Field(default="{}", sa_type=Text)
    design_hash: str = Field(max_length=64)
    # The format of the design the hash is of (governance's DESIGN_FORMAT when it was taken):
    # status compares the hash with the design in this format, so an upgrade never makes it stale.
    design_format: int = 1
    purpose_key: str = Field(default="", max_length=64)
    purpose_title: str = Field(default="", max_length=200)
    # しきい値判断: the answers as JSON and the level they give under the rule table.
    threshold: str = Field(default="{}", sa_type=Text)
    level: Level | None = Field(default=None, sa_type=String(16))
    threshold_rules: str = Field(default="", max_length=300)  # the rules that matched
    # Sections Ⅰ, Ⅱ, Ⅳ, Ⅴ as JSON: {section: {field: {"value": str, "prefilled": bool}}}
    form: str = Field(default="{}", sa_type=Text)
    # Ⅵ 評価実施手続
    comment_start: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    comment_end: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    comment_short_reason: str = Field(default="", sa_type=Text)
    third_party_body: str = Field(default="", sa_type=Text)
    third_party_members: str = Field(default="", sa_type=Text)
    third_party_opinion: str = Field(default="", sa_type=Text)
    third_party_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    # Approval
    author_id: int | None = Field(default=None, foreign_key="core_staff_account.id")
    submitted_by: int | None = Field(default=None, foreign_key="core_staff_account.id")
    submitted_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    residual_accepted: bool = False
    residual_accepted_by: int | None = Field(default=None, foreign_key="core_staff_account.id")
    approved_by: int | None = Field(default=None, foreign_key="core_staff_account.id")
    approved_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    next_review_due: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    conclusion: str = Field(default="", sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    updated_by: int | None = Field(default=None, foreign_key="core_staff_account.id")


class Risk(SQLModel, table=True):
    """One risk of the register: stage, likelihood × impact, self-rating, residual risk."""

    __tablename__ = "pia_risk"

    id: int | None = Field(default=None, primary_key=True)
    assessment_id: int = Field(foreign_key="pia_assessment.id", index=True)
    position: int = 1
    stage: Stage = Field(sa_type=String(16))
    title: str = Field(max_length=200)
    description: str = Field(default="", sa_type=Text)
    likelihood: int | None = None
    impact: int | None = None
    self_rating: SelfRating | None = Field(default=None, sa_type=String(16))
    residual: Residual | None = Field(default=None, sa_type=String(16))
    # Keys of the snapshot's items the risk addresses (comma-separated), e.g. special-care ones.
    items: str = Field(default="", sa_type=Text)


class Measure(SQLModel, table=True):
    """A measure against one risk, optionally linked to one of the purpose's safeguards."""

    __tablename__ = "pia_measure"

    id: int | None = Field(default=None, primary_key=True)
    risk_id: int = Field(foreign_key="pia_risk.id", index=True)
    position: int = 1
    text: str = Field(default="", sa_type=Text)
    # The safeguard of the snapshot: its category (organisational, human, physical,
    # technical) and its text as it stood in the snapshot.
    safeguard_category: str = Field(default="", max_length=32)
    safeguard_text: str = Field(default="", sa_type=Text)


class PublicComment(SQLModel, table=True):
    """A comment received in the public comment period and the response to it."""

    __tablename__ = "pia_public_comment"

    id: int | None = Field(default=None, primary_key=True)
    assessment_id: int = Field(foreign_key="pia_assessment.id", index=True)
    received_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    comment: str = Field(sa_type=Text)
    response: str = Field(default="", sa_type=Text)


class Step(SQLModel, table=True):
    """One step of a PIA's workflow (open, submit, comment, third party, approve, return)."""

    __tablename__ = "pia_step"

    id: int | None = Field(default=None, primary_key=True)
    assessment_id: int = Field(foreign_key="pia_assessment.id", index=True)
    action: str = Field(max_length=24)
    actor_id: int | None = Field(default=None, foreign_key="core_staff_account.id")
    comment: str = Field(default="", sa_type=Text)
    at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
