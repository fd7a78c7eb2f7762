"""The one 個人番号 filter: every spelling in the table is refused, and nothing else is."""

from __future__ import annotations

import pytest

from consent.importer import is_my_number_column
from core.mynumber import names_my_number
from registry.rules import is_my_number

REFUSED = [
    "個人番号",
    "個人番号（本人）",
    "個 人 番 号",  # spaced
    "個人番号カード",
    "マイナンバー",
    "ﾏｲﾅﾝﾊﾞｰ",  # half-width katakana
    "マイ・ナンバー",
    "まいなんばー",
    "マイナンバーカード",
    "社会保障・税番号",
    "社会保障 ・ 税番号",
    "社会保障税番号",
    "こじんばんごう",
    "My Number",
    "MY NUMBER",
    "ＭＹ　ＮＵＭＢＥＲ",  # full-width letters and space
    "my-number",
    "individual number",
    "Individual Number Card",
    "my_number",
    "mynumber",
    "kojin_bango",
    "kojinbangou",
    "KOJIN-BANGO",
    "juki.my_no",
    "my_no",
    "mynum",
    "kojin_no",
    "individual_no",
]
ALLOWED = [
    "団体内統合宛名番号",
    "宛名番号",
    "住民票コード",
    "番号",
    "氏名",
    "my notes",
    "mynote",
    "juki.atena_no",
    "number of children",
    "社会保障",
    "",
]


@pytest.mark.parametrize("name", REFUSED)
def test_every_spelling_of_my_number_is_refused_everywhere(name: str) -> None:
    assert names_my_number(name)
    # the register's items and the people import's columns use the same definition
    assert is_my_number(name)
    assert is_my_number_column(name)


@pytest.mark.parametrize("name", ALLOWED)
def test_other_names_pass(name: str) -> None:
    assert not names_my_number(name)
    assert not is_my_number(name)
    assert not is_my_number_column(name)


def test_any_of_several_texts() -> None:
    assert names_my_number("x", None, "社会保障・税番号")
    assert not names_my_number(None, "", "氏名")
