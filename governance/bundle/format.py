"""The bundle file: its pydantic records (docs/bundle.schema.json is generated from them), and
reading and writing it as YAML."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core import textio
from core.clock import TOKYO
from core.models import OrganKind, OutsideBodyKind, Role
from core.reasons import InvalidInput, Reason
from governance.models import (
    AcquisitionMethod,
    Basis,
    PurposeStatus,
    RecordStatus,
    Recurrence,
    RouteKind,
)
from governance.rules import JobKind
from governance.schemas import KEY_PATTERN as GOVERNANCE_KEY
from governance.schemas import (
    AuthorisationFields,
    Citation,
    PublicNotice,
    PurposeItemIn,
    Safeguards,
    SubjectIn,
    SubjectsRule,
)
from registry.models import (
    FileType,
    ItemCategory,
    NondisclosureTag,
    RetentionClass,
    SpecialCare,
)
from registry.schemas import KEY_PATTERN as REGISTER_KEY
from registry.schemas import Exclusion

FORMAT_VERSION = 1


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
    active: bool | None = Field(
        None, description="false: deactivated; true: reactivated; omitted: left as it is")


class DepartmentRecord(_Record):
    key: str = Field(min_length=1, max_length=64)
    organ: str = Field(description="Organ key")
    parent: str | None = Field(None, description="Parent department key (same organ)")
    name_ja: str = Field(min_length=1, max_length=200)
    name_en: str = Field(min_length=1, max_length=200)
    active: bool | None = Field(
        None, description="false: deactivated; true: reactivated; omitted: left as it is")


class OutsideBodyRecord(_Record):
    key: str = Field(min_length=1, max_length=64)
    kind: OutsideBodyKind
    name_ja: str = Field(min_length=1, max_length=200)
    name_en: str = Field(min_length=1, max_length=200)
    is_public_body: bool = Field(
        False, description="Another local government's organ or a national body (69(2)(iii))")
    active: bool | None = Field(
        None, description="false: deactivated; true: reactivated; omitted: left as it is")


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
    active: bool | None = Field(
        None, description="false: deactivated; true: reactivated; omitted: left as it is")


class ItemRecord(_Stripped):
    """A 記録項目 of a file (registry.schemas.ItemCreate without the change reason)."""

    key: str = Field(min_length=1, max_length=64, pattern=REGISTER_KEY)
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

    key: str = Field(min_length=1, max_length=64, pattern=REGISTER_KEY)
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
    exclusion: Exclusion = None
    exclusion_note: str = ""
    withhold_collection_method: bool = False
    withhold_recipients: bool = False
    withhold_entire: bool = False
    withheld_reason: str = ""
    held_since: datetime | None = Field(
        None, description="Omitted: left as it is (a new file: the day it is created)")
    published: bool = Field(False, description="The entry is published (apply publishes it)")
    items: list[ItemRecord] = Field(default_factory=list)

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

    key: str = Field(min_length=1, max_length=64, pattern=GOVERNANCE_KEY)
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
    job_kinds: list[JobKind] = Field(
        default_factory=list,
        description="The job kinds the handling method permits: linkage, scoring (any automated "
                    "assessment of individuals), statistics, export; the gate refuses any other")
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

    key: str = Field(min_length=1, max_length=64, pattern=GOVERNANCE_KEY)
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


class _AuthorisationKey(_Record):
    # An authorisation record is the service's AuthorisationFields between these (a base's
    # fields come first, so the key leads in the file) and the workflow fields.
    key: str = Field(min_length=1, max_length=64, pattern=GOVERNANCE_KEY)
    route: str = Field(description="Route key")
    status: RecordStatus | None = Field(None, description="Exported for review; not applied")


class AuthorisationRecord(AuthorisationFields, _AuthorisationKey):
    """The four-condition authorisation of a one-off (ii)/(iii) route."""

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


def load_bundle(data: Any) -> Bundle:
    """Validate loaded data; every problem is a Reason whose field is its path."""
    try:
        return Bundle.model_validate(data)
    except ValidationError as error:
        raise InvalidInput([
            Reason.of("governance.bundle_bad_value", field=_path(p.get("loc", ())) or "(bundle)",
                      detail=str(p.get("msg", ""))[:200])
            for p in error.errors()
        ]) from error


def parse_bundle(source: str | bytes) -> Bundle:
    """A bundle from its file's bytes (UTF-8, BOM, UTF-16 or CP932: core.textio.decode) or
    text: control characters, over-long lines and scalars and deep nesting are refused."""
    text = textio.decode(source) if isinstance(source, bytes) else source.lstrip("\ufeff")
    textio.refuse_control_characters(text)
    try:
        data = textio.load_yaml(text)
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

