"""Import and export of the register as YAML or CSV: all or nothing, every error with row and field.

YAML: a list of files (or `{files: [...]}`), each with the FileCreate fields and `items: [...]`.
CSV: one row per 記録項目; the file columns are read from the first row of each `key` and may be
left blank on the following rows; item columns are prefixed `item_`.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field, replace
from typing import Any

import yaml
from pydantic import ValidationError
from sqlmodel import Session, select

from core import audit, messages, textio
from core.dates import date_or_text
from core.reasons import DomainError, InvalidInput, Reason
from registry import service
from registry.models import RegistryFile, RegistryItem
from registry.schemas import FileCreate, FileFields, FileUpdate, ItemCreate, ItemFields, ItemUpdate

messages.register(
    {
        "registry.import_unreadable": (
            "ファイルを読み込めません（{detail}）。",
            "The file cannot be read ({detail}).",
        ),
        "registry.import_bad_value": (
            "{line}行目の「{column}」の値が正しくありません（{detail}）。",
            "Row {line}, field {column!r}: {detail}.",
        ),
        "registry.import_conflicting_file_value": (
            "{line}行目の「{column}」が同じファイルの先の行と異なります。",
            "Row {line}, field {column!r} differs from an earlier row of the same file.",
        ),
        "registry.import_empty": ("取り込む個人情報ファイルがありません。", "Nothing to import."),
    }
)

FILE_FIELDS = ["key", *FileFields.model_fields]
ITEM_FIELDS = ["key", *(f for f in ItemFields.model_fields)]
LIST_FIELDS = {"special_care", "nondisclosure_tags"}
_JA_BOOL = {"あり": "true", "なし": "false", "はい": "true", "いいえ": "false", "○": "true",
            "×": "false", "": None}


@dataclass
class ImportRecord:
    row: int
    data: dict[str, Any]
    items: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)  # row, where, data


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    items: int
    published: int


def _fix_value(name: str, value: Any, row: int | None = None) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if name in LIST_FIELDS:
            return [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
        if text in _JA_BOOL:
            return _JA_BOOL[text]
        if name == "held_since" and text:
            return date_or_text(text, field=name, row=row)
        return text
    return value


def parse_yaml(text: str) -> list[ImportRecord]:
    textio.refuse_control_characters(text)
    try:
        loaded = textio.load_yaml(text)
    except yaml.YAMLError as error:
        raise InvalidInput(Reason.of("registry.import_unreadable", detail=str(error)[:200])
                           ) from error
    files = loaded.get("files") if isinstance(loaded, dict) else loaded
    if not isinstance(files, list):
        raise InvalidInput(Reason.of("registry.import_unreadable",
                                     detail="a list of files is expected"))
    records = []
    for index, entry in enumerate(files, start=1):
        if not isinstance(entry, dict):
            raise InvalidInput(Reason.of("registry.import_bad_value", row=index, field="",
                                         line=index, column="", detail="not a mapping"))
        data = {k: _fix_value(k, v, index) for k, v in entry.items() if k != "items"}
        record = ImportRecord(index, data)
        for position, item in enumerate(entry.get("items") or [], start=1):
            if not isinstance(item, dict):
                raise InvalidInput(Reason.of("registry.import_bad_value", row=index, line=index,
                                             field=f"items.{position}", column=f"items.{position}",
                                             detail="not a mapping"))
            record.items.append((index, f"items.{position}.",
                                 {k: _fix_value(k, v) for k, v in item.items()}))
        records.append(record)
    return records


def parse_csv(text: str) -> list[ImportRecord]:
    textio.refuse_control_characters(text)
    lines = textio.read_csv(text)
    header = next((cells for _line, cells in lines if cells), [])
    records: dict[str, ImportRecord] = {}
    problems: list[Reason] = []
    for row_number, cells in lines:  # line 1 is the header
        if not cells:
            continue
        row = dict(zip(header, cells, strict=False))
        key = (row.get("key") or "").strip()
        file_data = {k: _fix_value(k, v, row_number) for k, v in row.items()
                     if k and not k.startswith("item_") and v is not None and v.strip() != ""}
        record = records.get(key)
        if record is None:
            record = records[key] = ImportRecord(row_number, file_data)
        else:
            for name, value in file_data.items():
                if name != "key" and record.data.get(name, value) != value:
                    problems.append(Reason.of("registry.import_conflicting_file_value",
                                              row=row_number, field=name, line=row_number,
                                              column=name))
        item = {k[len("item_"):]: _fix_value(k[len("item_"):], v) for k, v in row.items()
                if k and k.startswith("item_") and v is not None and v.strip() != ""}
        if item:
            record.items.append((row_number, "item_", item))
    if problems:
        raise InvalidInput(problems)
    return list(records.values())


def parse(text: str, fmt: str) -> list[ImportRecord]:
    return parse_csv(text) if fmt == "csv" else parse_yaml(text)


def _with_row(reason: Reason, row: int, prefix: str = "") -> Reason:
    field_name = f"{prefix}{reason.field}" if reason.field else (prefix.rstrip(".") or None)
    return replace(reason, row=row, field=field_name)


def _validation(error: ValidationError, row: int, prefix: str) -> list[Reason]:
    reasons = []
    for problem in error.errors():
        name = ".".join(str(p) for p in problem.get("loc", ())) or "?"
        reasons.append(Reason.of("registry.import_bad_value", row=row, field=f"{prefix}{name}",
                                 line=row, column=f"{prefix}{name}",
                                 detail=str(problem.get("msg", ""))[:150]))
    return reasons


def import_records(session: Session, actor: audit.Actor, records: list[ImportRecord],
                   reason: str, *, publish: bool = False) -> ImportResult:
    """Apply every record or none: all errors are collected, then InvalidInput is raised and the
    caller's transaction rolls back."""
    if not records:
        raise InvalidInput(Reason.of("registry.import_empty"))
    errors: list[Reason] = []
    created = updated = items = published = 0
    for record in records:
        data = dict(record.data)
        key = str(data.get("key") or "")
        existing = session.exec(select(RegistryFile).where(RegistryFile.key == key)).first()
        try:
            file: RegistryFile
            if existing is None:
                file = service.create_file(session, actor, FileCreate.model_validate(
                    {**data, "reason": reason}))
                created += 1
            else:
                changes = {k: v for k, v in data.items() if k != "key"}
                file = service.update_file(session, actor, existing, FileUpdate.model_validate(
                    {**changes, "reason": reason}))
                updated += 1
        except ValidationError as error:
            errors.extend(_validation(error, record.row, ""))
            continue
        except DomainError as error:
            errors.extend(_with_row(r, record.row) for r in error.reasons)
            continue
        for row, prefix, item in record.items:
            item_key = str(item.get("key") or "")
            try:
                known = session.exec(select(RegistryItem)
                                     .where(RegistryItem.key == item_key)).first()
                if known is not None and known.file_id == file.id:
                    changes = {k: v for k, v in item.items() if k != "key"}
                    service.update_item(session, actor, item_key,
                                        ItemUpdate.model_validate({**changes, "reason": reason}))
                else:
                    service.add_item(session, actor, file,
                                     ItemCreate.model_validate({**item, "reason": reason}))
                items += 1
            except ValidationError as error:
                errors.extend(_validation(error, row, prefix))
            except DomainError as error:
                errors.extend(_with_row(r, row, prefix) for r in error.reasons)
        if publish and not errors and service.publication_required(file):
            try:
                service.publish(session, actor, file, reason)
                published += 1
            except DomainError as error:
                errors.extend(_with_row(r, record.row) for r in error.reasons)
    if errors:
        raise InvalidInput(errors)
    return ImportResult(created, updated, items, published)


# ---------------------------------------------------------------- export


def export_records(session: Session) -> list[dict[str, Any]]:
    """Every file with its items, in the import format (round trip)."""
    out = []
    for file in service.list_files(session):
        snap = service.snapshot(session, file)
        items = []
        for item in snap.pop("items"):
            item.pop("status", None)
            items.append({k: v for k, v in item.items() if v not in (None, "", [], False)
                          or k in ("key", "name_ja")})
        snap = {k: v for k, v in snap.items() if v not in (None, "") or k in ("key", "name")}
        held = snap.get("held_since")
        if isinstance(held, str):
            snap["held_since"] = held
        snap["items"] = items
        out.append(snap)
    return out


def to_yaml(records: list[dict[str, Any]]) -> str:
    return yaml.safe_dump({"files": records}, allow_unicode=True, sort_keys=False)


def to_json(records: list[dict[str, Any]] | dict[str, Any]) -> str:
    return json.dumps(records, ensure_ascii=False, indent=2, default=str)


def to_csv(records: list[dict[str, Any]]) -> str:
    file_columns = list(FILE_FIELDS)
    item_columns = [f"item_{c}" for c in ITEM_FIELDS]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=file_columns + item_columns)
    writer.writeheader()

    def cell(value: Any) -> Any:
        if isinstance(value, list):
            return ";".join(str(v) for v in value)
        if isinstance(value, bool):
            return "true" if value else "false"
        return "" if value is None else textio.csv_safe(value)

    for record in records:
        base = {c: cell(record.get(c)) for c in file_columns}
        items: list[dict[str, Any]] = record.get("items") or [{}]
        for number, item in enumerate(items):
            row = dict(base) if number == 0 else {"key": record["key"]}
            if item:
                row.update({f"item_{k}": cell(item.get(k)) for k in ITEM_FIELDS})
            writer.writerow(row)
    return buffer.getvalue()
