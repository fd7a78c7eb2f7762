"""API schemas of the centre: purposes, their parts, routes and authorisations, in and out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.models import Role
from core.schemas import ReasonPublic
from governance.models import (
    AcquisitionMethod,
    Basis,
    CitationKind,
    JobState,
    PurposeStatus,
    RecordStatus,
    Recurrence,
    RouteKind,
    SubjectRole,
)
from governance.rules import JobKind

KEY_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Citation(_Strict):
    kind: CitationKind
    law_name: str = Field(min_length=1, max_length=200)
    article: str = Field(min_length=1, max_length=100)
    note: str = ""


class SubjectIn(_Strict):
    organ: str = Field(description="Organ key")
    department: str | None = Field(None, description="Department key")
    role: SubjectRole


class SubjectsRule(_Strict):
    """Who the purpose is about, as ages in the person register."""

    min_age: int = Field(ge=0, le=120)
    max_age: int = Field(ge=0, le=120)


class Safeguards(_Strict):
    organisational: list[str] = Field(default_factory=list)
    human: list[str] = Field(default_factory=list)
    physical: list[str] = Field(default_factory=list)
    technical: list[str] = Field(default_factory=list)


class PublicNotice(_Strict):
    web_page: str = ""
    register_entry: str = ""
    explanation_to_families: str = ""
    contact_point: str = ""


class PurposeFields(_Strict):
    title_ja: str | None = Field(None, max_length=200)
    title_en: str | None = Field(None, max_length=200)
    purpose_text: str | None = None
    necessity: str | None = None
    acquisition_method: AcquisitionMethod | None = None
    acquisition_note: str | None = None
    handling_extraction: str | None = None
    handling_matching_key: str | None = None
    handling_logic: str | None = None
    handling_logic_version: str | None = Field(None, max_length=64)
    handling_result_viewers: str | None = None
    handling_human_assessment: str | None = None
    job_kinds: list[JobKind] | None = Field(
        None, description="The job kinds the handling method permits (linkage, scoring: any "
        "automated assessment of individuals, statistics, export)")
    safeguards: Safeguards | None = None
    public_notice: PublicNotice | None = None
    subjects_rule: SubjectsRule | None = None
    citations: list[Citation] | None = None
    subjects: list[SubjectIn] | None = None


class PurposeCreate(PurposeFields):
    key: str = Field(min_length=1, max_length=64, pattern=KEY_PATTERN)
    title_ja: str = Field(min_length=1, max_length=200)


class PurposeUpdate(PurposeFields):
    pass


class PurposeItemIn(_Strict):
    item: str = Field(description="Register item key")
    necessity_reason: str = ""
    relevance_to_difficulty: str = ""
    identified_for: list[SubjectRole] = Field(
        default_factory=lambda: [SubjectRole.holding],
        description="Handling subjects that may receive the item identified in an export "
                    "(LAW.md §10.5); by default only its holder")

    @field_validator("identified_for")
    @classmethod
    def _sorted_once(cls, value: list[SubjectRole]) -> list[SubjectRole]:
        return sorted(set(value), key=str)


class Decision(_Strict):
    """An approval, a return, a suspension: always with a comment."""

    comment: str = Field(min_length=1, max_length=4000)


class ApprovalIn(Decision):
    delegation_note: str = Field("", max_length=2000, description="専決 (for authorisations)")


class RouteCreate(_Strict):
    key: str = Field(min_length=1, max_length=64, pattern=KEY_PATTERN)
    items: list[str] = Field(min_length=1, description="Register item keys")
    to_organ: str | None = None
    to_body: str | None = None
    basis: Basis
    recurrence: Recurrence
    reasoning: str = ""
    changed_purpose_text: str = ""
    law_citation: str = Field("", max_length=300)


class AccessLimitIn(_Strict):
    """Art. 69(4): the organs, departments and roles (by key) inside the recipient that may use
    the data; an empty list does not limit."""

    organs: list[str] = Field(default_factory=list, description="Organ keys")
    departments: list[str] = Field(default_factory=list, description="Department keys")
    roles: list[Role] = Field(default_factory=list, description="Staff roles")

    @field_validator("organs", "departments", "roles")
    @classmethod
    def _sorted_once(cls, value: list[Any]) -> list[Any]:
        return sorted(set(value), key=str)


class AuthorisationFields(_Strict):
    is_temporary: bool = False
    temporary_reasoning: str = ""
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    runs_allowed: int = Field(1, ge=0)
    within_necessary_extent: bool = False
    necessity_reasoning: str = ""
    substantial_reason: bool = False
    substantial_reasoning: str = ""
    recipient_task_citation: str = Field("", max_length=300)
    no_undue_infringement: bool = False
    infringement_reasoning: str = ""
    restricting_laws_checked: bool = Field(
        False, description="Art. 69(3): other laws restricting the use or provision checked")
    restricting_laws_note: str = Field("", description="Art. 69(3): the laws checked, named")
    access_limited_to: AccessLimitIn = Field(
        default_factory=lambda: AccessLimitIn(),
        description="Art. 69(4): who inside the recipient may use the data")
    access_limit_note: str = Field(
        "", description="Free text of an earlier access limit not yet structured; approval is "
                        "refused while it is there")
    recipient_measures: str = Field("", description="Art. 70: measures asked of the recipient")

    @model_validator(mode="before")
    @classmethod
    def _free_text_limit_is_a_note(cls, data: Any) -> Any:
        """An access limit given as text (the earlier format) is kept as the note, unstructured."""
        if isinstance(data, dict) and isinstance(data.get("access_limited_to"), str):
            data = dict(data)
            text = data.pop("access_limited_to").strip()
            if text and not str(data.get("access_limit_note") or "").strip():
                data["access_limit_note"] = text
        return data


class AuthorisationCreate(AuthorisationFields):
    key: str = Field(min_length=1, max_length=64, pattern=KEY_PATTERN)
    route: str = Field(description="Route key")


class CitationPublic(Citation):
    pass


class PurposeItemPublic(BaseModel):
    item: str
    name_ja: str
    file: str
    holder_organ: str
    necessity_reason: str
    relevance_to_difficulty: str
    identified_for: list[SubjectRole] = Field(
        description="Handling subjects that may receive the item identified (LAW.md §10.5)")


class RoutePublic(BaseModel):
    key: str
    purpose: str
    items: list[str]
    from_organ: str
    to: str
    basis: Basis
    recurrence: Recurrence
    kind: RouteKind
    status: RecordStatus
    reasoning: str
    law_citation: str


class AuthorisationPublic(BaseModel):
    key: str
    route: str
    status: RecordStatus
    valid_from: datetime | None
    valid_until: datetime | None
    runs_allowed: int
    runs_used: int


class PurposePublic(BaseModel):
    key: str
    version: int
    status: PurposeStatus
    title_ja: str
    title_en: str
    purpose_text: str
    necessity: str
    job_kinds: list[JobKind]
    citations: list[CitationPublic]
    items: list[PurposeItemPublic]
    routes: list[RoutePublic]
    design_hash: str
    missing: list[dict[str, object]] = Field(description="Completeness problems, as Reasons")


class JobRequestIn(_Strict):
    """A job as the gate sees it; the requester is the caller."""

    purpose: str = Field(min_length=1, max_length=64)
    kind: str = Field(pattern=r"^(linkage|scoring|export|statistics)$")
    items: list[str] = Field(min_length=1, max_length=500)
    to_organ: str | None = None
    to_body: str | None = None
    at: datetime | None = Field(None, description="Evaluate at this moment (explain only)")
    params: dict[str, Any] = Field(
        default_factory=dict, description="The kind's parameters; checked by its model")


class FlowBasisPublic(BaseModel):
    """The route (and the one-off authorisation) a decision relies on for one item."""

    item: str
    route: str
    kind: RouteKind
    authorisation: str | None = None


class PiaReliedOn(BaseModel):
    id: int
    version: int | None = None
    design_hash: str


class DecisionPublic(BaseModel):
    """The gate's decision on a job: allowed or refused, with every reason and, when allowed,
    the footing of each item."""

    id: str
    allowed: bool
    kind: str
    purpose: str
    recipient: str
    at: datetime
    reasons: list[ReasonPublic]
    flows: list[FlowBasisPublic]
    consent_flows: list[FlowBasisPublic] = Field(
        description="Flows whose people are filtered by their own consent at start")
    restrictions: dict[str, Any] | None = None
    pia: PiaReliedOn | None = None
    design_hash: str | None = None
    inputs_hash: str


class JobProgressPublic(BaseModel):
    """The handler's last reported progress: stage, steps done of total, percentage."""

    stage: str | None = None
    done: int = 0
    total: int = 0
    percent: int | None = None
    stages: list[str] = Field(default_factory=list)


class JobProgressState(BaseModel):
    """What the job page polls while a job runs."""

    id: int
    state: JobState
    progress: JobProgressPublic
    error_code: str | None = None


class JobPublic(BaseModel):
    id: int
    kind: str
    purpose_id: int
    items: list[str]
    state: JobState
    recipient: str | None = None
    submit_decision_id: str
    start_decision_id: str | None = None
    population_count: int | None = None
    population_hash: str | None = None
    result: dict[str, Any] = Field(default_factory=dict)
    error_code: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    progress: JobProgressPublic
    worker_id: str | None = None
    heartbeat_at: datetime | None = None
    attempts: int = 0
    submitted_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class JobSubmitted(BaseModel):
    job: JobPublic
    decision: DecisionPublic


class KindUsabilityPublic(BaseModel):
    kind: str
    usable: bool
    reasons: list[ReasonPublic]


class UsabilityPublic(BaseModel):
    """Whether each kind of job could run on the purpose today (the gate's own evaluation)."""

    usable: bool
    kinds: list[KindUsabilityPublic]
    reasons: list[ReasonPublic]


class PiaInProgress(BaseModel):
    id: int
    version: int
    status: str


class DesignChangePublic(BaseModel):
    path: str
    kind: str
    before: Any = None
    after: Any = None


class PurposePiaPublic(BaseModel):
    """The purpose's PIA as the gate reads it: usable or not, the assessment relied on, the
    re-assessment in progress and what changed in the design since the last approval."""

    purpose: str
    usable: bool
    pia_id: int | None = None
    version: int | None = None
    reasons: list[ReasonPublic]
    design_hash: str
    in_progress: PiaInProgress | None = None
    changes: list[DesignChangePublic] | None = None
