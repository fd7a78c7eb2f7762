"""`kodomo people import`: three encodings, all or nothing with row and field, idempotent."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from consent import importer, people
from consent.models import Guardianship, Person
from core import audit, textio
from core.reasons import InvalidInput
from main import cli

HEADER = ("宛名番号,氏,名,氏カナ,名カナ,生年月日,性別,世帯番号,親権者1宛名番号,親権者2宛名番号,"
          "親権者確認書類")
ROWS = [
    "IMP0001,山田,太郎,ヤマダ,タロウ,1980-04-01,1,HH01,,,",
    "IMP0002,山田,花子,やまだ,はなこ,昭和58年7月7日,2,HH01,,,",
    "IMP0003,山田,健,ヤマダ,ケン,H26.8.1,1,HH01,IMP0001,IMP0002,戸籍謄本 R8.4.1",
]


def _csv(*rows: str) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


def _count(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Person)).one())


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932", "utf-16"])
def test_three_encodings_import_the_same_people(db: Session, encoding: str) -> None:
    data = _csv(*ROWS).encode(encoding)
    result = importer.import_bytes(db, audit.SYSTEM, data)
    assert (result.created, result.links_added) == (3, 2)
    child = people.person_by_atena(db, "IMP0003")
    assert child is not None and child.name == "山田 健" and child.kana == "ヤマダ ケン"
    assert str(child.birth_date) == "2014-08-01"
    assert {g.relation for g in people.guardianships(db, child.id)} == {"parent"}
    found = people.find_persons(db, audit.SYSTEM, name="やまだ　はなこ",
                                birth_date=date(1983, 7, 7))
    assert [p.atena_no for p in found] == ["IMP0002"]


def test_importing_again_changes_nothing_and_updates_in_place(db: Session) -> None:
    importer.import_bytes(db, audit.SYSTEM, _csv(*ROWS).encode())
    before = _count(db)
    again = importer.import_bytes(db, audit.SYSTEM, _csv(*ROWS).encode())
    assert (again.created, again.updated, again.unchanged, again.links_added,
            again.links_ended) == (0, 0, 3, 0, 0)
    assert _count(db) == before
    changed = [ROWS[0], ROWS[1].replace("花子", "華子"), ROWS[2].replace("IMP0002,", ",", 1)]
    result = importer.import_bytes(db, audit.SYSTEM, _csv(*changed).encode())
    assert (result.updated, result.links_ended) == (1, 1)
    assert [p.atena_no for p in people.find_persons(db, audit.SYSTEM, name="山田華子",
                                                         birth_date=date(1983, 7, 7))] == [
        "IMP0002"]
    assert people.find_persons(db, audit.SYSTEM, name="山田花子",
                               birth_date=date(1983, 7, 7)) == []


def test_a_malformed_extract_imports_nothing(db: Session) -> None:
    before = _count(db)
    bad = _csv(ROWS[0], "IMP0002,山田,,ヤマダ,ハナコ,1983-02-30,7,HH01,,,",
               "IMP0001,山田,次郎,ヤマダ,ジロウ,2015-01-01,1,HH01,,,")
    with pytest.raises(InvalidInput) as error:
        importer.import_bytes(db, audit.SYSTEM, bad.encode())
    where = {(r.row, r.field, r.code) for r in error.value.reasons}
    assert where == {
        (3, "given_name", "consent.import_bad_value"),
        (3, "birth_date", "core.date_no_such_day"),
        (3, "sex", "consent.import_bad_value"),
        (4, "atena_no", "consent.import_duplicate"),
    }
    assert _count(db) == before


def test_unknown_guardians_and_missing_columns(db: Session) -> None:
    with pytest.raises(InvalidInput) as error:
        importer.import_bytes(db, audit.SYSTEM, _csv(
            "IMP0009,山田,健,ヤマダ,ケン,2014-08-01,1,HH01,NOBODY,,戸籍").encode())
    (reason,) = error.value.reasons
    assert (reason.code, reason.row, reason.field) == (
        "consent.import_unknown_guardian", 2, "parent1_atena_no")
    with pytest.raises(InvalidInput) as error:
        importer.import_bytes(db, audit.SYSTEM, "宛名番号,氏\nX1,山田\n".encode())
    assert {r.field for r in error.value.reasons} == {"given_name", "family_kana",
                                                      "given_kana", "birth_date"}
    with pytest.raises(InvalidInput) as error:
        importer.import_bytes(db, audit.SYSTEM, b"\x81\x20bad")
    assert error.value.reasons[0].code == "core.text_encoding"


def test_the_cli_is_all_or_nothing(fresh_engine: Engine, tmp_path: Path) -> None:
    runner = CliRunner()
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_bytes(_csv(*ROWS).encode("cp932"))
    bad.write_bytes(_csv(ROWS[0], "IMP0002,山田,花子,ヤマダ,ハナコ,not-a-date,2,,,,").encode())
    refused = runner.invoke(cli, ["people", "import", str(bad)])
    assert refused.exit_code == 2
    assert "row 3 [birth_date]" in refused.output
    with Session(fresh_engine) as session:
        assert _count(session) == 0
    accepted = runner.invoke(cli, ["people", "import", str(good)])
    assert accepted.exit_code == 0, accepted.output
    assert "created 3" in accepted.output
    again = runner.invoke(cli, ["people", "import", str(good)])
    assert "unchanged 3" in again.output
    with Session(fresh_engine) as session:
        assert _count(session) == 3
        assert len(session.exec(select(Guardianship)).all()) == 2


# ---------------------------------------------------------------- issue 12: hardened input


def test_a_bom_extract_is_accepted_and_garbage_refused_with_a_reason(db: Session) -> None:
    result = importer.import_bytes(db, audit.SYSTEM, b"\xef\xbb\xbf" + _csv(*ROWS).encode())
    assert result.created == 3
    with pytest.raises(InvalidInput) as error:
        importer.import_bytes(db, audit.SYSTEM, HEADER.encode() + b"\n\xfd\xfe\xff\x80")
    assert error.value.code == "core.text_encoding"


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x0c", "\x85"])
def test_nul_and_control_characters_are_refused_with_the_row(db: Session, char: str) -> None:
    before = _count(db)
    data = _csv(ROWS[0], ROWS[1].replace("花子", f"花{char}子")).encode()
    with pytest.raises(InvalidInput) as error:
        importer.import_bytes(db, audit.SYSTEM, data)
    assert (error.value.code, error.value.reasons[0].row) == ("core.text_control_character", 3)
    assert _count(db) == before


def test_a_131_kb_field_is_refused_with_its_row_and_field(db: Session) -> None:
    before = _count(db)
    data = _csv(ROWS[0], ROWS[1].replace("花子", "花" * 131 * 1024), ROWS[2]).encode("cp932")
    with pytest.raises(InvalidInput) as error:
        importer.import_bytes(db, audit.SYSTEM, data)
    (reason,) = error.value.reasons
    assert (reason.code, reason.row, reason.field) == ("core.text_field_too_large", 3, "名")
    assert _count(db) == before


def test_a_line_over_the_limit_is_refused_with_its_row(db: Session) -> None:
    wide = ",".join(["x" * 60_000] * 20)  # every field fits; the record is over 1 MB
    with pytest.raises(InvalidInput) as error:
        importer.import_bytes(db, audit.SYSTEM, _csv(ROWS[0], ROWS[1] + "," + wide).encode())
    assert (error.value.code, error.value.reasons[0].row) == ("core.text_line_too_large", 3)


def test_the_field_limit_is_a_setting(db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(textio, "limits", lambda: textio.Limits(2048, 1024 * 1024))
    with pytest.raises(InvalidInput) as error:
        importer.import_bytes(db, audit.SYSTEM, _csv(ROWS[0].replace("HH01", "H" * 3000)
                                                     ).encode())
    assert (error.value.code, error.value.reasons[0].field) == ("core.text_field_too_large",
                                                               "世帯番号")


@pytest.mark.parametrize("column", ["個人番号", "マイナンバー", "my_number", "MyNumber", "mynumber",
                                    "kojin_bango", "KOJIN_BANGOU", "ﾏｲﾅﾝﾊﾞｰ", "個人番号（本人）",
                                    "My Number", "my_no", "Individual Number"])
def test_a_my_number_column_is_refused_not_ignored(db: Session, column: str) -> None:
    before = _count(db)
    rows = [f"{r},123456789012" for r in ROWS]
    with pytest.raises(InvalidInput) as error:
        importer.import_bytes(db, audit.SYSTEM, "\n".join([f"{HEADER},{column}", *rows]).encode())
    (reason,) = error.value.reasons
    assert (reason.code, reason.row, reason.field) == (
        "consent.import_my_number_column", 1, column)
    assert "My Number" in reason.message_en and "個人番号" in reason.message_ja
    assert _count(db) == before


def test_unrelated_columns_with_number_in_their_name_are_still_ignored(db: Session) -> None:
    data = "\n".join([f"{HEADER},電話番号,整理番号", *(f"{r},,1" for r in ROWS)]).encode()
    assert importer.import_bytes(db, audit.SYSTEM, data).created == 3


def test_the_cli_refuses_bad_input_without_a_traceback(fresh_engine: Engine,
                                                       tmp_path: Path) -> None:
    runner = CliRunner()
    for name, data in {
        "nul.csv": _csv(ROWS[0].replace("太郎", "太\x00郎")).encode(),
        "big.csv": _csv(ROWS[0].replace("太郎", "太" * 140_000)).encode("cp932"),
        "mynumber.csv": f"{HEADER},個人番号\n{ROWS[0]},123456789012\n".encode("cp932"),
        "garbage.csv": b"\x81\x20\xff\xfe\xfd",
    }.items():
        path = tmp_path / name
        path.write_bytes(data)
        refused = runner.invoke(cli, ["people", "import", str(path)])
        assert refused.exit_code == 2, (name, refused.output)
        assert refused.exception is None or isinstance(refused.exception, SystemExit), name
        assert "Traceback" not in refused.output
    with Session(fresh_engine) as session:
        assert _count(session) == 0


@pytest.mark.parametrize(
    ("birth", "code"),
    [
        ("平成31年5月1日", "core.date_after_era"),  # 平成 ended on 4/30
        ("R1.4.1", "core.date_before_era"),  # 令和 began on 5/1
        ("令和0年5月1日", "core.date_era_year_zero"),
        ("H35.1.1", "core.date_after_era"),
        ("慶応3年1月1日", "core.date_era_unknown"),
        ("2014-02-30", "core.date_no_such_day"),
    ],
)
def test_a_birth_date_outside_its_era_is_refused_with_the_reason(db: Session, birth: str,
                                                                  code: str) -> None:
    before = _count(db)
    row = ROWS[2].replace("H26.8.1", birth)
    with pytest.raises(InvalidInput) as refused:
        importer.import_bytes(db, audit.SYSTEM, _csv(ROWS[0], ROWS[1], row).encode())
    found = [(r.row, r.field, r.code) for r in refused.value.reasons]
    assert found == [(4, "birth_date", code)]
    assert _count(db) == before
