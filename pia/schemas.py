"""Pydantic models of the PIA API, in and out (never a table model)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from core.schemas import ReasonPublic
from pia.models import Residual, SelfRating, Stage


class Versioned(BaseModel):
    """Every change names the version of the PIA it was made on (optimistic locking)."""

    version: int = Field(ge=1)


class ThresholdIn(Versioned):
    persons: int = Field(default=0, ge=0)
    handlers: int = Field(default=0, ge=0)
    serious_accident: bool = False
    special_care: bool = False
    children: bool = False
    cross_organ: bool = False
    scoring: bool = False
    outsourcing: bool = False
    foreign_storage: bool = False

    def answers(self) -> dict[str, Any]:
        return self.model_dump(exclude={"version"})


class SectionIn(Versioned):
    values: dict[str, str] = Field(default_factory=dict)


class MeasureIn(BaseModel):
    text: str = Field(default="", max_length=2000)
    safeguard_category: str = Field(default="", max_length=32)
    safeguard_text: str = Field(default="", max_length=2000)


class RiskIn(Versioned):
    stage: Stage
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    likelihood: int | None = Field(default=None, ge=1, le=4)
    impact: int | None = Field(default=None, ge=1, le=4)
    self_rating: SelfRating | None = None
    residual: Residual | None = None
    items: list[str] = Field(default_factory=list)
    measures: list[MeasureIn] = Field(default_factory=list)


class ProcedureIn(Versioned):
    comment_start: datetime | None = None
    comment_end: datetime | None = None
    comment_short_reason: str = Field(default="", max_length=4000)
    third_party_body: str = Field(default="", max_length=1000)
    third_party_members: str = Field(default="", max_length=2000)
    third_party_opinion: str = Field(default="", max_length=8000)
    conclusion: str = Field(default="", max_length=8000)


class CommentIn(Versioned):
    comment: str = Field(min_length=1, max_length=8000)
    response: str = Field(default="", max_length=8000)
    received_at: datetime | None = None


class StepIn(Versioned):
    comment: str = Field(default="", max_length=4000)


class ApproveIn(StepIn):
    accept_residual_risk: bool = False
    next_review_due: datetime | None = None


class MeasurePublic(BaseModel):
    text: str
    safeguard_category: str
    safeguard_text: str


class RiskPublic(BaseModel):
    id: int
    position: int
    stage: str
    title: str
    description: str
    likelihood: int | None
    impact: int | None
    score: int | None
    band: str
    self_rating: str | None
    residual: str | None
    items: list[str]
    measures: list[MeasurePublic]


class CommentPublic(BaseModel):
    id: int
    received_at: datetime
    comment: str
    response: str


class ProgressPublic(BaseModel):
    section: str
    done: int
    total: int


class PiaPublic(BaseModel):
    id: int
    purpose_id: int
    purpose_key: str
    status: str
    version: int
    level: str | None
    threshold: dict[str, Any]
    threshold_rules: list[str]
    design_hash: str
    form: dict[str, Any]
    risks: list[RiskPublic]
    comments: list[CommentPublic]
    comment_start: datetime | None
    comment_end: datetime | None
    comment_short_reason: str
    third_party_body: str
    third_party_members: str
    third_party_opinion: str
    conclusion: str
    author_id: int | None
    approved_by: int | None
    approved_at: datetime | None
    residual_accepted: bool
    next_review_due: datetime | None
    progress: list[ProgressPublic]
    problems: list[ReasonPublic]


class PiaStatusPublic(BaseModel):
    usable: bool
    pia_id: int | None
    version: int | None
    reasons: list[ReasonPublic]
