"""The layers of DESIGN.md hold: imports point down only, and the three record-keepers are apart."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["core", "governance", "consent", "registry", "pia", "linkage", "scoring", "portal"]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def run_lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def copy_tree(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package,
            tmp_path / package,
            ignore=shutil.ignore_patterns("__pycache__", "fonts", "templates"),
        )
    shutil.copy(ROOT / "main.py", tmp_path / "main.py")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_project_keeps_its_layers() -> None:
    result = run_lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "bad_import"),
    [
        ("core/_upward.py", "import governance\n"),  # core may import no domain package
        ("registry/_upward.py", "import governance\n"),  # record-keeper importing the centre
        ("registry/_sideways.py", "import consent\n"),  # record-keepers stay independent
        ("pia/_sideways.py", "import registry\n"),
        ("governance/_upward.py", "import portal\n"),
        ("linkage/_upward.py", "import main\n"),
        ("linkage/_upward_scoring.py", "import scoring\n"),  # linkage never reads scoring
        ("governance/_upward_linkage.py", "import linkage\n"),
    ],
)
def test_an_upward_or_sideways_import_fails(tmp_path: Path, module: str, bad_import: str) -> None:
    tree = copy_tree(tmp_path)
    (tree / module).write_text(f'"""A forbidden import for the test."""\n{bad_import}')
    result = run_lint_imports(tree)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout or "broken" in result.stdout.lower()


def test_scoring_may_read_linkage(tmp_path: Path) -> None:
    """Scoring reads linkage's results, so the import that DESIGN.md allows passes."""
    tree = copy_tree(tmp_path)
    (tree / "scoring" / "_reads_linkage.py").write_text('"""Scoring reads linked records."""\n'
                                                         "import linkage\n")
    result = run_lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
