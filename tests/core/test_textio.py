"""Issue 12, item 5 (the shared part): encodings, control characters, YAML limits, CSV formulas."""

from __future__ import annotations

import pytest

from core import textio
from core.reasons import InvalidInput
from registry import importer


def test_cp932_bom_and_utf16_are_read_and_garbage_refused() -> None:
    assert textio.decode("個人情報ファイル".encode("cp932")) == "個人情報ファイル"
    assert textio.decode("\ufeffkey".encode()) == "key"
    assert textio.decode("キー".encode("utf-16")) == "キー"
    with pytest.raises(InvalidInput) as caught:
        textio.decode(b"a\xfd\xff\xff")
    assert caught.value.code == "core.text_encoding"


@pytest.mark.parametrize("text", ["key,name\na\x00b,x\n", "files:\n- key: a\x07\n"])
def test_nul_and_control_characters_are_refused_with_the_line(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        importer.parse(text, "csv" if "," in text else "yaml")
    assert caught.value.code == "core.text_control_character"
    assert caught.value.reasons[0].row is not None


def test_yaml_nested_5000_deep_is_refused_not_a_recursion_error() -> None:
    with pytest.raises(InvalidInput) as caught:
        importer.parse("files: " + "[" * 5000 + "]" * 5000, "yaml")
    assert caught.value.code == "core.yaml_too_deep"


@pytest.mark.parametrize("cell", ["=cmd|'/c calc'!A1", "+1+1", "@SUM(A1)", "-2+3", "\t=1"])
def test_formula_cells_are_neutralised_in_csv_exports(cell: str) -> None:
    out = importer.to_csv([{"key": "f1", "name": cell, "items": []}])
    assert f"'{cell}" in out
    assert textio.csv_safe("普通の値") == "普通の値" and textio.csv_safe(3) == 3


def test_a_131_kb_register_csv_field_is_refused_with_its_row_and_field() -> None:
    text = "key,name\nf1,ok\nf2," + "x" * 131 * 1024 + "\n"
    with pytest.raises(InvalidInput) as caught:
        importer.parse(text, "csv")
    (reason,) = caught.value.reasons
    assert (reason.code, reason.row, reason.field) == ("core.text_field_too_large", 3, "name")


def test_csv_records_carry_the_line_they_start_on_and_limits_apply() -> None:
    text = 'a,b\n"multi\nline",x\n\nlast,y\n'
    assert list(textio.read_csv(text)) == [
        (1, ["a", "b"]), (2, ["multi\nline", "x"]), (4, []), (5, ["last", "y"])]
    small = textio.Limits(field_bytes=4, line_bytes=8)
    with pytest.raises(InvalidInput) as caught:
        list(textio.read_csv("a,b\nok,漢字\n", small))  # 6 bytes in UTF-8
    assert (caught.value.code, caught.value.reasons[0].field) == ("core.text_field_too_large", "b")
    with pytest.raises(InvalidInput) as caught:
        list(textio.read_csv("a,b,c\n1234,1234,1\n", small))
    assert (caught.value.code, caught.value.reasons[0].row) == ("core.text_line_too_large", 2)


def test_yaml_scalars_and_lines_over_the_limits_are_refused() -> None:
    small = textio.Limits(field_bytes=1024, line_bytes=4096)
    assert textio.load_yaml("a: " + "x" * 1000, small) == {"a": "x" * 1000}
    with pytest.raises(InvalidInput) as caught:
        textio.load_yaml("a: |\n  " + "x" * 1000 + "\n  " + "y" * 1000 + "\n", small)
    assert (caught.value.code, caught.value.reasons[0].row) == ("core.text_field_too_large", 1)
    with pytest.raises(InvalidInput) as caught:
        textio.load_yaml("# " + "x" * 5000, small)
    assert caught.value.code == "core.text_line_too_large"


def test_the_limits_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.settings import Settings
    monkeypatch.setenv("KODOMO_IMPORT_MAX_FIELD_BYTES", "2048")
    monkeypatch.setenv("KODOMO_IMPORT_MAX_LINE_BYTES", "4096")
    settings = Settings()
    assert (settings.import_max_field_bytes, settings.import_max_line_bytes) == (2048, 4096)
    assert (Settings.model_fields["import_max_field_bytes"].default,
            Settings.model_fields["import_max_line_bytes"].default) == (65536, 1048576)
