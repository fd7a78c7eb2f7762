"""Tables of the centre: purposes (items, subjects, citations), routes, flows, authorisations."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.db import TOKEN_ID
from core.models import utc_column


class PurposeStatus(enum.StrEnum):
    draft = "draft"
    submitted = "submitted"
    approved = "approved"
    returned = "returned"
    suspended = "suspended"
    retired = "retired"


class SubjectRole(enum.StrEnum):
    """Governance roles of a handling subject (LAW.md §10.5)."""

    overall = "overall"  # 総括管理主体
    holding = "holding"  # 保有・管理主体
    analysis = "analysis"  # 分析主体
    use = "use"  # 活用主体


class AcquisitionMethod(enum.StrEnum):
    reuse = "reuse"  # 既に取得した情報の利用
    new_collection = "new_collection"  # 新たに取得 (Art. 62 notice before capture)
    both = "both"


class CitationKind(enum.StrEnum):
    statute = "statute"  # 法律・政令・省令
    ordinance = "ordinance"  # 条例・規則


class Basis(enum.StrEnum):
    """What the officer asks for; the legal route itself is derived, never typed (LAW.md §1.2)."""

    within_purpose = "within_purpose"  # the file's registered 利用目的 covers the use
    purpose_change = "purpose_change"  # Art. 61(3), recurring use
    one_off = "one_off"  # Art. 69(2)(ii) or (iii), four conditions
    consent = "consent"  # Art. 69(2)(i)
    statistics = "statistics"  # Art. 69(2)(iv)
    law = "law"  # Art. 69(1) 法令に基づく


class RouteKind(enum.StrEnum):
    """The derived legal route of a flow."""

    within_purpose = "61-1-within"
    purpose_change = "61-3-change"
    consent = "69-2-1"
    internal_use = "69-2-2"
    provision = "69-2-3"
    statistics = "69-2-4"
    law = "69-1-law"


class Recurrence(enum.StrEnum):
    one_off = "one_off"  # 臨時的
    recurring = "recurring"  # 恒常的


class RecordStatus(enum.StrEnum):
    """Status of a route or an authorisation."""

    draft = "draft"
    submitted = "submitted"
    approved = "approved"
    returned = "returned"
    revoked = "revoked"


class Purpose(SQLModel, table=True):
    """利用目的 of one linkage use case (LAW.md §3.2), edited as a sequence of versions."""

    __tablename__ = "governance_purpose"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True)
    version: int = 1
    status: PurposeStatus = Field(default=PurposeStatus.draft, sa_type=String(16))
    title_ja: str = Field(max_length=200)
    title_en: str = Field(default="", max_length=200)
    purpose_text: str = Field(default="", sa_type=Text)
    necessity: str = Field(default="", sa_type=Text)
    acquisition_method: AcquisitionMethod = Field(
        default=AcquisitionMethod.reuse, sa_type=String(16)
    )
    acquisition_note: str = Field(default="", sa_type=Text)
    # 取扱い方法
    handling_extraction: str = Field(default="", sa_type=Text)
    handling_matching_key: str = Field(default="", sa_type=Text)
    handling_logic: str = Field(default="", sa_type=Text)
    handling_logic_version: str = Field(default="", max_length=64)
    handling_result_viewers: str = Field(default="", sa_type=Text)
    handling_human_assessment: str = Field(default="", sa_type=Text)
    # The job kinds the handling method permits (rules.JobKind values), canonical JSON list
    job_kinds: str = Field(default="[]", sa_type=Text)
    # 安全管理措置 checklist and 住民周知, as canonical JSON
    safeguards: str = Field(default="{}", sa_type=Text)
    public_notice: str = Field(default="{}", sa_type=Text)
    # Who the purpose is about: a rule over the person register, e.g. {"min_age":0,"max_age":17}
    subjects_rule: str = Field(default="{}", sa_type=Text)
    created_by: int | None = Field(default=None, foreign_key="core_staff_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    submitted_by: int | None = Field(default=None, foreign_key="core_staff_account.id")
    submitted_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    approved_by: int | None = Field(default=None, foreign_key="core_staff_account.id")
    approved_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class PurposeCitation(SQLModel, table=True):
    """A statute or ordinance article that establishes the task (Art. 61(1))."""

    __tablename__ = "governance_purpose_citation"

    id: int | None = Field(default=None, primary_key=True)
    purpose_id: int = Field(foreign_key="governance_purpose.id", index=True)
    kind: CitationKind = Field(sa_type=String(16))
    law_name: str = Field(max_length=200)
    article: str = Field(max_length=100)
    note: str = Field(default="", sa_type=Text)


class PurposeSubject(SQLModel, table=True):
    """An organ (optionally one department) that handles the data, with its governance role."""

    __tablename__ = "governance_purpose_subject"
    __table_args__ = (UniqueConstraint("purpose_id", "organ_id", "department_id", "role"),)

    id: int | None = Field(default=None, primary_key=True)
    purpose_id: int = Field(foreign_key="governance_purpose.id", index=True)
    organ_id: int = Field(foreign_key="core_organ.id")
    department_id: int | None = Field(default=None, foreign_key="core_department.id")
    role: SubjectRole = Field(sa_type=String(16))


class PurposeItem(SQLModel, table=True):
    """A register item the purpose uses, with why it is needed (61(2)) and how it is relevant."""

    __tablename__ = "governance_purpose_item"
    __table_args__ = (UniqueConstraint("purpose_id", "item_id"),)

    id: int | None = Field(default=None, primary_key=True)
    purpose_id: int = Field(foreign_key="governance_purpose.id", index=True)
    item_id: int = Field(foreign_key="registry_item.id")
    necessity_reason: str = Field(default="", sa_type=Text)
    relevance_to_difficulty: str = Field(default="", sa_type=Text)
    # The handling subjects (SubjectRole values, comma-separated) that may receive the item
    # identified in an export (LAW.md §10.5); by default only its holder.
    identified_for: str = Field(default="holding", max_length=64)


class Route(SQLModel, table=True):
    """The legal footing for items flowing from their holding organ to one recipient."""

    __tablename__ = "governance_route"
    __table_args__ = (
        CheckConstraint("(to_organ_id IS NULL) <> (to_body_id IS NULL)", name="one_recipient"),
        Index("ix_governance_route_pattern", "purpose_id", "from_organ_id", "to_organ_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True)
    purpose_id: int = Field(foreign_key="governance_purpose.id", index=True)
    from_organ_id: int = Field(foreign_key="core_organ.id")
    to_organ_id: int | None = Field(default=None, foreign_key="core_organ.id")
    to_body_id: int | None = Field(default=None, foreign_key="core_outside_body.id")
    basis: Basis = Field(sa_type=String(16))
    recurrence: Recurrence = Field(sa_type=String(16))
    kind: RouteKind = Field(sa_type=String(16))
    status: RecordStatus = Field(default=RecordStatus.draft, sa_type=String(16))
    # within_purpose: the officer's determination that the file's 利用目的 covers this use
    reasoning: str = Field(default="", sa_type=Text)
    # purpose_change (61(3)): the purpose text after the change and why it is 相当の関連性
    changed_purpose_text: str = Field(default="", sa_type=Text)
    # law (69(1)) and statistics: the article relied on
    law_citation: str = Field(default="", max_length=300)
    created_by: int | None = Field(default=None, foreign_key="core_staff_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    submitted_by: int | None = Field(default=None, foreign_key="core_staff_account.id")
    approved_by: int | None = Field(default=None, foreign_key="core_staff_account.id")
    approved_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class Flow(SQLModel, table=True):
    """One item on one route."""

    __tablename__ = "governance_flow"
    __table_args__ = (UniqueConstraint("route_id", "item_id"),)

    id: int | None = Field(default=None, primary_key=True)
    route_id: int = Field(foreign_key="governance_route.id", index=True)
    item_id: int = Field(foreign_key="registry_item.id", index=True)


class Authorisation(SQLModel, table=True):
    """The four-condition authorisation of a one-off 69(2)(ii)/(iii) route (LAW.md §4.3)."""

    __tablename__ = "governance_authorisation"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True)
    route_id: int = Field(foreign_key="governance_route.id", index=True)
    status: RecordStatus = Field(default=RecordStatus.draft, sa_type=String(16))
    # 1. 臨時的
    is_temporary: bool = False
    temporary_reasoning: str = Field(default="", sa_type=Text)
    valid_from: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    valid_until: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    runs_allowed: int = 1
    runs_used: int = 0
    # 2. 必要な限度
    within_necessary_extent: bool = False
    necessity_reasoning: str = Field(default="", sa_type=Text)
    # 3. 相当の理由
    substantial_reason: bool = False
    substantial_reasoning: str = Field(default="", sa_type=Text)
    recipient_task_citation: str = Field(default="", max_length=300)
    # 4. 権利利益を不当に侵害するおそれがない
    no_undue_infringement: bool = False
    infringement_reasoning: str = Field(default="", sa_type=Text)
    # 69(3), 69(4), Art. 70 (LAW.md marks 69(4) and 70 [R]: optional)
    restricting_laws_checked: bool = False
    restricting_laws_note: str = Field(default="", sa_type=Text)
    # 69(4): who inside the recipient may use it, as canonical JSON {organs, departments, roles}
    # of keys (rules.AccessLimit); free text the migration could not convert stays in the note,
    # and the authorisation is not approved until it is structured.
    access_limits: str = Field(default="{}", sa_type=Text)
    access_limit_note: str = Field(default="", sa_type=Text)
    recipient_measures: str = Field(default="", sa_type=Text)
    delegation_note: str = Field(default="", sa_type=Text)  # 専決
    created_by: int | None = Field(default=None, foreign_key="core_staff_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    submitted_by: int | None = Field(default=None, foreign_key="core_staff_account.id")
    approved_by: int | None = Field(default=None, foreign_key="core_staff_account.id")
    approved_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class ApprovalStep(SQLModel, table=True):
    """One step of a record's workflow (submit, approve, return, suspend, retire, revoke)."""

    __tablename__ = "governance_approval_step"
    __table_args__ = (Index("ix_governance_approval_subject", "subject_type", "subject_id"),)

    id: int | None = Field(default=None, primary_key=True)
    subject_type: str = Field(max_length=16)  # purpose | route | authorisation
    subject_id: int
    subject_version: int = 1
    action: str = Field(max_length=16)
    actor_id: int | None = Field(default=None, foreign_key="core_staff_account.id")
    comment: str = Field(default="", sa_type=Text)
    at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class PurposeVersion(SQLModel, table=True):
    """The design of a purpose as it was at each approval (kept for history and the PIA)."""

    __tablename__ = "governance_purpose_version"
    __table_args__ = (UniqueConstraint("purpose_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    purpose_id: int = Field(foreign_key="governance_purpose.id", index=True)
    version: int
    design: str = Field(sa_type=Text)  # canonical JSON
    design_hash: str = Field(max_length=64)
    approved_by: int | None = Field(default=None, foreign_key="core_staff_account.id")
    approved_at: datetime = Field(sa_column=utc_column())


class JobState(enum.StrEnum):
    submitted = "submitted"
    claimed = "claimed"  # a worker took it; the gate has not started it yet
    started = "started"
    finished = "finished"
    failed = "failed"
    refused = "refused"  # refused at start: a job-level condition changed since submission
    cancelled = "cancelled"
    retrying = "retrying"  # failed, re-checked and queued to run again on its start decision


class Job(SQLModel, table=True):
    """A linkage, scoring, export or statistics job that the gate allowed at submission."""

    __tablename__ = "governance_job"
    __table_args__ = (Index("ix_governance_job_state", "state"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    purpose_id: int = Field(foreign_key="governance_purpose.id", index=True)
    items: str = Field(sa_type=Text)  # canonical JSON list of item keys
    recipient_organ: str | None = Field(default=None, max_length=64)
    recipient_body: str | None = Field(default=None, max_length=64)
    requester_id: int = Field(foreign_key="core_staff_account.id")
    submit_decision_id: str = Field(max_length=32)
    start_decision_id: str | None = Field(default=None, max_length=32)
    state: JobState = Field(default=JobState.submitted, sa_type=String(16))
    population_count: int | None = None
    population_hash: str | None = Field(default=None, max_length=64)
    # Run of a one-off authorisation consumed at start (keys, canonical JSON list)
    consumed_authorisations: str = Field(default="[]", sa_type=Text)
    result: str = Field(default="{}", sa_type=Text)  # counts reported by the handler
    error_code: str | None = Field(default=None, max_length=80)
    # Kind-specific parameters, canonical JSON as the kind's model validated them
    params: str = Field(default="{}", sa_type=Text)
    # What the start decision relied on (flows, recipient, PIA, design hash), canonical JSON:
    # a retry runs under it after the gate confirms that nothing of it has changed.
    start_basis: str = Field(default="{}", sa_type=Text)
    # The worker that holds the job, and its last sign of life (recovery reads it)
    worker_id: str | None = Field(default=None, max_length=128)
    claimed_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    heartbeat_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    # {"stage", "done", "total", "stages"}: the handler's last reported progress
    progress: str = Field(default="{}", sa_type=Text)
    attempts: int = Field(default=0)  # runs of the handler so far (a retry adds one)
    submitted_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    started_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class JobPopulation(SQLModel, table=True):
    """The people a started job may touch, written once at start with INSERT … SELECT.

    No foreign keys, on purpose: the only writer is `jobs.start`, which selects the ids from
    `consent_person` and the job id from the row it updates, in one transaction. PostgreSQL
    checks a foreign key with one query per inserted row, which for 114,547 people cost more
    than a second of the two the population may take (tests check the references instead).
    """

    __tablename__ = "governance_job_population"

    job_id: int = Field(primary_key=True)  # governance_job.id
    person_id: str = Field(primary_key=True, sa_type=TOKEN_ID)  # consent_person.id
