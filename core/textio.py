"""Safe reading and writing of text that people hand over or take away: encodings, control
characters, YAML depth and size, and CSV cells a spreadsheet would run as formulas."""

from __future__ import annotations

from typing import Any

import yaml

from core import messages
from core.reasons import InvalidInput, Reason

messages.register(
    {
        "core.text_encoding": (
            "文字コードを判別できません。UTF-8 または Shift_JIS（CP932）で保存してください。",
            "The character encoding is not recognised. "
            "Save the file as UTF-8 or Shift_JIS (CP932).",
        ),
        "core.text_control_character": (
            "{line} 行目に使用できない制御文字（{char}）が含まれています。",
            "Line {line} contains a control character that is not allowed ({char}).",
        ),
        "core.yaml_too_deep": (
            "YAML の入れ子が深すぎます（上限 {limit} 段）。",
            "The YAML is nested too deeply (limit {limit} levels).",
        ),
        "core.text_too_large": (
            "ファイルが大きすぎます（上限 {limit} バイト）。",
            "The file is too large (limit {limit} bytes).",
        ),
    }
)

YAML_MAX_DEPTH = 50
YAML_MAX_BYTES = 8 * 1024 * 1024
ALLOWED_CONTROLS = frozenset("\t\n\r")
_CP932_UNUSED = frozenset("\x80\uf8f0\uf8f1\uf8f2\uf8f3")
# OWASP CSV injection: a cell starting with one of these is read as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, or CP932; anything else is refused."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as error:
            raise InvalidInput(Reason.of("core.text_encoding")) from error
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp932")
    except UnicodeDecodeError as error:
        raise InvalidInput(Reason.of("core.text_encoding")) from error
    # Python's CP932 maps the bytes no Shift_JIS text uses (0x80, 0xA0, 0xFD-0xFF) to U+0080,
    # U+F8F0-F8F3: such a file is not CP932 either.
    if any(char in _CP932_UNUSED for char in text):
        raise InvalidInput(Reason.of("core.text_encoding"))
    return text


def refuse_control_characters(text: str) -> None:
    """NUL and other control characters are refused (with the line), tab and newlines pass."""
    for number, line in enumerate(text.splitlines(), start=1):
        for char in line:
            if (ord(char) < 32 or 0x7F <= ord(char) < 0xA0) and char not in ALLOWED_CONTROLS:
                raise InvalidInput(Reason.of("core.text_control_character", row=number,
                                             line=number, char=f"U+{ord(char):04X}"))


def csv_safe(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe (OWASP)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class _DepthLimitedLoader(yaml.SafeLoader):
    def compose_node(self, parent: Any, index: Any) -> Any:
        depth = getattr(self, "_depth", 0) + 1
        if depth > YAML_MAX_DEPTH:
            raise InvalidInput(Reason.of("core.yaml_too_deep", limit=YAML_MAX_DEPTH))
        self._depth = depth
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth = depth - 1


def load_yaml(text: str) -> Any:
    """yaml.safe_load with a size and a nesting limit (no RecursionError, no billion laughs
    beyond the size)."""
    if len(text.encode()) > YAML_MAX_BYTES:
        raise InvalidInput(Reason.of("core.text_too_large", limit=YAML_MAX_BYTES))
    return yaml.load(text, Loader=_DepthLimitedLoader)  # noqa: S506 (a SafeLoader)
