"""Tables of the register: 個人情報ファイル, their 記録項目, and every version of both.

The current state lives in `registry_file` and `registry_item`; every change also writes an
immutable `registry_version` row holding the whole file (with its items) as canonical JSON, who
changed it and why. The public register is rendered from the snapshot of the published version,
never from the working copy.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.models import utc_column


class FileType(enum.StrEnum):
    """施行令 20(6)(1): a computer file (60(2)(i)) or a manual file (60(2)(ii))."""

    computer = "computer"
    manual = "manual"


class ItemCategory(enum.StrEnum):
    identity = "identity"  # 本人特定（氏名・生年月日・住所等）
    household = "household"  # 世帯
    education = "education"  # 教育
    childcare = "childcare"  # 保育
    welfare = "welfare"  # 福祉
    income = "income"  # 所得・税
    health = "health"  # 保健
    medical_flag = "medical_flag"  # 医療機関からの情報
    administrative = "administrative"  # 事務処理
    other = "other"


class SpecialCare(enum.StrEnum):
    """要配慮個人情報: Art. 2(3) and 施行令 2 (LAW.md §2), one flag per subcategory."""

    race = "race"  # 人種
    creed = "creed"  # 信条
    social_status = "social_status"  # 社会的身分
    medical_history = "medical_history"  # 病歴
    criminal_record = "criminal_record"  # 犯罪の経歴
    crime_victim = "crime_victim"  # 犯罪により害を被った事実
    disability = "disability"  # 令2(1) 身体障害・知的障害・精神障害（発達障害を含む）等
    health_check_result = "health_check_result"  # 令2(2) 健康診断等の結果
    medical_guidance = "medical_guidance"  # 令2(3) 医師等による指導・診療・調剤
    criminal_procedure = "criminal_procedure"  # 令2(4) 刑事事件の手続
    juvenile_protection = "juvenile_protection"  # 令2(5) 少年の保護事件の手続


class RetentionClass(enum.StrEnum):
    """LAW.md §10.6 (classes [B], content [I])."""

    R0 = "R0"  # source records held by the 保有・管理主体
    R1 = "R1"  # linkage extract
    R2 = "R2"  # analysis result / flag
    R3 = "R3"  # support case record
    R4 = "R4"  # access and audit logs
    R5 = "R5"  # aggregate statistics


class NondisclosureTag(enum.StrEnum):
    """不開示情報 suggested for disclosure requests, Art. 78(1) (LAW.md §8.4)."""

    requester_harm = "requester_harm"  # 78(1)(1) 本人の生命等を害するおそれ
    child_safety_risk = "child_safety_risk"  # 78(1)(1)
    third_party = "third_party"  # 78(1)(2) 本人以外の個人に関する情報
    reporter_identity = "reporter_identity"  # 78(1)(2) 通告者等
    corporate = "corporate"  # 78(1)(3) 法人等情報
    assessment_opinion = "assessment_opinion"  # 78(1)(7) 事務・事業に関する情報
    investigation = "investigation"  # 78(1)(7) 調査・検査


class ItemStatus(enum.StrEnum):
    active = "active"
    retired = "retired"


class RegistryFile(SQLModel, table=True):
    """One 個人情報ファイル and the working copy of its ファイル簿 entry (LAW.md §7)."""

    __tablename__ = "registry_file"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True)
    # 74(1)(i) ファイルの名称
    name: str = Field(max_length=200)
    # 74(1)(ii) 機関の名称 and the unit in charge of the work the file is used for
    organ_id: int = Field(foreign_key="core_organ.id", index=True)
    department_id: int | None = Field(default=None, foreign_key="core_department.id")
    # 74(1)(iii) 利用目的
    purpose: str = Field(default="", sa_type=Text)
    # 74(1)(iv) 記録範囲 (the 記録項目 are the registry_item rows)
    record_scope: str = Field(default="", sa_type=Text)
    # 74(1)(v) 記録情報の収集方法
    collection_method: str = Field(default="", sa_type=Text)
    # 74(1)(vii) 経常的提供先 ("なし" must be written out: an empty value is a missing item)
    regular_recipients: str = Field(default="", sa_type=Text)
    # 74(1)(ix) the unit receiving 開示・訂正・利用停止 requests, name and address
    request_office_name: str = Field(default="", max_length=200)
    request_office_address: str = Field(default="", max_length=300)
    # 74(1)(x) whether another law sets a special procedure (90(1) / 98(1) proviso);
    # None: not stated
    special_procedure: bool | None = None
    special_procedure_note: str = Field(default="", sa_type=Text)
    # 施行令 20(6)(1)
    file_type: FileType | None = Field(default=None, sa_type=String(16))
    persons_count: int | None = None
    source_system: str = Field(default="", max_length=200)
    # Publication: an ordinance may extend it below 1,000 persons; 75(2) / 74(2) exclusions.
    ordinance_extends: bool = False
    exclusion: str | None = Field(default=None, max_length=32)
    exclusion_note: str = Field(default="", sa_type=Text)
    # 75(3): withhold 74(1)(v), (vii) or the whole entry (items carry their own flag).
    withhold_collection_method: bool = False
    withhold_recipients: bool = False
    withhold_entire: bool = False
    withheld_reason: str = Field(default="", sa_type=Text)
    # Life of the file and of its entry (施行令 20).
    held_since: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    entry_created_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    last_changed_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    entry_updated_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    ceased_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    entry_deleted_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    # Set by record_change (another package says the entry must change); cleared by an edit.
    pending_change_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    version: int = 1
    published_version: int | None = None


class RegistryItem(SQLModel, table=True):
    """A 記録項目 (data item) of one file."""

    __tablename__ = "registry_item"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True)
    file_id: int = Field(foreign_key="registry_file.id", index=True)
    position: int = 0
    name_ja: str = Field(max_length=200)
    name_en: str = Field(default="", max_length=200)
    data_type: str = Field(default="text", max_length=32)
    category: ItemCategory = Field(default=ItemCategory.other, sa_type=String(32))
    # Comma-separated SpecialCare values, sorted.
    special_care: str = Field(default="", max_length=300)
    ordinance_special_care: bool = False
    ordinance_reference: str = Field(default="", max_length=200)
    retention_class: RetentionClass = Field(default=RetentionClass.R0, sa_type=String(4))
    retention_months: int | None = None
    # Comma-separated NondisclosureTag values, sorted.
    nondisclosure_tags: str = Field(default="", max_length=300)
    # 75(3): left out of the published entry; still usable (withholding concerns publication).
    withheld: bool = False
    withheld_reason: str = Field(default="", sa_type=Text)
    status: ItemStatus = Field(default=ItemStatus.active, sa_type=String(16))
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    retired_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class RegistryVersion(SQLModel, table=True):
    """One immutable version of a file with its items: what changed, who and why."""

    __tablename__ = "registry_version"
    __table_args__ = (UniqueConstraint("file_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    file_id: int = Field(foreign_key="registry_file.id")
    version: int
    action: str = Field(max_length=40)
    item_key: str | None = Field(default=None, max_length=64)
    actor_type: str = Field(max_length=16)
    actor_id: int | None = None
    reason: str = Field(sa_type=Text)
    at: datetime = Field(sa_column=utc_column())
    # Canonical JSON of the file and all its items at this version.
    snapshot: str = Field(sa_type=Text)


__all__ = [
    "FileType",
    "ItemCategory",
    "ItemStatus",
    "NondisclosureTag",
    "RegistryFile",
    "RegistryItem",
    "RegistryVersion",
    "RetentionClass",
    "SpecialCare",
]
