"""Import (YAML and CSV) is all or nothing with row and field in every error; export round-trips."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from core import audit
from core import demo as core_demo
from core.db import unit_of_work
from core.reasons import InvalidInput
from registry import importer, service
from registry.models import RegistryFile, RegistryItem

GOOD_YAML = """
files:
  - key: imp.a
    name: 取込ファイルA
    organ: mayor
    department: childcare
    purpose: 保育の利用調整のため
    record_scope: 申込児童
    collection_method: 申請書
    regular_recipients: なし
    request_office_name: 総務課
    request_office_address: 若葉台市一丁目
    special_procedure: false
    file_type: computer
    persons_count: 1200
    held_since: 令和6年4月1日
    items:
      - {key: imp.a.name, name_ja: 氏名, category: identity}
      - {key: imp.a.health, name_ja: 健診結果, special_care: [health_check_result]}
  - key: imp.b
    name: 取込ファイルB
    organ: board_of_education
    persons_count: 300
    items:
      - {key: imp.b.name, name_ja: 氏名}
"""

BAD_YAML = GOOD_YAML.replace("persons_count: 300", "persons_count: たくさん").replace(
    "{key: imp.a.health, name_ja: 健診結果", "{key: imp.a.health, name_ja: 個人番号")


def _count(session: Session) -> tuple[int, int]:
    files = session.exec(select(RegistryFile).where(col(RegistryFile.key).startswith("imp."))).all()
    items = session.exec(select(RegistryItem).where(col(RegistryItem.key).startswith("imp."))).all()
    return len(files), len(items)


def test_yaml_import_creates_and_publishes(db: Session) -> None:
    result = importer.import_records(db, audit.SYSTEM, importer.parse(GOOD_YAML, "yaml"),
                                     "取込", publish=True)
    assert (result.created, result.items, result.published) == (2, 3, 1)
    a = service.get_file(db, "imp.a")
    assert a.held_since is not None and a.held_since.year == 2024
    assert service.status(db, a).usable
    assert service.status(db, "imp.b.name").usable  # 300 persons: usable unpublished


def test_yaml_import_is_all_or_nothing_with_row_and_field(db: Session) -> None:
    with pytest.raises(InvalidInput) as refused:
        importer.import_records(db, audit.SYSTEM, importer.parse(BAD_YAML, "yaml"), "取込")
    found = {(r.row, r.field, r.code) for r in refused.value.reasons}
    assert (1, "items.2.name_ja", "registry.my_number_refused") in found
    assert (2, "persons_count", "registry.import_bad_value") in found
    db.rollback()
    assert _count(db) == (0, 0)


@pytest.mark.parametrize("held_since", ["平成31年5月1日", "R1.4.1", "令和0年4月1日"])
def test_a_date_outside_its_era_is_refused_with_row_and_field(db: Session,
                                                             held_since: str) -> None:
    text = GOOD_YAML.replace("held_since: 令和6年4月1日", f"held_since: {held_since}")
    with pytest.raises(InvalidInput) as refused:
        importer.import_records(db, audit.SYSTEM, importer.parse(text, "yaml"), "取込")
    reason = refused.value.reasons[0]
    assert (reason.row, reason.field, reason.code[:10]) == (1, "held_since", "core.date_")
    db.rollback()
    assert _count(db) == (0, 0)


CSV_HEADER = ("key,name,organ,department,purpose,record_scope,collection_method,"
              "regular_recipients,request_office_name,request_office_address,special_procedure,"
              "file_type,persons_count,item_key,item_name_ja,item_special_care\n")


def test_csv_import_all_or_nothing(db: Session) -> None:
    good = (CSV_HEADER
            + "imp.c,CSVファイル,mayor,welfare,目的,範囲,方法,なし,総務課,市役所,なし,manual,1000,"
              "imp.c.name,氏名,\n"
            + "imp.c,,,,,,,,,,,,,imp.c.ill,傷病名,medical_history;disability\n")
    result = importer.import_records(db, audit.SYSTEM, importer.parse(good, "csv"), "取込",
                                     publish=True)
    assert (result.created, result.items, result.published) == (1, 2, 1)
    assert service.get_item(db, "imp.c.ill").special_care == "disability,medical_history"
    bad = (CSV_HEADER
           + "imp.d,CSV2,mayor,,,,,,,,,,10,imp.d.x,氏名,\n"
           + "imp.d,,,,,,,,,,,,,imp.d.y,,\n"  # row 3: item name missing
           + "imp.e,CSV3,nowhere,,,,,,,,,,10,imp.e.x,氏名,\n"  # row 4: unknown organ
           + "imp.f,CSV4,mayor,,,,,,,,,computerish,10,,,\n")  # row 5: bad file type
    with pytest.raises(InvalidInput) as refused:
        importer.import_records(db, audit.SYSTEM, importer.parse(bad, "csv"), "取込")
    found = {(r.row, r.field) for r in refused.value.reasons}
    assert {(3, "item_name_ja"), (4, "organ"), (5, "file_type")} <= found, found
    assert all(r.row is not None and r.field for r in refused.value.reasons)
    db.rollback()
    assert not db.exec(select(RegistryFile).where(RegistryFile.key == "imp.d")).first()


def test_csv_conflicting_file_values_are_refused(db: Session) -> None:
    bad = (CSV_HEADER + "imp.g,名前1,mayor,,,,,,,,,,10,imp.g.a,氏名,\n"
           + "imp.g,名前2,,,,,,,,,,,,imp.g.b,住所,\n")
    with pytest.raises(InvalidInput) as refused:
        importer.parse(bad, "csv")
    assert [(r.row, r.field) for r in refused.value.reasons] == [(3, "name")]


def test_export_round_trips(register: Session) -> None:
    records = importer.export_records(register)
    for text, fmt in ((importer.to_yaml(records), "yaml"), (importer.to_csv(records), "csv")):
        parsed = importer.parse(text, fmt)
        assert {r.data["key"] for r in parsed} == {f.key for f in service.list_files(register)}
        result = importer.import_records(register, audit.SYSTEM, parsed, "再取込")
        assert result.created == 0 and result.updated == len(parsed)
        register.rollback()


def test_cli_import_export_pdf(fresh_engine: Engine, tmp_path: Path) -> None:
    import main

    with unit_of_work(fresh_engine) as session:
        core_demo.load(session)
    runner = CliRunner()
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_YAML, encoding="utf-8")
    result = runner.invoke(main.cli, ["registry", "import", str(bad)])
    assert result.exit_code == 2
    assert "row 1 [items.2.name_ja] registry.my_number_refused" in result.output
    assert "row 2 [persons_count]" in result.output
    with Session(fresh_engine) as session:
        assert _count(session) == (0, 0)
    good = tmp_path / "good.yaml"
    good.write_text(GOOD_YAML, encoding="utf-8")
    result = runner.invoke(main.cli, ["registry", "import", str(good), "--publish"])
    assert result.exit_code == 0, result.output
    assert "created 2" in result.output
    result = runner.invoke(main.cli, ["registry", "export", "--format", "csv"])
    assert result.exit_code == 0 and "imp.a.health" in result.output
    result = runner.invoke(main.cli, ["registry", "export", "--public"])
    assert result.exit_code == 0 and "imp.a.health" not in result.output
    assert "取込ファイルA" in result.output and "取込ファイルB" not in result.output
    out = tmp_path / "mayor.pdf"
    result = runner.invoke(main.cli, ["registry", "pdf", "--organ", "mayor", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"%PDF")
    result = runner.invoke(main.cli, ["registry", "pdf", "--organ", "nowhere", str(out)])
    assert result.exit_code == 2
