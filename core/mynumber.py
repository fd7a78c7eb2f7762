"""個人番号 (My Number): the one table of the names that mean it, refused wherever a name is typed.

The service never stores, uses or matches on 個人番号 (DESIGN.md), so a register item, an import
column or any other field whose name means it is refused, not silently trimmed. Names are
compared after NFKC (full-width and half-width fold together), case folding and dropping every
character that is not a letter or a digit (spaces, `_`, `-`, `・`, brackets).
"""

from __future__ import annotations

import re
import unicodedata

# Spellings that mean 個人番号 wherever they appear in a name ("個人番号（本人）", "x.my_number").
MY_NUMBER_PARTS: tuple[str, ...] = (
    "個人番号",
    "マイナンバー",
    "まいなんばー",
    "社会保障税番号",  # 社会保障・税番号, the number's name in the 番号法's title
    "こじんばんごう",
    "コジンバンゴウ",
    "mynumber",
    "individualnumber",
    "kojinbang",  # kojin_bango, kojinbangou, kojinbangō
)
# Short forms that mean it only as a whole name or one segment of a dotted key ("juki.my_no").
MY_NUMBER_NAMES: frozenset[str] = frozenset({"myno", "mynum", "kojinno", "individualno"})


def fold(text: str) -> str:
    """The name as compared: NFKC, case-folded, letters and digits only."""
    return "".join(c for c in unicodedata.normalize("NFKC", text).casefold() if c.isalnum())


def names_my_number(*texts: str | None) -> bool:
    """Whether any of `texts` (a key, a name, a column header, a data type) names 個人番号."""
    for text in texts:
        if not text:
            continue
        folded = fold(text)
        if any(part in folded for part in MY_NUMBER_PARTS):
            return True
        segments = {fold(s) for s in re.split(r"[./:]", text)} | {folded}
        if segments & MY_NUMBER_NAMES:
            return True
    return False
