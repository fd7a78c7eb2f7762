"""`kodomo people import FILE`: a resident-register extract into the person register.

CSV in UTF-8, UTF-8 with BOM, UTF-16 with BOM or CP932, without control characters and
within the field and line limits (KODOMO_IMPORT_MAX_FIELD_BYTES, _LINE_BYTES); a 個人番号 column
is refused; columns in docs/people-import.md (English or Japanese
headers). All or nothing: every problem is reported with its row and field and nothing is
written. Importing the same extract again changes nothing; a changed extract updates people
in place and ends guardianship links that are no longer listed for a child in the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlmodel import Session, col, select

import consent.messages  # noqa: F401  (registers the messages)
from consent import rules
from consent.models import (
    ATENA_HASH_PURPOSE,
    HOUSEHOLD_HASH_PURPOSE,
    KANA_HASH_PURPOSE,
    NAME_HASH_PURPOSE,
    GuardianRelation,
    Guardianship,
    Person,
    Sex,
)
from core import audit, textio
from core.clock import local_day, utcnow
from core.crypto import keyed_hash, keyed_hash_candidates
from core.dates import date_reason, parse_date
from core.mynumber import names_my_number
from core.reasons import InvalidInput, Reason

# canonical name -> accepted headers (English first)
COLUMNS: dict[str, tuple[str, ...]] = {
    "atena_no": ("atena_no", "宛名番号", "団体内統合宛名番号"),
    "family_name": ("family_name", "氏"),
    "given_name": ("given_name", "名"),
    "family_kana": ("family_kana", "氏カナ", "氏（カナ）"),
    "given_kana": ("given_kana", "名カナ", "名（カナ）"),
    "birth_date": ("birth_date", "生年月日"),
    "sex": ("sex", "性別"),
    "household_no": ("household_no", "世帯番号"),
    "parent1_atena_no": ("parent1_atena_no", "親権者1宛名番号"),
    "parent2_atena_no": ("parent2_atena_no", "親権者2宛名番号"),
    "parent_proof": ("parent_proof", "親権者確認書類"),
    "minor_guardian_atena_no": ("minor_guardian_atena_no", "未成年後見人宛名番号"),
    "minor_guardian_proof": ("minor_guardian_proof", "未成年後見人確認書類"),
    "guardianship_from": ("guardianship_from", "親権等開始日"),
}
REQUIRED = ("atena_no", "family_name", "given_name", "family_kana", "given_kana", "birth_date")
GUARDIAN_COLUMNS = (("parent1_atena_no", GuardianRelation.parent, "parent_proof"),
                    ("parent2_atena_no", GuardianRelation.parent, "parent_proof"),
                    ("minor_guardian_atena_no", GuardianRelation.minor_guardian,
                     "minor_guardian_proof"))
MAX_ATENA = 32


@dataclass
class Row:
    row: int
    atena_no: str
    name: str
    kana: str
    birth_date: date
    sex: Sex
    household_no: str | None
    guardians: list[tuple[str, GuardianRelation, str, str]] = field(default_factory=list)
    guardianship_from: date | None = None


@dataclass(frozen=True)
class ImportResult:
    rows: int
    created: int
    updated: int
    unchanged: int
    links_added: int
    links_ended: int


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, or CP932; anything else is refused."""
    return textio.decode(data)


# 個人番号 (My Number) columns: the register never stores, uses or matches on it (DESIGN.md), so
# an extract that carries one is refused, not silently trimmed (the spellings: core.mynumber).
is_my_number_column = names_my_number


def _bad(row: int, column: str, detail: str) -> Reason:
    return Reason.of("consent.import_bad_value", row=row, field=column, column=column,
                     detail=detail, line=row)


def _not_a_date(row: int, column: str, text: str) -> Reason:
    """Why a cell is not a date (an era date outside its era says so), with row and field."""
    return date_reason(text, field=column, row=row) or _bad(row, column, "日付ではありません / "
                                                                          "not a date")


def parse(data: bytes, today: date | None = None) -> list[Row]:
    """Every row of the extract, or InvalidInput with every problem (row and field)."""
    text = decode(data)
    textio.refuse_control_characters(text)
    today = today or local_day(utcnow())
    lines = list(textio.read_csv(text))
    if not lines or not any(cell.strip() for cell in lines[0][1]):
        raise InvalidInput(Reason.of("consent.import_empty", field="file"))
    header = [cell.strip() for cell in lines[0][1]]
    where: dict[str, int] = {}
    problems: list[Reason] = [
        Reason.of("consent.import_my_number_column", row=1, field=name, column=name, line=1)
        for name in header if is_my_number_column(name)]
    if problems:
        raise InvalidInput(problems)
    for index, name in enumerate(header):
        for canonical, aliases in COLUMNS.items():
            if name in aliases:
                where[canonical] = index
    for required in REQUIRED:
        if required not in where:
            problems.append(Reason.of("consent.import_missing_column", row=1, field=required,
                                      column=required))
    if problems:
        raise InvalidInput(problems)
    rows: list[Row] = []
    first_row: dict[str, int] = {}
    for number, cells in lines[1:]:
        if not any(cell.strip() for cell in cells):
            continue

        def cell(name: str, cells: Sequence[str] = cells) -> str:
            index = where.get(name)
            return cells[index].strip() if index is not None and index < len(cells) else ""

        before = len(problems)
        if len(cells) > len(header):
            problems.append(_bad(number, "file", f"列が多すぎます / {len(cells)} cells, "
                                                 f"{len(header)} columns"))
        for required in REQUIRED:
            if not cell(required):
                problems.append(_bad(number, required, "必須です / required"))
        atena = cell("atena_no")
        if atena and (len(atena) > MAX_ATENA or not atena.isascii() or not atena.isalnum()):
            problems.append(_bad(number, "atena_no", "英数字32桁以内 / up to 32 letters or "
                                                     "digits"))
        elif atena in first_row:
            problems.append(Reason.of("consent.import_duplicate", row=number, field="atena_no",
                                      first=first_row[atena], line=number))
        elif atena:
            first_row[atena] = number
        birth = parse_date(cell("birth_date")) if cell("birth_date") else None
        if cell("birth_date") and birth is None:
            problems.append(_not_a_date(number, "birth_date", cell("birth_date")))
        elif birth is not None and birth > today:
            problems.append(_bad(number, "birth_date", "未来の日付です / in the future"))
        sex = rules.parse_sex(cell("sex"))
        if sex is None:
            problems.append(_bad(number, "sex", "1・2・9 または 男・女 / 1, 2, 9, 男 or 女"))
        since = None
        if cell("guardianship_from"):
            since = parse_date(cell("guardianship_from"))
            if since is None:
                problems.append(_not_a_date(number, "guardianship_from",
                                            cell("guardianship_from")))
        guardians: list[tuple[str, GuardianRelation, str, str]] = []
        for column, relation, proof_column in GUARDIAN_COLUMNS:
            value = cell(column)
            if not value:
                continue
            if value == atena:
                problems.append(_bad(number, column, "本人と同じです / the person themself"))
            elif any(value == g[0] for g in guardians):
                problems.append(_bad(number, column, "重複しています / repeated"))
            else:
                guardians.append((value, relation, cell(proof_column), column))
        for _value, _relation, proof, column in guardians:
            proof_column = next(p for c, _r, p in GUARDIAN_COLUMNS if c == column)
            if not proof and not any(r.field == proof_column for r in problems[before:]):
                problems.append(_bad(number, proof_column,
                                     "確認書類の参照が必要です / proof reference required"))
        if len(problems) > before or birth is None or sex is None:
            continue
        rows.append(Row(
            row=number, atena_no=atena,
            name=f"{cell('family_name')} {cell('given_name')}",
            kana=f"{cell('family_kana')} {cell('given_kana')}",
            birth_date=birth, sex=Sex(sex), household_no=cell("household_no") or None,
            guardians=guardians, guardianship_from=since))
    if problems:
        raise InvalidInput(problems)
    if not rows:
        raise InvalidInput(Reason.of("consent.import_empty", field="file"))
    return rows


def _existing(session: Session, atena_numbers: Sequence[str]) -> dict[str, Person]:
    found: dict[str, Person] = {}
    wanted = {h: a for a in atena_numbers for h in keyed_hash_candidates(a, ATENA_HASH_PURPOSE)}
    hashes = list(wanted)
    for start in range(0, len(hashes), 500):
        chunk = hashes[start:start + 500]
        for person in session.exec(select(Person).where(col(Person.atena_hash).in_(chunk))):
            found[wanted[person.atena_hash]] = person
    return found


def _hashes(row: Row) -> dict[str, Any]:
    return {
        "atena_hash": keyed_hash(row.atena_no, purpose=ATENA_HASH_PURPOSE),
        "name_hash": keyed_hash(rules.normalise_name(row.name), purpose=NAME_HASH_PURPOSE),
        "kana_hash": keyed_hash(rules.normalise_kana(row.kana), purpose=KANA_HASH_PURPOSE),
        "household_hash": (keyed_hash(row.household_no, purpose=HOUSEHOLD_HASH_PURPOSE)
                           if row.household_no else None),
    }


def import_rows(session: Session, actor: audit.Actor, rows: list[Row],
                at: datetime | None = None) -> ImportResult:
    """Write parsed rows (all of them, or raise before anything is flushed)."""
    moment = at or utcnow()
    today = local_day(moment)
    people = _existing(session, [r.atena_no for r in rows]
                       + [g[0] for r in rows for g in r.guardians])
    in_file = {r.atena_no for r in rows}
    problems = [Reason.of("consent.import_unknown_guardian", row=r.row, field=column,
                          column=column, line=r.row)
                for r in rows for value, _rel, _proof, column in r.guardians
                if value not in in_file and value not in people]
    if problems:
        raise InvalidInput(problems)
    created = updated = unchanged = 0
    for row in rows:
        person = people.get(row.atena_no)
        values: dict[str, Any] = {"atena_no": row.atena_no, "name": row.name, "kana": row.kana,
                  "birth_date": row.birth_date, "sex": row.sex,
                  "household_no": row.household_no}
        if person is None:
            person = Person(**values, **_hashes(row))
            session.add(person)
            people[row.atena_no] = person
            created += 1
            continue
        changed = {k: v for k, v in values.items() if getattr(person, k) != v}
        if not changed:
            unchanged += 1
            continue
        for key, value in {**changed, **_hashes(row)}.items():
            setattr(person, key, value)
        person.updated_at = moment
        session.add(person)
        updated += 1
    session.flush()
    added = ended = 0
    for row in rows:
        child = people[row.atena_no]
        wanted: dict[tuple[str, str], str] = {
            (people[a].id, str(rel)): proof for a, rel, proof, _c in row.guardians}
        current: dict[tuple[str, str], Guardianship] = {
            (g.guardian_id, str(g.relation)): g for g in session.exec(
            select(Guardianship).where(Guardianship.child_id == child.id))}
        for pair, link in current.items():
            live = link.valid_until is None or link.valid_until > today
            if pair not in wanted and live:
                link.valid_until = today
                session.add(link)
                ended += 1
            elif pair in wanted and (not live or link.proof_ref != wanted[pair]):
                link.proof_ref = wanted[pair]
                link.valid_until = None
                session.add(link)
        for (guardian_id, relation), proof in wanted.items():
            if (guardian_id, relation) not in current:
                session.add(Guardianship(child_id=child.id, guardian_id=guardian_id,
                                         relation=GuardianRelation(relation), proof_ref=proof,
                                         valid_from=row.guardianship_from or row.birth_date))
                added += 1
    session.flush()
    result = ImportResult(len(rows), created, updated, unchanged, added, ended)
    audit.append(session, "consent.people_imported", actor=actor, target_type="consent_person",
                 details={"rows": result.rows, "created": created, "updated": updated,
                          "unchanged": unchanged, "links_added": added, "links_ended": ended})
    return result


def import_bytes(session: Session, actor: audit.Actor, data: bytes,
                 at: datetime | None = None) -> ImportResult:
    return import_rows(session, actor, parse(data), at)
