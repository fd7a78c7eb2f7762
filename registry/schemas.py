"""API models of the register, in and out (never a table model)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from core.schemas import ReasonPublic
from registry.models import (
    FileType,
    ItemCategory,
    NondisclosureTag,
    RetentionClass,
    SpecialCare,
)
from registry.rules import EXCLUSIONS

KEY_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"


def _known_exclusion(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    if value not in EXCLUSIONS:
        raise ValueError(f"unknown exclusion {value!r}; one of {', '.join(EXCLUSIONS)}")
    return value


# An exclusion from the ファイル簿 (registry.rules.EXCLUSIONS) by its code; empty is none.
Exclusion = Annotated[str | None, AfterValidator(_known_exclusion)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class FileFields(_Strict):
    """Every editable field of a file; on update only the fields sent are changed."""

    name: str | None = Field(None, min_length=1, max_length=200)
    organ: str | None = Field(None, description="Organ key")
    department: str | None = Field(None, description="Department key (the unit in charge)")
    purpose: str | None = None
    record_scope: str | None = None
    collection_method: str | None = None
    regular_recipients: str | None = None
    request_office_name: str | None = Field(None, max_length=200)
    request_office_address: str | None = Field(None, max_length=300)
    special_procedure: bool | None = None
    special_procedure_note: str | None = None
    file_type: FileType | None = None
    persons_count: int | None = Field(None, ge=0)
    source_system: str | None = Field(None, max_length=200)
    ordinance_extends: bool | None = None
    exclusion: Exclusion = None
    exclusion_note: str | None = None
    withhold_collection_method: bool | None = None
    withhold_recipients: bool | None = None
    withhold_entire: bool | None = None
    withheld_reason: str | None = None
    held_since: datetime | date | None = None


class FileCreate(FileFields):
    key: str = Field(min_length=1, max_length=64, pattern=KEY_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    organ: str = Field(min_length=1)
    reason: str = Field("新規登録", min_length=1)


class FileUpdate(FileFields):
    reason: str = Field(min_length=1, description="Why the file changes (kept in its history)")


class ItemFields(_Strict):
    name_ja: str | None = Field(None, min_length=1, max_length=200)
    name_en: str | None = Field(None, max_length=200)
    data_type: str | None = Field(None, max_length=32)
    category: ItemCategory | None = None
    special_care: list[SpecialCare] | None = None
    ordinance_special_care: bool | None = None
    ordinance_reference: str | None = Field(None, max_length=200)
    retention_class: RetentionClass | None = None
    retention_months: int | None = Field(None, ge=0)
    nondisclosure_tags: list[NondisclosureTag] | None = None
    withheld: bool | None = None
    withheld_reason: str | None = None
    position: int | None = None


class ItemCreate(ItemFields):
    key: str = Field(min_length=1, max_length=64, pattern=KEY_PATTERN)
    name_ja: str = Field(min_length=1, max_length=200)
    reason: str = Field("記録項目の追加", min_length=1)


class ItemUpdate(ItemFields):
    reason: str = Field(min_length=1)


class ReasonBody(_Strict):
    reason: str = Field(min_length=1)


class CeaseBody(ReasonBody):
    delete_entry: bool = True


class ChangeBody(_Strict):
    what: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1)


class StatusPublic(BaseModel):
    usable: bool
    at: datetime
    reasons: list[ReasonPublic]


class ItemPublic(BaseModel):
    key: str
    file: str
    position: int
    name_ja: str
    name_en: str
    data_type: str
    category: str
    special_care: list[str]
    ordinance_special_care: bool
    ordinance_reference: str
    retention_class: str
    retention_months: int | None
    nondisclosure_tags: list[str]
    withheld: bool
    withheld_reason: str
    status: str
    retired_at: datetime | None


class FilePublic(BaseModel):
    key: str
    name: str
    organ: str
    department: str | None
    purpose: str
    record_scope: str
    collection_method: str
    regular_recipients: str
    request_office_name: str
    request_office_address: str
    special_procedure: bool | None
    special_procedure_note: str
    file_type: str | None
    persons_count: int | None
    source_system: str
    ordinance_extends: bool
    exclusion: str | None
    exclusion_note: str
    withhold_collection_method: bool
    withhold_recipients: bool
    withhold_entire: bool
    withheld_reason: str
    contains_special_care: bool
    contains_ordinance_special_care: bool
    publication_required: bool
    stale: bool
    held_since: datetime | None
    created_at: datetime
    entry_created_at: datetime | None
    last_changed_at: datetime
    entry_updated_at: datetime | None
    ceased_at: datetime | None
    entry_deleted_at: datetime | None
    pending_change_at: datetime | None
    version: int
    published_version: int | None
    missing_statutory_items: list[str]
    items: list[ItemPublic]


class VersionPublic(BaseModel):
    version: int
    action: str
    item: str | None
    actor_type: str
    actor_id: int | None
    reason: str
    at: datetime


class PublicItem(BaseModel):
    """A 記録項目 as the public register shows it (withheld items never reach this model)."""

    name_ja: str
    name_en: str


class PublicEntry(BaseModel):
    """One published ファイル簿 entry: the statutory items only, withheld ones left out."""

    key: str
    name: str
    organ: str
    organ_name: str
    department_name: str
    purpose: str
    items: list[PublicItem]
    record_scope: str
    collection_method: str | None
    contains_special_care: bool
    contains_ordinance_special_care: bool
    regular_recipients: str | None
    request_office_name: str
    request_office_address: str
    special_procedure: bool
    special_procedure_note: str
    file_type: str
    file_type_label: str
    persons_count: int | None
    entry_created_at: datetime | None
    entry_updated_at: datetime | None
    version: int


class PublicOrganRegister(BaseModel):
    organ: str
    organ_name: str
    organ_name_en: str
    entries: list[PublicEntry]


class PublicRegister(BaseModel):
    municipality: str
    generated_at: datetime
    organs: list[PublicOrganRegister]
