"""Fixtures of the register tests: the demo register, the default policy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import Session

from registry import demo


@pytest.fixture
def register(db: Session) -> Iterator[Session]:
    """The test's session with the demo city's files loaded (and committed to the test's
    savepoint, so that the app sees them too)."""
    demo.load(db)
    db.commit()
    yield db


