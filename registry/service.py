"""Operations on the register; every change is a new version and an audit event. Never commits."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import and_
from sqlmodel import Session, col, select

from core import audit, messages
from core.auth import Principal
from core.clock import TOKYO, as_utc, utcnow
from core.db import get_by
from core.documents import render_pdf
from core.models import Department, Organ, Role
from core.periods import MunicipalCalendar
from core.policies import policy
from core.reasons import Conflict, Forbidden, InvalidInput, NotFound, Reason
from core.service import (
    Reference,
    Unit,
    active_department,
    active_organ,
    get_municipality,
    list_organs,
    register_reference_check,
)
from registry import rules
from registry.models import (
    ItemStatus,
    RegistryFile,
    RegistryItem,
    RegistryVersion,
)
from registry.schemas import (
    FileCreate,
    FileFields,
    FileUpdate,
    ItemCreate,
    ItemFields,
    ItemUpdate,
    PublicEntry,
    PublicItem,
    PublicOrganRegister,
    PublicRegister,
)

messages.register(
    {
        "registry.nav": ("個人情報ファイル簿", "File register"),
        "registry.unknown_file": (
            "個人情報ファイル「{key}」は登録されていません。",
            "Personal-information file {key!r} is not registered.",
        ),
        "registry.unknown_item": (
            "記録項目「{key}」は登録されていません。",
            "Data item {key!r} is not registered.",
        ),
        "registry.not_registered": (
            "「{key}」は個人情報ファイル簿に登録されたファイル又は記録項目ではありません。",
            "{key!r} is not a registered file or data item.",
        ),
        "registry.file_ceased": (
            "個人情報ファイル「{name}」は{date}に保有をやめています。",
            "Personal-information file {key!r} ceased to be held on {date}.",
        ),
        "registry.entry_stale": (
            "個人情報ファイル「{name}」は{date}に変更されましたが、ファイル簿が更新されていません。",
            "File {key!r} changed on {date} and its register entry has not been updated.",
        ),
        "registry.unpublished_required": (
            "個人情報ファイル「{name}」は本人の数が{threshold}人以上（又は条例により公表対象）ですが、"
            "ファイル簿が作成・公表されていません。",
            "File {key!r} must be in the published register (>= {threshold} persons or by "
            "ordinance) but has no published entry.",
        ),
        "registry.item_retired": (
            "記録項目「{name}」は{date}に廃止されています。",
            "Data item {key!r} was retired on {date}.",
        ),
        "registry.my_number_refused": (
            "個人番号（マイナンバー）は記録項目として登録できません。本サービスは個人番号を保存・利用・照合しません。",
            "My Number (個人番号) cannot be a data item: this service never stores, uses or "
            "matches on it.",
        ),
        "registry.missing_statutory_item": (
            "法定記載事項「{label}」（{article}）が記載されていないため、公表できません。",
            "The statutory item {item_name!r} ({article}) is missing, so the entry cannot be "
            "published.",
        ),
        "registry.key_taken": ("キー「{key}」は既に使われています。", "The key {key!r} is taken."),
        "registry.department_outside_organ": (
            "部署「{department}」は機関「{organ}」に属していません。",
            "Department {department!r} does not belong to organ {organ!r}.",
        ),
        "registry.withheld_reason_required": (
            "記載を省略する場合は、法第75条第3項の理由を記載してください。",
            "Withholding needs its Art. 75(3) reason.",
        ),
        "registry.not_your_organ": (
            "機関「{organ}」の個人情報ファイルを編集する権限がありません。",
            "You may not edit the files of organ {organ!r}.",
        ),
        "registry.publish_role": (
            "ファイル簿の公表は総括管理主体（個人情報保護責任者）が行います。",
            "Only a privacy officer publishes register entries.",
        ),
        "registry.ceased_no_change": (
            "保有をやめた個人情報ファイル「{name}」は変更できません。",
            "File {key!r} has ceased and cannot be changed.",
        ),
        "registry.already_ceased": (
            "個人情報ファイル「{name}」は既に保有をやめています。",
            "File {key!r} has already ceased.",
        ),
        "registry.change_pending": (
            "記録された変更（{what}）がファイルに反映されていません。編集で反映してから公表してください。",
            "A recorded change ({what}) is not yet reflected in the file; edit it before "
            "publishing.",
        ),
        "registry.item_already_retired": (
            "記録項目「{name}」は既に廃止されています。",
            "Data item {key!r} is already retired.",
        ),
        "registry.entry_still_required": (
            "個人情報ファイル「{name}」は保有中で、本人の数（{count}人）が{threshold}人未満でもない"
            "ため、ファイル簿の記載は削除できません（施行令第20条第4項：保有しなくなったとき、又は"
            "法第74条第2項第9号に該当するときに限る）。",
            "The register entry of file {key!r} cannot be deleted: the file is still held and "
            "its persons ({count}) are not fewer than {threshold} (Cabinet Order Art. 20(4): only "
            "once the file is no longer held or falls under Art. 74(2)(ix)).",
        ),
        "registry.no_entry": (
            "個人情報ファイル「{name}」にはファイル簿の記載がありません。",
            "File {key!r} has no register entry.",
        ),
    }
)

Editor = Principal | audit.Actor


# ---------------------------------------------------------------- helpers


def _actor(by: Editor) -> audit.Actor:
    if isinstance(by, audit.Actor):
        return by
    if by.has_role(Role.privacy_officer):
        return by.actor(Role.privacy_officer)
    return by.actor(Role.data_holder)


def _organ_key(session: Session, organ_id: int) -> str:
    organ = session.get(Organ, organ_id)
    return organ.key if organ else str(organ_id)


def _check_may_edit(session: Session, by: Editor, organ_id: int) -> None:
    """Privacy officers edit every organ's files; data holders only their own organ's."""
    if isinstance(by, audit.Actor):
        return
    if by.has_role(Role.privacy_officer):
        return
    if organ_id in by.organs_for(Role.data_holder):
        return
    raise Forbidden(Reason.of("registry.not_your_organ", organ=_organ_key(session, organ_id)))


def _check_may_publish(by: Editor) -> None:
    if isinstance(by, audit.Actor) or by.has_role(Role.privacy_officer):
        return
    raise Forbidden(Reason.of("registry.publish_role"))


def _date_text(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(TOKYO).strftime("%Y-%m-%d")


def _as_moment(value: datetime | date | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return as_utc(value)
    return datetime.combine(value, time(0, 0), tzinfo=TOKYO).astimezone(UTC)


def get_file(session: Session, key_or_id: str | int) -> RegistryFile:
    where = {"id": key_or_id} if isinstance(key_or_id, int) else {"key": key_or_id}
    return get_by(session, RegistryFile, "registry.unknown_file", field="file",
                  params={"key": str(key_or_id)}, **where)


def get_item(session: Session, key: str) -> RegistryItem:
    return get_by(session, RegistryItem, "registry.unknown_item", field="item", key=key)


def items_of(session: Session, file: RegistryFile, *, include_retired: bool = True
             ) -> list[RegistryItem]:
    query = select(RegistryItem).where(RegistryItem.file_id == file.id)
    if not include_retired:
        query = query.where(RegistryItem.status == ItemStatus.active)
    return list(session.exec(query.order_by(col(RegistryItem.position), col(RegistryItem.id))))


def items_by_file(session: Session, files: Sequence[RegistryFile]
                  ) -> dict[int | None, list[RegistryItem]]:
    """`items_of` for many files in one query (a list of files shows them all)."""
    found: dict[int | None, list[RegistryItem]] = {file.id: [] for file in files}
    if not files:
        return found
    query = (select(RegistryItem).where(col(RegistryItem.file_id).in_(list(found)))
             .order_by(col(RegistryItem.file_id), col(RegistryItem.position), col(RegistryItem.id)))
    for item in session.exec(query):
        found[item.file_id].append(item)
    return found


def list_files(session: Session, organ_key: str | None = None) -> list[RegistryFile]:
    query = select(RegistryFile)
    if organ_key is not None:
        organ = session.exec(select(Organ).where(Organ.key == organ_key)).first()
        if organ is None:
            return []
        query = query.where(RegistryFile.organ_id == organ.id)
    return list(session.exec(query.order_by(col(RegistryFile.organ_id), col(RegistryFile.id))))


def history(session: Session, file: RegistryFile) -> list[RegistryVersion]:
    return list(session.exec(select(RegistryVersion).where(RegistryVersion.file_id == file.id)
                             .order_by(col(RegistryVersion.version))))


def version_snapshot(session: Session, file: RegistryFile, version: int) -> dict[str, Any]:
    row = get_by(session, RegistryVersion, "registry.unknown_file",
                 params={"key": f"{file.key}@{version}"}, file_id=file.id, version=version)
    data: dict[str, Any] = json.loads(row.snapshot)
    return data


def publication_required(file: RegistryFile, pol: rules.RegistryPolicy | None = None) -> bool:
    pol = pol or policy(rules.RegistryPolicy)
    return rules.publication_required(file.persons_count, ordinance_extends=file.ordinance_extends,
                                      exclusion=file.exclusion,
                                      threshold=pol.publication_threshold)


def has_live_entry(file: RegistryFile) -> bool:
    return file.published_version is not None and file.entry_deleted_at is None


def is_stale(file: RegistryFile) -> bool:
    return rules.is_stale(file.last_changed_at, file.entry_updated_at, file.pending_change_at)


def contains_special_care(items: list[RegistryItem]) -> tuple[bool, bool]:
    active = [i for i in items if i.status == ItemStatus.active]
    return (any(i.special_care for i in active), any(i.ordinance_special_care for i in active))


def statutory_values(session: Session, file: RegistryFile,
                     items: Sequence[RegistryItem] | None = None) -> dict[str, Any]:
    """The statutory items' values; `items`, when given, are the file's items (all of them)."""
    active = (len(items_of(session, file, include_retired=False)) if items is None
              else sum(1 for item in items if item.status == ItemStatus.active))
    return {
        "name": file.name,
        "organ": file.organ_id,
        "department": file.department_id,
        "purpose": file.purpose,
        "items": active,
        "record_scope": file.record_scope,
        "collection_method": file.collection_method,
        "regular_recipients": file.regular_recipients,
        "request_office_name": file.request_office_name,
        "request_office_address": file.request_office_address,
        "special_procedure": file.special_procedure,
        "file_type": file.file_type,
        "persons_count": file.persons_count,
    }


def missing_items(session: Session, file: RegistryFile,
                  items: Sequence[RegistryItem] | None = None) -> list[Reason]:
    """One Reason per missing statutory item, each naming the item in Japanese."""
    return [
        Reason.of("registry.missing_statutory_item", label=item.label, article=item.article,
                  item_name=item.field, field=item.field, refs={"file": file.key})
        for item in rules.missing_statutory_items(statutory_values(session, file, items))
    ]


# ---------------------------------------------------------------- snapshots and versions


def _file_dict(session: Session, file: RegistryFile) -> dict[str, Any]:
    department = session.get(Department, file.department_id) if file.department_id else None
    return {
        "key": file.key,
        "name": file.name,
        "organ": _organ_key(session, file.organ_id),
        "department": department.key if department else None,
        "purpose": file.purpose,
        "record_scope": file.record_scope,
        "collection_method": file.collection_method,
        "regular_recipients": file.regular_recipients,
        "request_office_name": file.request_office_name,
        "request_office_address": file.request_office_address,
        "special_procedure": file.special_procedure,
        "special_procedure_note": file.special_procedure_note,
        "file_type": str(file.file_type) if file.file_type else None,
        "persons_count": file.persons_count,
        "source_system": file.source_system,
        "ordinance_extends": file.ordinance_extends,
        "exclusion": file.exclusion,
        "exclusion_note": file.exclusion_note,
        "withhold_collection_method": file.withhold_collection_method,
        "withhold_recipients": file.withhold_recipients,
        "withhold_entire": file.withhold_entire,
        "withheld_reason": file.withheld_reason,
        "held_since": file.held_since.isoformat() if file.held_since else None,
    }


def item_dict(item: RegistryItem) -> dict[str, Any]:
    return {
        "key": item.key,
        "position": item.position,
        "name_ja": item.name_ja,
        "name_en": item.name_en,
        "data_type": item.data_type,
        "category": str(item.category),
        "special_care": rules.split_flags(item.special_care),
        "ordinance_special_care": item.ordinance_special_care,
        "ordinance_reference": item.ordinance_reference,
        "retention_class": str(item.retention_class),
        "retention_months": item.retention_months,
        "nondisclosure_tags": rules.split_flags(item.nondisclosure_tags),
        "withheld": item.withheld,
        "withheld_reason": item.withheld_reason,
        "status": str(item.status),
    }


def snapshot(session: Session, file: RegistryFile) -> dict[str, Any]:
    """The whole file with its items, as the version history and the public register keep it."""
    data = _file_dict(session, file)
    data["items"] = [item_dict(i) for i in items_of(session, file)]
    return data


def _new_version(session: Session, file: RegistryFile, action: str, actor: audit.Actor,
                 reason: str, at: datetime, item_key: str | None = None,
                 first: bool = False) -> RegistryVersion:
    if not first:
        file.version += 1
    session.add(file)
    session.flush()
    assert file.id is not None
    row = RegistryVersion(
        file_id=file.id, version=file.version, action=action, item_key=item_key,
        actor_type=actor.type, actor_id=actor.id, reason=reason, at=at,
        snapshot=json.dumps(snapshot(session, file), ensure_ascii=False, sort_keys=True,
                            separators=(",", ":")),
    )
    session.add(row)
    session.flush()
    details: dict[str, Any] = {"key": file.key, "version": file.version}
    if item_key is not None:
        details["item"] = item_key
    audit.append(session, f"registry.{action}", actor=actor, target_type="registry_file",
                 target_id=file.id, details=details, at=at)
    return row


def _apply_file_fields(session: Session, file: RegistryFile, data: FileFields,
                       fields: set[str]) -> None:
    for name in sorted(fields):
        value = getattr(data, name)
        if name == "organ":
            organ = active_organ(session, str(value))
            assert organ.id is not None
            file.organ_id = organ.id
        elif name == "department":
            if value in (None, ""):
                file.department_id = None
                continue
            file.department_id = active_department(session, str(value)).id
        elif name == "held_since":
            file.held_since = _as_moment(value)
        elif name in {"special_procedure", "file_type", "persons_count", "exclusion"}:
            setattr(file, name, value)
        elif isinstance(getattr(file, name), bool):
            setattr(file, name, bool(value))
        else:
            setattr(file, name, "" if value is None else value)
    if file.department_id is not None:
        department = session.get(Department, file.department_id)
        if department is not None and department.organ_id != file.organ_id:
            raise InvalidInput(Reason.of(
                "registry.department_outside_organ", department=department.key,
                organ=_organ_key(session, file.organ_id), field="department"))
    withholding = (file.withhold_collection_method or file.withhold_recipients
                   or file.withhold_entire)
    if withholding and not file.withheld_reason.strip():
        raise InvalidInput(Reason.of("registry.withheld_reason_required", field="withheld_reason"))


def _check_not_ceased(file: RegistryFile) -> None:
    if file.ceased_at is not None:
        raise Conflict(Reason.of("registry.ceased_no_change", name=file.name, key=file.key))


def create_file(session: Session, by: Editor, data: FileCreate,
                at: datetime | None = None) -> RegistryFile:
    at = as_utc(at or utcnow())
    if session.exec(select(RegistryFile).where(RegistryFile.key == data.key)).first() is not None:
        raise Conflict(Reason.of("registry.key_taken", key=data.key, field="key"))
    file = RegistryFile(key=data.key, name=data.name, organ_id=0, created_at=at,
                        last_changed_at=at)
    fields = set(data.model_fields_set) | {"name", "organ"}
    _apply_file_fields(session, file, data, fields - {"key", "reason"})
    _check_may_edit(session, by, file.organ_id)
    if file.held_since is None:
        file.held_since = at
    _new_version(session, file, "file_created", _actor(by), data.reason, at, first=True)
    return file


def update_file(session: Session, by: Editor, key: str | RegistryFile, changes: FileUpdate,
                at: datetime | None = None) -> RegistryFile:
    at = as_utc(at or utcnow())
    file = key if isinstance(key, RegistryFile) else get_file(session, key)
    _check_not_ceased(file)
    _check_may_edit(session, by, file.organ_id)
    _apply_file_fields(session, file, changes, set(changes.model_fields_set) - {"reason"})
    _check_may_edit(session, by, file.organ_id)  # moving a file needs rights on both organs
    file.last_changed_at = at
    file.pending_change_at = None
    _new_version(session, file, "file_edited", _actor(by), changes.reason, at)
    return file


def _refuse_my_number(data: ItemFields, key: str | None) -> None:
    if rules.is_my_number(key, data.name_ja, data.name_en, data.data_type):
        raise InvalidInput(Reason.of("registry.my_number_refused", field="name_ja",
                                     refs={"item": key}))


def _apply_item_fields(item: RegistryItem, data: ItemFields, fields: set[str]) -> None:
    for name in sorted(fields):
        value = getattr(data, name)
        if name in {"special_care", "nondisclosure_tags"}:
            setattr(item, name, rules.join_flags([str(v) for v in value or []]))
        elif name == "retention_months":
            item.retention_months = value
        elif value is None:
            continue
        else:
            setattr(item, name, value)
    if item.withheld and not item.withheld_reason.strip():
        raise InvalidInput(Reason.of("registry.withheld_reason_required", field="withheld_reason",
                                     refs={"item": item.key}))


def add_item(session: Session, by: Editor, file_key: str | RegistryFile, data: ItemCreate,
             at: datetime | None = None) -> RegistryItem:
    at = as_utc(at or utcnow())
    file = file_key if isinstance(file_key, RegistryFile) else get_file(session, file_key)
    _refuse_my_number(data, data.key)
    _check_not_ceased(file)
    _check_may_edit(session, by, file.organ_id)
    if session.exec(select(RegistryItem).where(RegistryItem.key == data.key)).first() is not None:
        raise Conflict(Reason.of("registry.key_taken", key=data.key, field="key"))
    assert file.id is not None
    position = data.position
    if position is None:
        position = len(items_of(session, file)) + 1
    item = RegistryItem(key=data.key, file_id=file.id, name_ja=data.name_ja, position=position,
                        created_at=at)
    _apply_item_fields(item, data, set(data.model_fields_set) - {"key", "reason", "position"})
    session.add(item)
    session.flush()
    file.last_changed_at = at
    _new_version(session, file, "item_added", _actor(by), data.reason, at, item_key=item.key)
    return item


def update_item(session: Session, by: Editor, key: str, changes: ItemUpdate,
                at: datetime | None = None) -> RegistryItem:
    at = as_utc(at or utcnow())
    item = get_item(session, key)
    file = get_file(session, item.file_id)
    _check_not_ceased(file)
    _check_may_edit(session, by, file.organ_id)
    merged = ItemFields(
        name_ja=changes.name_ja if changes.name_ja is not None else item.name_ja,
        name_en=changes.name_en if changes.name_en is not None else item.name_en,
        data_type=changes.data_type if changes.data_type is not None else item.data_type,
    )
    _refuse_my_number(merged, item.key)
    _apply_item_fields(item, changes, set(changes.model_fields_set) - {"reason"})
    session.add(item)
    file.last_changed_at = at
    _new_version(session, file, "item_edited", _actor(by), changes.reason, at, item_key=item.key)
    return item


def retire_item(session: Session, by: Editor, key: str, reason: str,
                at: datetime | None = None) -> RegistryItem:
    at = as_utc(at or utcnow())
    item = get_item(session, key)
    file = get_file(session, item.file_id)
    _check_not_ceased(file)
    _check_may_edit(session, by, file.organ_id)
    if item.status == ItemStatus.retired:
        raise Conflict(Reason.of("registry.item_already_retired", name=item.name_ja, key=key))
    item.status = ItemStatus.retired
    item.retired_at = at
    session.add(item)
    file.last_changed_at = at
    _new_version(session, file, "item_retired", _actor(by), reason, at, item_key=item.key)
    return item


def pending_change(session: Session, file: RegistryFile) -> str | None:
    """What record_change said, while the change is not yet reflected by an edit."""
    if file.pending_change_at is None:
        return None
    last = session.exec(select(RegistryVersion).where(
        RegistryVersion.file_id == file.id, RegistryVersion.action == "change_recorded")
        .order_by(col(RegistryVersion.version).desc())).first()
    return last.reason if last else ""


def publish(session: Session, by: Editor, key: str | RegistryFile, reason: str,
            at: datetime | None = None) -> RegistryFile:
    """Make or update the file's entry and publish it (施行令 20(1), (3), (5))."""
    at = as_utc(at or utcnow())
    file = key if isinstance(key, RegistryFile) else get_file(session, key)
    _check_may_publish(by)
    _check_not_ceased(file)
    what = pending_change(session, file)
    if what is not None:
        raise Conflict(Reason.of("registry.change_pending", what=what, field="pending_change",
                                 refs={"file": file.key}))
    missing = missing_items(session, file)
    if missing:
        raise InvalidInput(missing)
    if file.entry_created_at is None or file.entry_deleted_at is not None:
        file.entry_created_at = at
    file.entry_updated_at = at
    file.entry_deleted_at = None
    file.published_version = file.version + 1
    _new_version(session, file, "entry_published", _actor(by), reason, at)
    return file


def delete_entry(session: Session, by: Editor, key: str | RegistryFile, reason: str,
                 at: datetime | None = None) -> RegistryFile:
    """Delete the entry (施行令 20(4)): the file is no longer held or fell under 74(2)(ix)."""
    at = as_utc(at or utcnow())
    file = key if isinstance(key, RegistryFile) else get_file(session, key)
    _check_may_publish(by)
    if not has_live_entry(file):
        raise Conflict(Reason.of("registry.no_entry", name=file.name, key=file.key))
    threshold = policy(rules.RegistryPolicy).publication_threshold
    if not rules.entry_deletion_allowed(file.ceased_at is not None, file.persons_count,
                                        ordinance_extends=file.ordinance_extends,
                                        threshold=threshold):
        raise Conflict(Reason.of("registry.entry_still_required", name=file.name, key=file.key,
                                 count=file.persons_count if file.persons_count is not None
                                 else "不明", threshold=threshold))
    file.entry_deleted_at = at
    _new_version(session, file, "entry_deleted", _actor(by), reason, at)
    return file


def cease_file(session: Session, by: Editor, key: str | RegistryFile, reason: str,
               delete_entry: bool = True, at: datetime | None = None) -> RegistryFile:
    """The organ no longer holds the file; by default its entry is deleted at once."""
    at = as_utc(at or utcnow())
    file = key if isinstance(key, RegistryFile) else get_file(session, key)
    _check_may_edit(session, by, file.organ_id)
    if file.ceased_at is not None:
        raise Conflict(Reason.of("registry.already_ceased", name=file.name, key=file.key))
    file.ceased_at = at
    if delete_entry and has_live_entry(file):
        file.entry_deleted_at = at
    _new_version(session, file, "file_ceased", _actor(by), reason, at)
    return file


def record_change(session: Session, actor: audit.Actor, file_key_or_id: str | int, what: str,
                  reason: str, at: datetime | None = None) -> RegistryFile:
    """Mark a file's entry stale (for example after a purpose change) until it is updated and,
    where required, republished."""
    at = as_utc(at or utcnow())
    file = get_file(session, file_key_or_id)
    file.pending_change_at = at
    file.last_changed_at = at
    _new_version(session, file, "change_recorded", actor, f"{what}: {reason}", at)
    return file


# ---------------------------------------------------------------- status


@dataclass(frozen=True)
class Status:
    usable: bool
    reasons: list[Reason] = field(default_factory=list)


def _file_reasons(file: RegistryFile, at: datetime, pol: rules.RegistryPolicy) -> list[Reason]:
    refs = {"file": file.key}
    reasons: list[Reason] = []
    if file.created_at > at:
        return [Reason.of("registry.not_registered", key=file.key, refs=refs)]
    if file.ceased_at is not None and file.ceased_at <= at:
        reasons.append(Reason.of("registry.file_ceased", name=file.name, key=file.key,
                                 date=_date_text(file.ceased_at), refs=refs))
        return reasons
    since = rules.stale_since(file.last_changed_at, file.entry_updated_at, file.pending_change_at)
    if since is not None and rules.stale_blocks_use(since, at, pol, policy(MunicipalCalendar)):
        reasons.append(Reason.of("registry.entry_stale", name=file.name, key=file.key,
                                 date=_date_text(since), refs=refs))
    if publication_required(file, pol) and not has_live_entry(file):
        reasons.append(Reason.of("registry.unpublished_required", name=file.name, key=file.key,
                                 threshold=pol.publication_threshold, refs=refs))
    return reasons


def status(session: Session, file_or_item: RegistryFile | RegistryItem | str,
           at: datetime | None = None) -> Status:
    """Usable or not, with every reason: registered, not ceased, entry not stale, published where
    required; for an item also not retired. Withheld items stay usable."""
    at = as_utc(at or utcnow())
    pol = policy(rules.RegistryPolicy)
    target: RegistryFile | RegistryItem | None
    if isinstance(file_or_item, str):
        target = session.exec(select(RegistryFile).where(RegistryFile.key == file_or_item)).first()
        if target is None:
            target = session.exec(select(RegistryItem)
                                  .where(RegistryItem.key == file_or_item)).first()
        if target is None:
            return Status(False, [Reason.of("registry.not_registered", key=file_or_item,
                                            refs={"key": file_or_item})])
    else:
        target = file_or_item
    if isinstance(target, RegistryFile):
        reasons = _file_reasons(target, at, pol)
        return Status(not reasons, reasons)
    return _item_status(target, get_file(session, target.file_id), at, pol)


def _item_status(item: RegistryItem, file: RegistryFile, at: datetime,
                 pol: rules.RegistryPolicy) -> Status:
    refs = {"file": file.key, "item": item.key}
    if item.created_at > at:
        reasons = [Reason.of("registry.not_registered", key=item.key, refs=refs)]
        return Status(False, reasons)
    reasons = [Reason(r.code, r.message_ja, r.message_en, {**r.refs, "item": item.key},
                      r.field, r.row) for r in _file_reasons(file, at, pol)]
    if item.status == ItemStatus.retired and (item.retired_at is None
                                              or item.retired_at <= at):
        reasons.append(Reason.of("registry.item_retired", name=item.name_ja, key=item.key,
                                 date=_date_text(item.retired_at), refs=refs))
    return Status(not reasons, reasons)


def item_statuses(session: Session, items: list[RegistryItem],
                  at: datetime | None = None) -> dict[int, Status]:
    """`status()` of many items by item id, reading their files with one query."""
    at = as_utc(at or utcnow())
    pol = policy(rules.RegistryPolicy)
    file_ids = {item.file_id for item in items}
    files = ({f.id: f for f in session.exec(select(RegistryFile)
                                             .where(col(RegistryFile.id).in_(file_ids)))}
             if file_ids else {})
    found: dict[int, Status] = {}
    for item in items:
        assert item.id is not None
        file = files.get(item.file_id)
        if file is None:
            raise NotFound(Reason.of("registry.unknown_file", key=str(item.file_id),
                                     field="file"))
        found[item.id] = _item_status(item, file, at, pol)
    return found


# ---------------------------------------------------------------- deadlines


def entry_facts(file: RegistryFile, pol: rules.RegistryPolicy | None = None) -> rules.EntryFacts:
    return rules.EntryFacts(
        key=file.key, name=file.name, held_since=file.held_since, created_at=file.created_at,
        publication_required=publication_required(file, pol),
        entry_created_at=file.entry_created_at, last_changed_at=file.last_changed_at,
        entry_updated_at=file.entry_updated_at, pending_change_at=file.pending_change_at,
        ceased_at=file.ceased_at, entry_deleted_at=file.entry_deleted_at,
        published=has_live_entry(file),
    )


def overdue_entries(session: Session, at: datetime | None = None,
                    organ_ids: frozenset[int] | None = None) -> list[rules.Overdue]:
    at = as_utc(at or utcnow())
    pol, cal = policy(rules.RegistryPolicy), policy(MunicipalCalendar)
    found: list[rules.Overdue] = []
    for file in list_files(session):
        if organ_ids is not None and file.organ_id not in organ_ids:
            continue
        found.extend(rules.overdue(entry_facts(file, pol), at, pol, cal))
    return found


# ---------------------------------------------------------------- the public register


def public_entry(snap: dict[str, Any], file: RegistryFile, organ: Organ,
                  departments: dict[str, Department]) -> PublicEntry:
    items = [i for i in snap["items"] if i["status"] == ItemStatus.active.value]
    department = departments.get(snap["department"] or "")
    file_type = snap["file_type"] or ""
    return PublicEntry(
        key=snap["key"],
        name=snap["name"],
        organ=organ.key,
        organ_name=organ.name_ja,
        department_name=department.name_ja if department else "",
        purpose=snap["purpose"],
        # 75(3): withheld 記録項目 never reach the public model.
        items=[PublicItem(name_ja=i["name_ja"], name_en=i["name_en"])
               for i in items if not i["withheld"]],
        record_scope=snap["record_scope"],
        collection_method=None if snap["withhold_collection_method"]
        else snap["collection_method"],
        contains_special_care=any(i["special_care"] for i in items),
        contains_ordinance_special_care=any(i["ordinance_special_care"] for i in items),
        regular_recipients=None if snap["withhold_recipients"] else snap["regular_recipients"],
        request_office_name=snap["request_office_name"],
        request_office_address=snap["request_office_address"],
        special_procedure=bool(snap["special_procedure"]),
        special_procedure_note=snap["special_procedure_note"],
        file_type=file_type,
        file_type_label=rules.FILE_TYPE_LABELS.get(file_type, ""),
        persons_count=snap["persons_count"],
        entry_created_at=file.entry_created_at.astimezone(TOKYO)
        if file.entry_created_at else None,
        entry_updated_at=file.entry_updated_at.astimezone(TOKYO)
        if file.entry_updated_at else None,
        version=file.published_version or 0,
    )


def public_register(session: Session, organ_key: str | None = None,
                    at: datetime | None = None) -> PublicRegister:
    """Each organ's 簿 (施行令 20(2)) from the published versions; withheld items left out."""
    organs = list_organs(session)
    if organ_key is not None:
        organs = [o for o in organs if o.key == organ_key]
        if not organs:
            raise NotFound(Reason.of("core.unknown_organ", key=organ_key, field="organ"))
    departments = {d.key: d for d in session.exec(select(Department))}
    files = [f for f in session.exec(select(RegistryFile).where(
        col(RegistryFile.published_version).is_not(None),
        col(RegistryFile.entry_deleted_at).is_(None),
    ).order_by(col(RegistryFile.id)))]
    snapshots: dict[tuple[int, int], dict[str, Any]] = {}
    published = select(RegistryVersion).join(RegistryFile, and_(
        col(RegistryFile.id) == col(RegistryVersion.file_id),
        col(RegistryFile.published_version) == col(RegistryVersion.version)))
    for row in session.exec(published):
        snapshots[(row.file_id, row.version)] = json.loads(row.snapshot)
    result: list[PublicOrganRegister] = []
    for organ in organs:
        entries: list[PublicEntry] = []
        for file in files:
            if file.organ_id != organ.id or file.published_version is None or file.id is None:
                continue
            snap = snapshots.get((file.id, file.published_version))
            if snap is None or snap["withhold_entire"]:
                continue
            entries.append(public_entry(snap, file, organ, departments))
        result.append(PublicOrganRegister(organ=organ.key, organ_name=organ.name_ja,
                                          organ_name_en=organ.name_en, entries=entries))
    municipality = get_municipality(session)
    return PublicRegister(municipality=municipality.name_ja if municipality else "",
                          generated_at=as_utc(at or utcnow()), organs=result)


def register_pdf(session: Session, organ_key: str | None = None,
                 at: datetime | None = None) -> bytes:
    """The published register as a PDF: each organ's 簿 and each file on a new page."""
    register = public_register(session, organ_key, at)
    return render_pdf("registry/register_print.html", register_context(register),
                      package="registry")


def register_context(register: PublicRegister) -> dict[str, Any]:
    return {
        "register": register,
        "generated": register.generated_at.astimezone(TOKYO).strftime("%Y年%m月%d日"),
        "labels": rules.STATUTORY_LABELS,
    }


def files_naming(session: Session, unit: Unit) -> list[Reference]:
    """Files still held (not ceased) whose organ or unit in charge is `unit`: they must move
    or cease before it is deactivated."""
    if isinstance(unit, Organ):
        column: Any = col(RegistryFile.organ_id)
    elif isinstance(unit, Department):
        column = RegistryFile.department_id
    else:
        return []
    files = session.exec(select(RegistryFile).where(column == unit.id,
                                                    col(RegistryFile.ceased_at).is_(None))
                         .order_by(col(RegistryFile.key))).all()
    return [Reference("個人情報ファイル", "personal information file", f.key) for f in files]


register_reference_check(files_naming)
