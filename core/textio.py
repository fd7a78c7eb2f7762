"""Safe reading and writing of text that people hand over or take away: encodings, control
characters, YAML depth and size, and CSV cells a spreadsheet would run as formulas."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from core import messages
from core.reasons import InvalidInput, Reason
from core.settings import get_settings

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
        "core.text_field_too_large": (
            "{line} 行目の「{column}」が大きすぎます（{size} バイト、上限 {limit} バイト）。",
            "Row {line}, field {column!r} is too large ({size} bytes, limit {limit}).",
        ),
        "core.text_line_too_large": (
            "{line} 行目が大きすぎます（{size} バイト、上限 {limit} バイト）。",
            "Line {line} is too large ({size} bytes, limit {limit}).",
        ),
        "core.text_unreadable_csv": (
            "{line} 行目の CSV を読み込めません（{detail}）。",
            "Line {line}: the CSV cannot be read ({detail}).",
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


@dataclass(frozen=True)
class Limits:
    """The largest field and line of an import, in UTF-8 bytes (KODOMO_IMPORT_MAX_*_BYTES)."""

    field_bytes: int
    line_bytes: int


def limits() -> Limits:
    settings = get_settings()
    return Limits(settings.import_max_field_bytes, settings.import_max_line_bytes)


def _size(text: str, limit: int) -> int:
    """The UTF-8 size of text, or a cheap figure at or under the limit when it clearly fits."""
    if len(text) * 4 <= limit:
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def refuse_long_lines(text: str, within: Limits | None = None) -> None:
    """A physical line over the line limit is refused with its number."""
    within = within or limits()
    for number, line in enumerate(text.splitlines(), start=1):
        size = _size(line, within.line_bytes)
        if size > within.line_bytes:
            raise InvalidInput(Reason.of("core.text_line_too_large", row=number, line=number,
                                         size=size, limit=within.line_bytes))


def read_csv(text: str, within: Limits | None = None) -> Iterator[tuple[int, list[str]]]:
    """The records of a CSV text with the line each starts on (the header is line 1; a blank
    line is an empty record). A field over the field limit is refused with its line and column
    (the header's name for it), a record over the line limit with its line; the csv module's
    own errors become a refusal with the line, never a traceback."""
    within = within or limits()
    # The csv module refuses a field over its process-wide limit (131,072 characters by
    # default) with a bare csv.Error: it is raised (never lowered) past the line limit, so
    # every field over our limits is measured and refused below with its row and column.
    if csv.field_size_limit() <= within.line_bytes:
        csv.field_size_limit(within.line_bytes + 1)
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    header: list[str] = []
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise InvalidInput(Reason.of("core.text_unreadable_csv", row=start, line=start,
                                         detail=str(error)[:200])) from error
        total = len(cells)
        for index, cell in enumerate(cells):
            size = _size(cell, within.field_bytes)
            if size > within.field_bytes:
                column = (header[index].strip() if index < len(header) and header[index].strip()
                          else f"#{index + 1}")
                raise InvalidInput(Reason.of("core.text_field_too_large", row=start,
                                             field=column, line=start, column=column,
                                             size=size, limit=within.field_bytes))
            total += size
        if total > within.line_bytes:
            raise InvalidInput(Reason.of("core.text_line_too_large", row=start, line=start,
                                         size=total, limit=within.line_bytes))
        if not header:
            header = cells
        yield start, cells
        start = reader.line_num + 1


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
    # split("\n"), not splitlines(): that one treats \x0b, \x0c, \x1c-\x1e and \x85 as line
    # ends, so they would never be seen here.
    for number, line in enumerate(text.split("\n"), start=1):
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
    field_bytes = 64 * 1024

    def compose_node(self, parent: Any, index: Any) -> Any:
        depth = getattr(self, "_depth", 0) + 1
        if depth > YAML_MAX_DEPTH:
            raise InvalidInput(Reason.of("core.yaml_too_deep", limit=YAML_MAX_DEPTH))
        self._depth = depth
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth = depth - 1
        if isinstance(node, yaml.ScalarNode) and isinstance(node.value, str):
            size = _size(node.value, self.field_bytes)
            if size > self.field_bytes:
                line = node.start_mark.line + 1
                raise InvalidInput(Reason.of("core.text_field_too_large", row=line,
                                             line=line, column="value", size=size,
                                             limit=self.field_bytes))
        return node


def load_yaml(text: str, within: Limits | None = None) -> Any:
    """yaml.safe_load with a size, a nesting, a line and a scalar limit (no RecursionError, no
    billion laughs beyond the size)."""
    within = within or limits()
    if len(text.encode("utf-8", "surrogatepass")) > YAML_MAX_BYTES:
        raise InvalidInput(Reason.of("core.text_too_large", limit=YAML_MAX_BYTES))
    refuse_long_lines(text, within)
    loader = _DepthLimitedLoader(text)
    loader.field_bytes = within.field_bytes
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
