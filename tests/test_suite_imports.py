"""No file of the suite imports a test module or a conftest.

What tests share lives in plain modules (tests/databases.py, tests/web.py, tests/factories.py)
and fixtures live in conftest.py files, which pytest loads itself: importing a test module runs
(and collects) its tests twice, and importing a conftest loads it a second time under another
name.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def _is_test_module_or_conftest(module: str) -> bool:
    parts = module.split(".")
    last = parts[-1]
    return parts[0] == TESTS.name and (
        last == "conftest" or last.startswith("test_") or last.endswith("_test")
    )


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for each module the file imports, anywhere in it; for `from a import b`
    both `a` and `a.b` (b may be a module), with relative imports made absolute."""
    package = list(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            yield node.lineno, module
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"


def test_no_file_of_the_suite_imports_a_test_module_or_a_conftest() -> None:
    files = sorted(p for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts)
    assert TESTS / "conftest.py" in files and Path(__file__).resolve() in files
    found = sorted(
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in files
        for line, module in set(_imports(path))
        if _is_test_module_or_conftest(module)
    )
    assert found == [], "\n".join(found)
