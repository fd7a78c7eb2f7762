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
