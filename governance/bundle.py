"""Privacy-as-code bundles: the organisation, the register and the legal footing as one YAML file.

`export_bundle` writes what the database holds; `plan` compares a bundle with the database and
says, record by record, what applying it would create, update or leave alone (and what it will
not do, and why); `apply` carries the plan out through the services, so every write is checked and
audited like any other. The pydantic models below are the format; docs/bundle.schema.json is
generated from them.

Rules of apply (docs/bundle.md):

- all or nothing: every problem of the bundle is collected with its path
  (`purposes[2].items[0].item`) before anything is written;
- structural records (organs, departments, outside bodies, accounts and role grants, files and
  items) apply directly; apply never deletes, revokes, retires or unpublishes anything, and says
  so where the bundle lacks something the database has;
- purposes, routes and authorisations are created or updated as drafts. A bundle's
  `submitted_by` is acted on only when the `--as` principal is that login, and its `approved` only
  when the `--as` principal is that approver; the submitter can never approve (separation of
  duties), so a record goes from draft to approved in two applies;
- the route kind is derived (never typed in): the bundle's `kind` is for review, and a mismatch
  with the derivation is an error.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from dataclasses import field as dc_field
from datetime import UTC, date, datetime, time
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlmodel import Session, col, select

from core import audit
from core import service as core_service
from core.auth import Principal
from core.clock import TOKYO, as_utc
from core.models import (
    Department,
    Organ,
    OrganKind,
    OutsideBody,
    OutsideBodyKind,
    Role,
    StaffAccount,
)
from core.reasons import DomainError, InvalidInput, Reason
from governance import approvals, footing, purposes, rules
from governance.models import (
    AcquisitionMethod,
    Authorisation,
    Basis,
    Purpose,
    PurposeCitation,
    PurposeStatus,
    PurposeSubject,
    RecordStatus,
    Recurrence,
    Route,
    RouteKind,
)
from governance.schemas import (
    ApprovalIn,
    AuthorisationCreate,
    AuthorisationFields,
    Citation,
    Decision,
    PublicNotice,
    PurposeCreate,
    PurposeItemIn,
    PurposeUpdate,
    RouteCreate,
    Safeguards,
    SubjectIn,
    SubjectsRule,
)
from registry import service as registry
from registry.models import (
    FileType,
    ItemCategory,
    ItemStatus,
    NondisclosureTag,
    RegistryFile,
    RegistryItem,
    RetentionClass,
    SpecialCare,
)
from registry.rules import EXCLUSIONS
from registry.schemas import FileCreate, FileFields, FileUpdate, ItemCreate, ItemFields, ItemUpdate

FORMAT_VERSION = 1
APPLY_REASON = "バンドルの適用 / bundle apply"
KEY_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
ONE_OFF_KINDS = (RouteKind.internal_use, RouteKind.provision)


_WHAT = {
    "organ": "機関",
    "department": "部署",
    "outside body": "外部機関",
    "staff account": "職員アカウント",
    "register file": "個人情報ファイル",
    "register item": "記録項目",
    "purpose": "利用目的",
    "route": "経路",
}


# ---------------------------------------------------------------- the format


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Stripped(BaseModel):
    # The register strips its text, so the bundle does too: otherwise a trailing space would
    # be an update on every apply.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _utc(value: datetime | date | None) -> datetime | None:
    """Aware values are converted to UTC; a naive time or a bare date is Tokyo time."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(0, 0))
    if value.tzinfo is None:
        value = value.replace(tzinfo=TOKYO)
    return value.astimezone(UTC)


class MunicipalityRecord(_Record):
    """The controller; created only in an empty deployment (one municipality per deployment)."""

    key: str = Field(min_length=1, max_length=64)
    code: str = Field(min_length=1, max_length=6, description="全国地方公共団体コード")
    name_ja: str = Field(min_length=1, max_length=200)
    name_en: str = Field(min_length=1, max_length=200)


class OrganRecord(_Record):
    key: str = Field(min_length=1, max_length=64)
    kind: OrganKind
    name_ja: str = Field(min_length=1, max_length=200)
    name_en: str = Field(min_length=1, max_length=200)


class DepartmentRecord(_Record):
    key: str = Field(min_length=1, max_length=64)
    organ: str = Field(description="Organ key")
    parent: str | None = Field(None, description="Parent department key (same organ)")
    name_ja: str = Field(min_length=1, max_length=200)
    name_en: str = Field(min_length=1, max_length=200)


class OutsideBodyRecord(_Record):
    key: str = Field(min_length=1, max_length=64)
    kind: OutsideBodyKind
    name_ja: str = Field(min_length=1, max_length=200)
    name_en: str = Field(min_length=1, max_length=200)
    is_public_body: bool = Field(
        False, description="Another local government's organ or a national body (69(2)(iii))")


class RoleRecord(_Record):
    role: Role
    organ: str = Field(description="Organ key")
    department: str | None = Field(None, description="Department key (of that organ)")


class StaffRecord(_Record):
    """A staff account by login with its active role grants; passwords are never in a bundle."""

    login: str = Field(min_length=1, max_length=64)
    display_name: str = Field(min_length=1, max_length=200)
    department: str | None = Field(None, description="Department key")
    roles: list[RoleRecord] = Field(default_factory=list)


class ItemRecord(_Stripped):
    """A 記録項目 of a file (registry.schemas.ItemCreate without the change reason)."""

    key: str = Field(min_length=1, max_length=64, pattern=KEY_PATTERN)
    position: int | None = Field(None, description="Order in the file; omitted: appended")
    name_ja: str = Field(min_length=1, max_length=200)
    name_en: str = Field("", max_length=200)
    data_type: str = Field("text", max_length=32)
    category: ItemCategory = ItemCategory.other
    special_care: list[SpecialCare] = Field(default_factory=list)
    ordinance_special_care: bool = False
    ordinance_reference: str = Field("", max_length=200)
    retention_class: RetentionClass = RetentionClass.R0
    retention_months: int | None = Field(None, ge=0)
    nondisclosure_tags: list[NondisclosureTag] = Field(default_factory=list)
    withheld: bool = False
    withheld_reason: str = ""
    retired: bool = Field(False, description="Retired items stay in the file's history")

    @field_validator("special_care", "nondisclosure_tags")
    @classmethod
    def _sorted(cls, value: list[Any]) -> list[Any]:
        return sorted(set(value), key=str)


class FileRecord(_Stripped):
    """A 個人情報ファイル and its ファイル簿 entry (registry.schemas.FileCreate) with its items."""

    key: str = Field(min_length=1, max_length=64, pattern=KEY_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    organ: str = Field(min_length=1, description="Organ key")
    department: str | None = Field(None, description="Department key (the unit in charge)")
    purpose: str = ""
    record_scope: str = ""
    collection_method: str = ""
    regular_recipients: str = ""
    request_office_name: str = Field("", max_length=200)
    request_office_address: str = Field("", max_length=300)
    special_procedure: bool | None = None
    special_procedure_note: str = ""
    file_type: FileType | None = None
    persons_count: int | None = Field(None, ge=0)
    source_system: str = Field("", max_length=200)
    ordinance_extends: bool = False
    exclusion: str | None = None
    exclusion_note: str = ""
    withhold_collection_method: bool = False
    withhold_recipients: bool = False
    withhold_entire: bool = False
    withheld_reason: str = ""
    held_since: datetime | None = Field(
        None, description="Omitted: left as it is (a new file: the day it is created)")
    published: bool = Field(False, description="The entry is published (apply publishes it)")
    items: list[ItemRecord] = Field(default_factory=list)

    @field_validator("exclusion")
    @classmethod
    def _known_exclusion(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if value not in EXCLUSIONS:
            raise ValueError(f"unknown exclusion {value!r}; one of {', '.join(EXCLUSIONS)}")
        return value

    @field_validator("held_since", mode="before")
    @classmethod
    def _moment(cls, value: Any) -> Any:
        return _utc(value) if isinstance(value, date) else value

    @field_validator("held_since")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        return _utc(value)


class Approval(_Record):
    """An approval the bundle asks for; recorded only when `--as` authenticates `by`."""

    by: str = Field(min_length=1, description="Login of the approving privacy officer")
    comment: str = Field(min_length=1, max_length=4000)
    delegation_note: str = Field("", max_length=2000, description="専決 (authorisations)")


class PurposeRecord(_Record):
    """A 利用目的 with its citations, handling subjects, subjects rule and items."""

    key: str = Field(min_length=1, max_length=64, pattern=KEY_PATTERN)
    status: PurposeStatus | None = Field(None, description="Exported for review; not applied")
    version: int | None = Field(None, description="Exported for review; not applied")
    title_ja: str = Field(min_length=1, max_length=200)
    title_en: str = Field("", max_length=200)
    purpose_text: str = ""
    necessity: str = ""
    acquisition_method: AcquisitionMethod = AcquisitionMethod.reuse
    acquisition_note: str = ""
    handling_extraction: str = ""
    handling_matching_key: str = ""
    handling_logic: str = ""
    handling_logic_version: str = Field("", max_length=64)
    handling_result_viewers: str = ""
    handling_human_assessment: str = ""
    safeguards: Safeguards = Field(default_factory=Safeguards)
    public_notice: PublicNotice = Field(default_factory=PublicNotice)
    subjects_rule: SubjectsRule | None = None
    citations: list[Citation] = Field(default_factory=list)
    subjects: list[SubjectIn] = Field(default_factory=list)
    items: list[PurposeItemIn] = Field(default_factory=list)
    submitted_by: str | None = Field(None, description="Login that submits it for approval")
    approved: Approval | None = None


class RouteRecord(_Record):
    """The legal footing for items of one holding organ going to one recipient (the flows)."""

    key: str = Field(min_length=1, max_length=64, pattern=KEY_PATTERN)
    purpose: str = Field(description="Purpose key")
    status: RecordStatus | None = Field(None, description="Exported for review; not applied")
    items: list[str] = Field(min_length=1, description="Register item keys (one holding organ)")
    to_organ: str | None = Field(None, description="Receiving organ key")
    to_body: str | None = Field(None, description="Receiving outside body key")
    basis: Basis
    recurrence: Recurrence
    kind: RouteKind | None = Field(
        None, description="Derived; exported for review, recomputed on apply (must match)")
    reasoning: str = ""
    changed_purpose_text: str = ""
    law_citation: str = Field("", max_length=300)
    submitted_by: str | None = Field(
        None, description="Login that submits it (not for one-off routes: see authorisations)")
    approved: Approval | None = None


class AuthorisationRecord(_Record):
    """The four-condition authorisation of a one-off (ii)/(iii) route."""

    key: str = Field(min_length=1, max_length=64, pattern=KEY_PATTERN)
    route: str = Field(description="Route key")
    status: RecordStatus | None = Field(None, description="Exported for review; not applied")
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
    restricting_laws_checked: bool = False
    restricting_laws_note: str = ""
    access_limited_to: str = ""
    recipient_measures: str = ""
    submitted_by: str | None = Field(None, description="Login that submits it for approval")
    approved: Approval | None = Field(None, description="With the delegation (専決) recorded")

    @field_validator("valid_from", "valid_until")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        return _utc(value)


class Bundle(_Record):
    """A privacy-as-code bundle (format 1)."""

    model_config = ConfigDict(extra="forbid", title="Kodomo governance bundle")

    kodomo_bundle: Literal[1] = Field(description="Format version")
    municipality: MunicipalityRecord | None = None
    organs: list[OrganRecord] = Field(default_factory=list)
    departments: list[DepartmentRecord] = Field(default_factory=list)
    outside_bodies: list[OutsideBodyRecord] = Field(default_factory=list)
    staff: list[StaffRecord] = Field(default_factory=list)
    files: list[FileRecord] = Field(default_factory=list)
    purposes: list[PurposeRecord] = Field(default_factory=list)
    routes: list[RouteRecord] = Field(default_factory=list)
    authorisations: list[AuthorisationRecord] = Field(default_factory=list)


# Fields of purposes, routes and authorisations that are exported for review, never compared as
# content (the workflow fields are acted on by `--as`; the kind is derived).
REVIEW_FIELDS = frozenset({"status", "version", "submitted_by", "approved", "kind"})


def json_schema() -> dict[str, Any]:
    schema = Bundle.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def json_schema_text() -> str:
    return json.dumps(json_schema(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


# ---------------------------------------------------------------- reading and writing


def _path(loc: Iterable[str | int]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _bad(code: str, path: str, **params: Any) -> Reason:
    return Reason.of(code, field=path, **params)


def _unknown(path: str, what: str, key: str | None) -> Reason:
    return _bad("governance.bundle_unknown", path, what=_WHAT[what], what_en=what, key=key)


def load_bundle(data: Any) -> Bundle:
    """Validate loaded data; every problem is a Reason whose field is its path."""
    try:
        return Bundle.model_validate(data)
    except ValidationError as error:
        raise InvalidInput([
            _bad("governance.bundle_bad_value", _path(p.get("loc", ())) or "(bundle)",
                 detail=str(p.get("msg", ""))[:200])
            for p in error.errors()
        ]) from error


def parse_bundle(text: str) -> Bundle:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise InvalidInput(Reason.of("governance.bundle_unreadable", detail=str(error)[:200])
                           ) from error
    if not isinstance(data, dict):
        raise InvalidInput(Reason.of("governance.bundle_unreadable",
                                     detail="a mapping with kodomo_bundle: 1 is expected"))
    return load_bundle(data)


def dump(bundle: Bundle) -> dict[str, Any]:
    """The bundle as plain data, without the values that are defaults anyway."""
    return bundle.model_dump(mode="json", exclude_defaults=True) | {"kodomo_bundle": 1}


def to_yaml(data: Mapping[str, Any]) -> str:
    ordered = {"kodomo_bundle": data.get("kodomo_bundle", FORMAT_VERSION),
               **{k: v for k, v in data.items() if k != "kodomo_bundle"}}
    return yaml.safe_dump(ordered, allow_unicode=True, sort_keys=False, width=100)


# ---------------------------------------------------------------- export


@dataclass
class _Names:
    """id → key maps of everything a bundle refers to by key."""

    organs: dict[int, str]
    departments: dict[int, str]
    bodies: dict[int, str]
    logins: dict[int, str]
    purposes: dict[int, str]
    routes: dict[int, str]

    @classmethod
    def load(cls, session: Session) -> _Names:
        def keys(model: Any) -> dict[int, str]:
            return {row.id: row.key for row in session.exec(select(model))}

        return cls(
            organs=keys(Organ), departments=keys(Department), bodies=keys(OutsideBody),
            logins={a.id: a.login for a in session.exec(select(StaffAccount))
                    if a.id is not None},
            purposes=keys(Purpose), routes=keys(Route),
        )

    def login(self, account_id: int | None) -> str | None:
        return self.logins.get(account_id) if account_id is not None else None

    def department(self, department_id: int | None) -> str | None:
        return self.departments.get(department_id) if department_id is not None else None


def _approval_comment(session: Session, subject_type: str, subject_id: int | None) -> str:
    if subject_id is None:
        return "-"
    steps = [s for s in approvals.approval_history(session, subject_type, subject_id)
             if s.action == "approve"]
    return (steps[-1].comment if steps else "") or "-"


def _organ_record(organ: Organ) -> OrganRecord:
    return OrganRecord(key=organ.key, kind=OrganKind(organ.kind), name_ja=organ.name_ja,
                       name_en=organ.name_en)


def _department_record(department: Department, names: _Names) -> DepartmentRecord:
    return DepartmentRecord(key=department.key, organ=names.organs[department.organ_id],
                            parent=names.department(department.parent_id),
                            name_ja=department.name_ja, name_en=department.name_en)


def _body_record(body: OutsideBody) -> OutsideBodyRecord:
    return OutsideBodyRecord(key=body.key, kind=OutsideBodyKind(body.kind), name_ja=body.name_ja,
                             name_en=body.name_en, is_public_body=body.is_public_body)


def _staff_record(session: Session, account: StaffAccount, names: _Names) -> StaffRecord:
    assert account.id is not None
    return StaffRecord(
        login=account.login, display_name=account.display_name,
        department=names.department(account.department_id),
        roles=[RoleRecord(role=Role(g.role), organ=names.organs[g.organ_id],
                          department=names.department(g.department_id))
               for g in core_service.grants_of(session, account.id)],
    )


def _item_record(item: RegistryItem) -> ItemRecord:
    data = registry.item_dict(item)
    data.pop("status")
    return ItemRecord.model_validate({**data, "retired": item.status == ItemStatus.retired})


def _file_record(session: Session, file: RegistryFile) -> FileRecord:
    data = registry.snapshot(session, file)
    data.pop("items")
    data["held_since"] = as_utc(file.held_since) if file.held_since else None
    return FileRecord.model_validate({
        **data, "published": registry.has_live_entry(file),
        "items": [_item_record(i) for i in registry.items_of(session, file)],
    })


def _purpose_record(session: Session, purpose: Purpose, names: _Names) -> PurposeRecord:
    citations = session.exec(select(PurposeCitation).where(
        PurposeCitation.purpose_id == purpose.id).order_by(col(PurposeCitation.id))).all()
    subjects = session.exec(select(PurposeSubject).where(
        PurposeSubject.purpose_id == purpose.id).order_by(col(PurposeSubject.id))).all()
    rule = rules.parse_json_object(purpose.subjects_rule)
    status = PurposeStatus(purpose.status)
    approved = None
    if status in (PurposeStatus.approved, PurposeStatus.suspended, PurposeStatus.retired) \
            and purpose.approved_by is not None:
        approved = Approval(by=names.login(purpose.approved_by) or "?",
                            comment=_approval_comment(session, "purpose", purpose.id))
    return PurposeRecord(
        key=purpose.key, status=status, version=purpose.version,
        title_ja=purpose.title_ja, title_en=purpose.title_en,
        purpose_text=purpose.purpose_text, necessity=purpose.necessity,
        acquisition_method=AcquisitionMethod(purpose.acquisition_method),
        acquisition_note=purpose.acquisition_note,
        handling_extraction=purpose.handling_extraction,
        handling_matching_key=purpose.handling_matching_key,
        handling_logic=purpose.handling_logic,
        handling_logic_version=purpose.handling_logic_version,
        handling_result_viewers=purpose.handling_result_viewers,
        handling_human_assessment=purpose.handling_human_assessment,
        safeguards=Safeguards.model_validate(rules.parse_json_object(purpose.safeguards)),
        public_notice=PublicNotice.model_validate(rules.parse_json_object(purpose.public_notice)),
        subjects_rule=SubjectsRule.model_validate(rule) if rule else None,
        citations=[Citation(kind=c.kind, law_name=c.law_name, article=c.article, note=c.note)
                   for c in citations],
        subjects=[SubjectIn(organ=names.organs[s.organ_id],
                            department=names.department(s.department_id), role=s.role)
                  for s in subjects],
        items=[PurposeItemIn(item=item.key, necessity_reason=link.necessity_reason,
                             relevance_to_difficulty=link.relevance_to_difficulty)
               for link, item in purposes.purpose_items(session, purpose)],
        submitted_by=names.login(purpose.submitted_by),
        approved=approved,
    )


def _route_record(session: Session, route: Route, names: _Names) -> RouteRecord:
    kind = RouteKind(route.kind)
    status = RecordStatus(route.status)
    own_workflow = kind not in ONE_OFF_KINDS
    approved = None
    if own_workflow and status == RecordStatus.approved and route.approved_by is not None:
        approved = Approval(by=names.login(route.approved_by) or "?",
                            comment=_approval_comment(session, "route", route.id))
    return RouteRecord(
        key=route.key, purpose=names.purposes[route.purpose_id], status=status,
        items=[i.key for i in footing.route_items(session, route)],
        to_organ=names.organs.get(route.to_organ_id) if route.to_organ_id else None,
        to_body=names.bodies.get(route.to_body_id) if route.to_body_id else None,
        basis=Basis(route.basis), recurrence=Recurrence(route.recurrence), kind=kind,
        reasoning=route.reasoning, changed_purpose_text=route.changed_purpose_text,
        law_citation=route.law_citation,
        submitted_by=names.login(route.submitted_by) if own_workflow else None,
        approved=approved,
    )


def _authorisation_record(session: Session, auth: Authorisation, names: _Names
                          ) -> AuthorisationRecord:
    status = RecordStatus(auth.status)
    approved = None
    if status == RecordStatus.approved and auth.approved_by is not None:
        approved = Approval(by=names.login(auth.approved_by) or "?",
                            comment=_approval_comment(session, "authorisation", auth.id),
                            delegation_note=auth.delegation_note)
    fields = {name: getattr(auth, name) for name in AuthorisationFields.model_fields}
    for name in ("valid_from", "valid_until"):
        if fields[name] is not None:
            fields[name] = as_utc(fields[name])
    return AuthorisationRecord(
        key=auth.key, route=names.routes[auth.route_id], status=status, **fields,
        submitted_by=names.login(auth.submitted_by), approved=approved,
    )


def current_bundle(session: Session) -> Bundle:
    """What the database holds, as a bundle."""
    names = _Names.load(session)
    municipality = core_service.get_municipality(session)
    return Bundle(
        kodomo_bundle=1,
        municipality=MunicipalityRecord(key=municipality.key, code=municipality.code,
                                        name_ja=municipality.name_ja,
                                        name_en=municipality.name_en)
        if municipality else None,
        organs=[_organ_record(o) for o in core_service.list_organs(session)],
        departments=[_department_record(d, names) for d in core_service.list_departments(session)],
        outside_bodies=[_body_record(b) for b in core_service.list_outside_bodies(session)],
        staff=[_staff_record(session, a, names) for a in session.exec(
            select(StaffAccount).order_by(col(StaffAccount.id)))],
        files=[_file_record(session, f) for f in registry.list_files(session)],
        purposes=[_purpose_record(session, p, names) for p in purposes.list_purposes(session)],
        routes=[_route_record(session, r, names) for r in session.exec(
            select(Route).order_by(col(Route.key)))],
        authorisations=[_authorisation_record(session, a, names) for a in session.exec(
            select(Authorisation).order_by(col(Authorisation.key)))],
    )


def export_bundle(session: Session) -> dict[str, Any]:
    """Everything the bundle covers, as plain data (YAML with to_yaml)."""
    return dump(current_bundle(session))


# ---------------------------------------------------------------- validation


@dataclass
class _Known:
    """What exists after the bundle would be applied: the database plus the bundle."""

    organs: set[str]
    departments: dict[str, str]  # department → organ
    bodies: dict[str, bool]  # body → is_public_body
    logins: set[str]
    items: dict[str, tuple[str, str]]  # item → (file, organ)
    purpose_items: dict[str, set[str]]  # purpose → items
    route_kinds: dict[str, RouteKind | None]
    has_municipality: bool


def _known(session: Session, bundle: Bundle) -> _Known:
    names = _Names.load(session)
    organs = set(names.organs.values()) | {o.key for o in bundle.organs}
    departments = {d.key: names.organs[d.organ_id] for d in session.exec(select(Department))}
    departments.update({d.key: d.organ for d in bundle.departments})
    bodies = {b.key: b.is_public_body for b in session.exec(select(OutsideBody))}
    bodies.update({b.key: b.is_public_body for b in bundle.outside_bodies})
    logins = set(names.logins.values()) | {s.login for s in bundle.staff}
    files = {f.id: (f.key, names.organs[f.organ_id]) for f in session.exec(select(RegistryFile))}
    items = {i.key: files[i.file_id] for i in session.exec(select(RegistryItem))}
    for file in bundle.files:
        for item in file.items:
            items[item.key] = (file.key, file.organ)
    purpose_items: dict[str, set[str]] = {}
    for purpose in purposes.list_purposes(session):
        purpose_items[purpose.key] = {i.key for _, i in purposes.purpose_items(session, purpose)}
    for record in bundle.purposes:
        purpose_items[record.key] = {i.item for i in record.items}
    route_kinds: dict[str, RouteKind | None] = {
        r.key: RouteKind(r.kind) for r in session.exec(select(Route))}
    return _Known(organs, departments, bodies, logins, items, purpose_items, route_kinds,
                  core_service.get_municipality(session) is not None)


def _duplicates(keys: Sequence[str], path: str, name: str) -> list[Reason]:
    seen: set[str] = set()
    found = []
    for index, key in enumerate(keys):
        if key in seen:
            found.append(_bad("governance.bundle_duplicate", f"{path}[{index}].{name}", key=key))
        seen.add(key)
    return found


def _derive(record: RouteRecord, known: _Known) -> tuple[str | None, RouteKind | Reason | None]:
    """The holding organ and the derived kind of a route record (None when not derivable)."""
    organs = {known.items[k][1] for k in record.items if k in known.items}
    if len(organs) != 1 or (record.to_organ is None) == (record.to_body is None):
        return None, None
    from_organ = organs.pop()
    ids = {key: number for number, key in enumerate(sorted(known.organs | {from_organ}), 1)}
    if record.to_organ is not None:
        recipient = rules.Recipient(organ_id=ids.get(record.to_organ, -1))
    else:
        assert record.to_body is not None
        recipient = rules.Recipient(None, record.to_body, record.to_body, record.to_body,
                                    known.bodies.get(record.to_body, False))
    return from_organ, rules.derive_route(record.basis, record.recurrence, ids[from_organ],
                                          recipient)


def _check_workflow(path: str, submitted_by: str | None, approved: Approval | None,
                    known: _Known, *, delegation: bool = False) -> list[Reason]:
    problems = []
    if submitted_by is not None and submitted_by not in known.logins:
        problems.append(_unknown(f"{path}.submitted_by", "staff account", submitted_by))
    if approved is not None:
        if approved.by not in known.logins:
            problems.append(_unknown(f"{path}.approved.by", "staff account", approved.by))
        if submitted_by is not None and approved.by == submitted_by:
            problems.append(Reason.of("governance.self_approval", field=f"{path}.approved.by"))
        if delegation and not approved.delegation_note.strip():
            problems.append(Reason.of("governance.missing_delegation",
                                      field=f"{path}.approved.delegation_note"))
    return problems


def validate(session: Session, bundle: Bundle) -> list[Reason]:
    """Every problem of the bundle against the database, each with its path; [] when valid."""
    known = _known(session, bundle)
    problems: list[Reason] = []
    problems += _duplicates([o.key for o in bundle.organs], "organs", "key")
    problems += _duplicates([d.key for d in bundle.departments], "departments", "key")
    problems += _duplicates([b.key for b in bundle.outside_bodies], "outside_bodies", "key")
    problems += _duplicates([s.login for s in bundle.staff], "staff", "login")
    problems += _duplicates([f.key for f in bundle.files], "files", "key")
    problems += _duplicates([p.key for p in bundle.purposes], "purposes", "key")
    problems += _duplicates([r.key for r in bundle.routes], "routes", "key")
    problems += _duplicates([a.key for a in bundle.authorisations], "authorisations", "key")
    if not known.has_municipality and bundle.municipality is None and bundle.organs:
        problems.append(_bad("governance.bundle_no_municipality", "municipality"))

    def department_in(path: str, department: str | None, organ: str | None) -> None:
        if department is None:
            return
        if department not in known.departments:
            problems.append(_unknown(path, "department", department))
        elif organ is not None and organ in known.organs and known.departments[department] != organ:
            problems.append(Reason.of("core.department_outside_organ", department=department,
                                      organ=organ, field=path))

    def organ_known(path: str, organ: str) -> bool:
        if organ not in known.organs:
            problems.append(_unknown(path, "organ", organ))
            return False
        return True

    for i, department in enumerate(bundle.departments):
        organ_known(f"departments[{i}].organ", department.organ)
        department_in(f"departments[{i}].parent", department.parent, department.organ)
    for i, staff in enumerate(bundle.staff):
        department_in(f"staff[{i}].department", staff.department, None)
        for j, role in enumerate(staff.roles):
            organ_known(f"staff[{i}].roles[{j}].organ", role.organ)
            department_in(f"staff[{i}].roles[{j}].department", role.department, role.organ)
    item_keys: list[str] = []
    db_item_files = {i.key: f.key for i, f in session.exec(
        select(RegistryItem, RegistryFile).join(RegistryFile,
                                                col(RegistryFile.id) == RegistryItem.file_id))}
    for i, file in enumerate(bundle.files):
        organ_known(f"files[{i}].organ", file.organ)
        department_in(f"files[{i}].department", file.department, file.organ)
        for j, item in enumerate(file.items):
            item_keys.append(item.key)
            owner = db_item_files.get(item.key)
            if owner is not None and owner != file.key:
                problems.append(_bad("governance.bundle_item_of_other_file",
                                     f"files[{i}].items[{j}].key", key=item.key, file=owner))
    seen_items: set[str] = set()
    for i, file in enumerate(bundle.files):
        for j, item in enumerate(file.items):
            if item.key in seen_items:
                problems.append(_bad("governance.bundle_duplicate", f"files[{i}].items[{j}].key",
                                     key=item.key))
            seen_items.add(item.key)
    for i, purpose in enumerate(bundle.purposes):
        path = f"purposes[{i}]"
        for j, subject in enumerate(purpose.subjects):
            if organ_known(f"{path}.subjects[{j}].organ", subject.organ):
                department_in(f"{path}.subjects[{j}].department", subject.department,
                              subject.organ)
        problems += _duplicates([x.item for x in purpose.items], f"{path}.items", "item")
        for j, link in enumerate(purpose.items):
            if link.item not in known.items:
                problems.append(_unknown(f"{path}.items[{j}].item", "register item", link.item))
        problems += _check_workflow(path, purpose.submitted_by, purpose.approved, known)
    for i, route in enumerate(bundle.routes):
        path = f"routes[{i}]"
        if route.purpose not in known.purpose_items:
            problems.append(_unknown(f"{path}.purpose", "purpose", route.purpose))
        in_purpose = known.purpose_items.get(route.purpose, set())
        problems += _duplicates(route.items, f"{path}.items", "item")
        for j, key in enumerate(route.items):
            if key not in known.items:
                problems.append(_unknown(f"{path}.items[{j}]", "register item", key))
            elif route.purpose in known.purpose_items and key not in in_purpose:
                problems.append(Reason.of("governance.item_not_in_purpose", item=key,
                                          purpose=route.purpose, field=f"{path}.items[{j}]"))
        holders = sorted({known.items[k][1] for k in route.items if k in known.items})
        if len(holders) > 1:
            problems.append(Reason.of("governance.items_from_several_organs",
                                      organs=", ".join(holders), field=f"{path}.items"))
        if (route.to_organ is None) == (route.to_body is None):
            problems.append(Reason.of("governance.one_recipient", field=f"{path}.to_organ"))
        elif route.to_organ is not None:
            organ_known(f"{path}.to_organ", route.to_organ)
        elif route.to_body not in known.bodies:
            problems.append(_unknown(f"{path}.to_body", "outside body", route.to_body))
        _, derived = _derive(route, known)
        if isinstance(derived, Reason):
            problems.append(replace(derived, field=f"{path}.{derived.field or 'basis'}"))
        elif derived is not None:
            known.route_kinds[route.key] = derived
            if route.kind is not None and route.kind != derived:
                problems.append(_bad("governance.bundle_kind_mismatch", f"{path}.kind",
                                     derived=derived.value, given=route.kind.value))
            if derived in ONE_OFF_KINDS and (route.submitted_by or route.approved):
                problems.append(Reason.of(
                    "governance.route_needs_authorisation",
                    field=f"{path}.{'approved' if route.approved else 'submitted_by'}"))
        problems += _check_workflow(path, route.submitted_by, route.approved, known)
    for i, auth in enumerate(bundle.authorisations):
        path = f"authorisations[{i}]"
        if auth.route not in known.route_kinds:
            problems.append(_unknown(f"{path}.route", "route", auth.route))
        else:
            kind = known.route_kinds[auth.route]
            if kind is not None and kind not in ONE_OFF_KINDS:
                problems.append(Reason.of("governance.route_not_one_off", field=f"{path}.route"))
        problems += _check_workflow(path, auth.submitted_by, auth.approved, known,
                                    delegation=True)
    return problems


# ---------------------------------------------------------------- the plan

Action = Literal["create", "update", "unchanged", "submit", "approve", "not_done"]
Run = Callable[[Session], str | None]


@dataclass(frozen=True)
class Change:
    """One line of the plan: what happens to one record, the fields that differ, and why not."""

    action: Action
    kind: str
    key: str
    fields: tuple[str, ...] = ()
    note: str = ""
    path: str = ""
    run: Run | None = dc_field(default=None, compare=False, repr=False)

    @property
    def writes(self) -> bool:
        return self.action in ("create", "update", "submit", "approve")

    def line(self) -> str:
        text = f"{self.action} {self.kind} {self.key}"
        if self.fields:
            text += f": {', '.join(self.fields)}"
        if self.note:
            text += f" — {self.note}"
        return text


def _differs(current: BaseModel, desired: BaseModel, exclude: Iterable[str] = (),
             optional: Iterable[str] = ()) -> tuple[str, ...]:
    """Fields whose values differ; `optional` fields left out (None) of the bundle are ignored."""
    skip = set(exclude)
    have = current.model_dump(mode="json")
    want = desired.model_dump(mode="json")
    return tuple(name for name in type(desired).model_fields
                 if name not in skip and not (name in optional and want[name] is None)
                 and have.get(name) != want[name])


def _not_done(kind: str, key: str, path: str, note: str, fields: tuple[str, ...] = ()) -> Change:
    return Change("not_done", kind, key, fields, note, path)


def _ordered_departments(records: list[DepartmentRecord]) -> list[tuple[int, DepartmentRecord]]:
    """Parents before their children (the bundle's order otherwise)."""
    pending = list(enumerate(records))
    placed: set[str] = set()
    inside = {d.key for d in records}
    ordered: list[tuple[int, DepartmentRecord]] = []
    while pending:
        ready = [(i, d) for i, d in pending
                 if d.parent is None or d.parent in placed or d.parent not in inside]
        if not ready:  # a cycle: leave it to the service to refuse
            ready = pending[:1]
        for entry in ready:
            ordered.append(entry)
            placed.add(entry[1].key)
            pending.remove(entry)
    return ordered


def _submit(session: Session, principal: Principal, kind: str, key: str) -> None:
    if kind == "purpose":
        purposes.submit_purpose(session, principal, key)
    elif kind == "route":
        footing.submit_route(session, principal, key)
    else:
        footing.submit_authorisation(session, principal, key)


def _approve(session: Session, principal: Principal, kind: str, key: str, approval: Approval
             ) -> None:
    if kind == "purpose":
        purposes.approve_purpose(session, principal, key, Decision(comment=approval.comment))
    elif kind == "route":
        footing.approve_route(session, principal, key, Decision(comment=approval.comment))
    else:
        footing.approve_authorisation(session, principal, key, ApprovalIn(
            comment=approval.comment, delegation_note=approval.delegation_note))


class _Planner:
    def __init__(self, session: Session, bundle: Bundle, actor: audit.Actor,
                 as_principal: Principal | None, as_login: str | None) -> None:
        self.session = session
        self.bundle = bundle
        self.actor = actor
        self.principal = as_principal
        self.as_login = as_principal.login if as_principal else as_login
        self.current = current_bundle(session)
        self.changes: list[Change] = []
        self.workflow: list[Change] = []

    def add(self, change: Change) -> None:
        self.changes.append(change)

    def by_key(self, records: Sequence[Any], name: str = "key") -> dict[str, Any]:
        return {getattr(r, name): r for r in records}

    # -------------------------------------------------------- structure

    def municipality(self) -> None:
        wanted = self.bundle.municipality
        have = self.current.municipality
        if wanted is None:
            return
        if have is None:
            def run(session: Session) -> None:
                core_service.create_municipality(session, self.actor, key=wanted.key,
                                                 code=wanted.code, name_ja=wanted.name_ja,
                                                 name_en=wanted.name_en)
            self.add(Change("create", "municipality", wanted.key, path="municipality", run=run))
            return
        fields = _differs(have, wanted)
        if fields:
            self.add(_not_done("municipality", wanted.key, "municipality",
                               f"this deployment serves {have.key}; kept as it is", fields))
        else:
            self.add(Change("unchanged", "municipality", wanted.key, path="municipality"))

    def organs(self) -> None:
        have = self.by_key(self.current.organs)
        for i, record in enumerate(self.bundle.organs):
            path = f"organs[{i}]"
            if record.key in have:
                fields = _differs(have[record.key], record)
                self.add(_not_done("organ", record.key, path, "core has no operation to change "
                                   "an organ; change it by hand", fields) if fields
                         else Change("unchanged", "organ", record.key, path=path))
                continue

            def run(session: Session, r: OrganRecord = record) -> None:
                core_service.create_organ(session, self.actor, key=r.key, kind=r.kind,
                                          name_ja=r.name_ja, name_en=r.name_en)
            self.add(Change("create", "organ", record.key, path=path, run=run))

    def departments(self) -> None:
        have = self.by_key(self.current.departments)
        for i, record in _ordered_departments(self.bundle.departments):
            path = f"departments[{i}]"
            if record.key in have:
                fields = _differs(have[record.key], record)
                self.add(_not_done("department", record.key, path, "core has no operation to "
                                   "change a department; change it by hand", fields) if fields
                         else Change("unchanged", "department", record.key, path=path))
                continue

            def run(session: Session, r: DepartmentRecord = record) -> None:
                core_service.create_department(session, self.actor, key=r.key, organ_key=r.organ,
                                               name_ja=r.name_ja, name_en=r.name_en,
                                               parent_key=r.parent)
            self.add(Change("create", "department", record.key, path=path, run=run))

    def outside_bodies(self) -> None:
        have = self.by_key(self.current.outside_bodies)
        for i, record in enumerate(self.bundle.outside_bodies):
            path = f"outside_bodies[{i}]"
            if record.key in have:
                fields = _differs(have[record.key], record)
                self.add(_not_done("outside_body", record.key, path, "core has no operation to "
                                   "change an outside body; change it by hand", fields) if fields
                         else Change("unchanged", "outside_body", record.key, path=path))
                continue

            def run(session: Session, r: OutsideBodyRecord = record) -> None:
                core_service.create_outside_body(session, self.actor, key=r.key, kind=r.kind,
                                                 name_ja=r.name_ja, name_en=r.name_en,
                                                 is_public_body=r.is_public_body)
            self.add(Change("create", "outside_body", record.key, path=path, run=run))

    def staff(self) -> None:
        have: dict[str, StaffRecord] = self.by_key(self.current.staff, "login")
        for i, record in enumerate(self.bundle.staff):
            path = f"staff[{i}]"
            existing = have.get(record.login)
            if existing is None:
                def create(session: Session, r: StaffRecord = record) -> str:
                    core_service.create_account(
                        session, self.actor, login=r.login, display_name=r.display_name,
                        password=secrets.token_urlsafe(32), department_key=r.department)
                    return "created with a random password nobody knows: it cannot sign in " \
                           "until an administrator sets a password"
                self.add(Change("create", "account", record.login, path=path, run=create,
                                note="random password; cannot sign in until one is set"))
                granted: list[RoleRecord] = []
            else:
                fields = _differs(existing, record, exclude={"roles"})
                self.add(_not_done("account", record.login, path, "core has no operation to "
                                   "change an account; change it by hand", fields) if fields
                         else Change("unchanged", "account", record.login, path=path))
                granted = existing.roles
            for j, role in enumerate(record.roles):
                name = f"{record.login}:{role.role.value}@{role.organ}" + (
                    f"/{role.department}" if role.department else "")
                if role in granted:
                    self.add(Change("unchanged", "role_grant", name, path=f"{path}.roles[{j}]"))
                    continue

                def grant(session: Session, r: RoleRecord = role, login: str = record.login
                          ) -> None:
                    core_service.grant_role(session, self.actor, login=login, role=r.role,
                                            organ_key=r.organ, department_key=r.department)
                self.add(Change("create", "role_grant", name, path=f"{path}.roles[{j}]",
                                run=grant))
            for role in granted:
                if role not in record.roles:
                    name = f"{record.login}:{role.role.value}@{role.organ}" + (
                        f"/{role.department}" if role.department else "")
                    self.add(_not_done("role_grant", name, f"{path}.roles",
                                       "not in the bundle; kept (apply never revokes)"))

    def files(self) -> None:
        have: dict[str, FileRecord] = self.by_key(self.current.files)
        for i, record in enumerate(self.bundle.files):
            path = f"files[{i}]"
            existing = have.get(record.key)
            touched = False
            ceased = False
            if existing is None:
                data = record.model_dump(include={"key", *FileFields.model_fields})
                if data.get("held_since") is None:
                    data.pop("held_since")

                def create(session: Session, d: dict[str, Any] = data) -> None:
                    registry.create_file(session, self.actor,
                                         FileCreate.model_validate({**d, "reason": APPLY_REASON}))
                self.add(Change("create", "file", record.key, path=path, run=create))
                touched = True
                current_items: dict[str, ItemRecord] = {}
            else:
                file = registry.get_file(self.session, record.key)
                ceased = file.ceased_at is not None
                fields = _differs(existing, record, exclude={"items", "published"},
                                  optional={"held_since"})
                current_items = self.by_key(existing.items)
                if fields and ceased:
                    self.add(_not_done("file", record.key, path, "the file has ceased and "
                                       "cannot change", fields))
                elif fields:
                    changes = {name: getattr(record, name) for name in fields}

                    def update(session: Session, c: dict[str, Any] = changes,
                               key: str = record.key) -> None:
                        registry.update_file(session, self.actor, key, FileUpdate.model_validate(
                            {**c, "reason": APPLY_REASON}))
                    self.add(Change("update", "file", record.key, fields, path=path, run=update))
                    touched = True
                else:
                    self.add(Change("unchanged", "file", record.key, path=path))
            touched = self.items(record, path, current_items, ceased) or touched
            self.publication(record, path, existing, touched)

    def items(self, record: FileRecord, path: str, have: dict[str, ItemRecord],
              ceased: bool) -> bool:
        touched = False
        for j, item in enumerate(record.items):
            item_path = f"{path}.items[{j}]"
            existing = have.get(item.key)
            if existing is None:
                data = item.model_dump(include={"key", *ItemFields.model_fields})

                def add(session: Session, d: dict[str, Any] = data, file_key: str = record.key,
                        retire: bool = item.retired) -> None:
                    registry.add_item(session, self.actor, file_key,
                                      ItemCreate.model_validate({**d, "reason": APPLY_REASON}))
                    if retire:
                        registry.retire_item(session, self.actor, str(d["key"]), APPLY_REASON)
                self.add(Change("create", "item", item.key, path=item_path, run=add,
                                note="retired" if item.retired else ""))
                touched = True
                continue
            fields = _differs(existing, item, exclude={"retired"}, optional={"position"})
            retire = item.retired and not existing.retired
            if existing.retired and not item.retired:
                self.add(_not_done("item", item.key, item_path,
                                   "retired in the database; there is no operation to reinstate "
                                   "an item", ("retired",)))
            if (fields or retire) and ceased:
                self.add(_not_done("item", item.key, item_path, "the file has ceased",
                                   fields + (("retired",) if retire else ())))
            elif fields or retire:
                changes = {name: getattr(item, name) for name in fields}

                def update(session: Session, c: dict[str, Any] = changes, key: str = item.key,
                           retire: bool = retire) -> None:
                    if c:
                        registry.update_item(session, self.actor, key, ItemUpdate.model_validate(
                            {**c, "reason": APPLY_REASON}))
                    if retire:
                        registry.retire_item(session, self.actor, key, APPLY_REASON)
                self.add(Change("update", "item", item.key,
                                fields + (("retired",) if retire else ()), path=item_path,
                                run=update))
                touched = True
            elif not (existing.retired and not item.retired):
                self.add(Change("unchanged", "item", item.key, path=item_path))
        wanted = {i.key for i in record.items}
        for key, item in have.items():
            if key not in wanted and not item.retired:
                self.add(_not_done("item", key, f"{path}.items", "in the database but not in "
                                   "the bundle; kept (apply never retires items)"))
        return touched

    def publication(self, record: FileRecord, path: str, existing: FileRecord | None,
                    touched: bool) -> None:
        if not record.published:
            if existing is not None and existing.published:
                self.add(_not_done("entry", record.key, f"{path}.published",
                                   "published in the database; kept (apply never deletes an "
                                   "entry)"))
            return
        if existing is not None:
            file = registry.get_file(self.session, record.key)
            if file.ceased_at is not None:
                return
            what = registry.pending_change(self.session, file)
            if what is not None and not touched:
                self.add(_not_done("entry", record.key, f"{path}.published",
                                   f"a recorded change is pending ({what}); edit the file, then "
                                   "publish"))
                return
            if not touched and registry.has_live_entry(file) and not registry.is_stale(file):
                self.add(Change("unchanged", "entry", record.key, path=f"{path}.published"))
                return

        def publish(session: Session, key: str = record.key) -> None:
            registry.publish(session, self.actor, key, APPLY_REASON)
        self.add(Change("update" if existing is not None else "create", "entry", record.key,
                        ("published",), "publish the ファイル簿 entry", f"{path}.published",
                        run=publish))

    # -------------------------------------------------------- records that need approval

    def step(self, kind: str, key: str, path: str, status: str, submitted_by: str | None,
             approved: Approval | None) -> None:
        """Submission and approval: each only as the very login the bundle names."""
        principal = self.principal
        if status in (RecordStatus.draft, RecordStatus.returned):
            if submitted_by is None:
                if approved is not None:
                    self.workflow.append(_not_done(kind, key, path, f"stays {status}: an approval "
                                                   "without submitted_by cannot be recorded"))
                return
            if self.as_login != submitted_by:
                self.workflow.append(_not_done(
                    kind, key, path, f"stays {status}: submitted_by is {submitted_by}; apply "
                    f"with --as {submitted_by} to submit it"))
                return

            def run_submit(session: Session) -> None:
                assert principal is not None
                _submit(session, principal, kind, key)
            self.workflow.append(Change("submit", kind, key, note=f"as {submitted_by}",
                                        path=path, run=run_submit))
            if approved is not None:
                self.workflow.append(_not_done(
                    kind, key, path, f"stays submitted: the approval by {approved.by} needs "
                    f"another apply with --as {approved.by} (the submitter cannot approve)"))
            return
        if status == RecordStatus.submitted and approved is not None:
            if self.as_login != approved.by:
                self.workflow.append(_not_done(
                    kind, key, path, f"stays submitted: the approval by {approved.by} is "
                    f"recorded only with --as {approved.by}"))
                return

            def run_approve(session: Session) -> None:
                assert principal is not None
                assert approved is not None
                _approve(session, principal, kind, key, approved)
            self.workflow.append(Change("approve", kind, key, note=f"by {approved.by}",
                                        path=path, run=run_approve))

    def purposes(self) -> None:
        have: dict[str, PurposeRecord] = self.by_key(self.current.purposes)
        for i, record in enumerate(self.bundle.purposes):
            path = f"purposes[{i}]"
            existing = have.get(record.key)
            status: str
            if existing is None:
                def create(session: Session, r: PurposeRecord = record) -> None:
                    purposes.create_purpose(session, self.actor, PurposeCreate.model_validate(
                        r.model_dump(include=set(PurposeCreate.model_fields))))
                    for link in r.items:
                        purposes.set_item(session, self.actor, r.key, link)
                self.add(Change("create", "purpose", record.key, path=path, run=create,
                                note="as a draft"))
                status = PurposeStatus.draft
            else:
                status = existing.status or PurposeStatus.draft
                fields = self.purpose_differs(existing, record)
                if not fields:
                    self.add(Change("unchanged", "purpose", record.key, path=path))
                elif status in (PurposeStatus.submitted, PurposeStatus.retired):
                    self.add(_not_done("purpose", record.key, path, f"it is {status}; it cannot "
                                       "change until it is returned (or revised)", fields))
                else:
                    revise = status in (PurposeStatus.approved, PurposeStatus.suspended)

                    def update(session: Session, r: PurposeRecord = record,
                               f: tuple[str, ...] = fields, revise: bool = revise,
                               old: PurposeRecord = existing) -> None:
                        if revise:
                            purposes.revise_purpose(session, self.actor, r.key)
                        simple = set(f) - {"items"}
                        if simple:
                            purposes.update_purpose(session, self.actor, r.key,
                                               PurposeUpdate.model_validate(
                                                   r.model_dump(include=simple)))
                        if "items" in f:
                            before = {x.item: x for x in old.items}
                            for link in r.items:
                                if before.get(link.item) != link:
                                    purposes.set_item(session, self.actor, r.key, link)
                            for gone in set(before) - {x.item for x in r.items}:
                                purposes.remove_item(session, self.actor, r.key, gone)
                    note = (f"revised to version {(existing.version or 1) + 1} as a draft; it "
                            "needs approval again") if revise else ""
                    self.add(Change("update", "purpose", record.key, fields, note, path,
                                    run=update))
                    if revise:
                        status = PurposeStatus.draft
            self.step("purpose", record.key, path, status, record.submitted_by, record.approved)

    @staticmethod
    def purpose_differs(current: PurposeRecord, desired: PurposeRecord) -> tuple[str, ...]:
        def normal(record: PurposeRecord) -> PurposeRecord:
            return record.model_copy(update={
                "subjects": sorted(record.subjects,
                                   key=lambda s: (s.organ, s.department or "", s.role.value)),
                "items": sorted(record.items, key=lambda x: x.item),
            })
        return _differs(normal(current), normal(desired), REVIEW_FIELDS)

    def routes(self) -> None:
        have: dict[str, RouteRecord] = self.by_key(self.current.routes)
        self.skipped_routes: set[str] = set()
        for i, record in enumerate(self.bundle.routes):
            path = f"routes[{i}]"
            existing = have.get(record.key)
            if existing is None:
                if record.status == RecordStatus.revoked:
                    self.skipped_routes.add(record.key)
                    self.add(_not_done("route", record.key, path, "revoked in the bundle; "
                                       "not created"))
                    continue

                def create(session: Session, r: RouteRecord = record) -> None:
                    footing.create_route(session, self.actor, r.purpose, RouteCreate.model_validate(
                        r.model_dump(include=set(RouteCreate.model_fields))))
                self.add(Change("create", "route", record.key, path=path, run=create,
                                note="as a draft"))
                status: str = RecordStatus.draft
            else:
                status = existing.status or RecordStatus.draft
                fields = _differs(existing.model_copy(update={"items": sorted(existing.items)}),
                                  record.model_copy(update={"items": sorted(record.items)}),
                                  REVIEW_FIELDS)
                self.add(_not_done("route", record.key, path, "governance has no operation to "
                                   "change a route; give the new footing a new key", fields)
                         if fields else Change("unchanged", "route", record.key, path=path))
            kind = existing.kind if existing else record.kind
            if kind in ONE_OFF_KINDS:
                continue  # submitted and approved through its authorisation
            self.step("route", record.key, path, status, record.submitted_by, record.approved)

    def authorisations(self) -> None:
        have: dict[str, AuthorisationRecord] = self.by_key(self.current.authorisations)
        for i, record in enumerate(self.bundle.authorisations):
            path = f"authorisations[{i}]"
            existing = have.get(record.key)
            if existing is None:
                if record.status == RecordStatus.revoked or record.route in self.skipped_routes:
                    self.add(_not_done("authorisation", record.key, path,
                                       "revoked in the bundle; not created"))
                    continue

                def create(session: Session, r: AuthorisationRecord = record) -> None:
                    footing.create_authorisation(session, self.actor,
                                             AuthorisationCreate.model_validate(r.model_dump(
                                                 include=set(AuthorisationCreate.model_fields))))
                self.add(Change("create", "authorisation", record.key, path=path, run=create,
                                note="as a draft"))
                status: str = RecordStatus.draft
            else:
                status = existing.status or RecordStatus.draft
                fields = _differs(existing, record, REVIEW_FIELDS)
                if not fields:
                    self.add(Change("unchanged", "authorisation", record.key, path=path))
                elif status not in (RecordStatus.draft, RecordStatus.returned):
                    self.add(_not_done("authorisation", record.key, path, f"it is {status}; an "
                                       "authorisation changes only as a draft (give a new "
                                       "authorisation a new key)", fields))
                else:
                    def update(session: Session, r: AuthorisationRecord = record) -> None:
                        footing.update_authorisation(session, self.actor, r.key,
                                                 AuthorisationFields.model_validate(r.model_dump(
                                                     include=set(AuthorisationFields.model_fields))))
                    self.add(Change("update", "authorisation", record.key, fields, path=path,
                                    run=update))
            self.step("authorisation", record.key, path, status, record.submitted_by,
                      record.approved)

    def run(self) -> list[Change]:
        self.municipality()
        self.organs()
        self.departments()
        self.outside_bodies()
        self.staff()
        self.files()
        self.purposes()
        self.routes()
        self.authorisations()
        return self.changes + self.workflow


def _checked(session: Session, bundle: Bundle | Mapping[str, Any]) -> Bundle:
    loaded = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    problems = validate(session, loaded)
    if problems:
        raise InvalidInput(problems)
    return loaded


def plan(session: Session, bundle: Bundle | Mapping[str, Any], as_login: str | None = None
         ) -> list[Change]:
    """What applying the bundle would do, record by record (reads only).

    `as_login` is the login `--as` would authenticate: it decides which submissions and approvals
    the bundle asks for would be carried out. InvalidInput (every problem, with its path) when
    the bundle is not valid.
    """
    loaded = _checked(session, bundle)
    return _Planner(session, loaded, audit.SYSTEM, None, as_login).run()


def _at(error: DomainError, path: str) -> DomainError:
    reasons = [replace(r, field=f"{path}.{r.field}" if r.field else path) for r in error.reasons]
    return type(error)(reasons)


def apply(session: Session, actor: audit.Actor, bundle: Bundle | Mapping[str, Any],
          approver: Principal | None = None) -> list[Change]:
    """Apply the bundle in the caller's transaction: all of it, or (on any error) none of it.

    `actor` writes the records (the CLI's is the system, as for every other import); `approver`
    is the principal `--as` authenticated, who submits or approves exactly what the bundle says
    that login submits or approves. A record the service refuses to write is an error (raised,
    with the record's path; the caller rolls everything back). A submission or approval the
    service refuses is undone alone and reported as `not_done` with the reasons. Never commits.
    """
    loaded = _checked(session, bundle)
    changes = _Planner(session, loaded, actor, approver, None).run()
    done: list[Change] = []
    for change in changes:
        if change.run is None:
            done.append(change)
            continue
        if change.action in ("submit", "approve"):
            # A refused step (an incomplete purpose, no approved PIA, the repeat rule…) depends
            # on the state, not on the bundle: it is undone alone and reported, and the rest of
            # the apply stands.
            step = session.begin_nested()
            try:
                change.run(session)
                session.flush()
            except DomainError as error:
                step.rollback()
                why = "; ".join(f"{r.code}: {r.message_en}" for r in error.reasons)
                done.append(replace(change, action="not_done",
                                    note=f"{change.action} refused, so it stays as it was ({why})"))
                continue
            step.commit()
            done.append(change)
            continue
        try:
            note = change.run(session)
        except DomainError as error:
            raise _at(error, change.path or change.key) from error
        session.flush()
        done.append(replace(change, note=note) if note else change)
    counts: dict[str, int] = {}
    for change in done:
        counts[change.action] = counts.get(change.action, 0) + 1
    if any(c.writes for c in done):
        digest = hashlib.sha256(json.dumps(dump(loaded), sort_keys=True, ensure_ascii=False)
                                .encode()).hexdigest()
        audit.append(session, "governance.bundle_applied",
                     actor=approver.actor() if approver else actor,
                     details={"bundle_sha256": digest, **{k: counts[k] for k in sorted(counts)}})
    return done


def summary(changes: Sequence[Change]) -> str:
    counts = {action: 0 for action in ("create", "update", "submit", "approve", "unchanged",
                                       "not_done")}
    for change in changes:
        counts[change.action] += 1
    return ", ".join(f"{counts[a]} {a.replace('_', ' ')}" for a in counts)
