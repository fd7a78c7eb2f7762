"""Fixtures of the register tests: the demo register, complete files, principals."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlmodel import Session

from core import audit
from registry import demo, service
from registry.models import RegistryFile
from registry.schemas import FileCreate, ItemCreate


@pytest.fixture
def register(db: Session) -> Iterator[Session]:
    """The test's session with the demo city's files loaded (and committed to the test's
    savepoint, so that the app sees them too)."""
    demo.load(db)
    db.commit()
    yield db


def complete_file(session: Session, key: str, persons: int = 1500, *,
                  at: datetime | None = None, items: int = 2, **fields: Any) -> RegistryFile:
    """A file with every statutory item filled in, and `items` data items."""
    data: dict[str, Any] = dict(
        key=key, name=f"テストファイル{key}", organ="mayor", department="child_family",
        purpose=f"{key}の利用目的", record_scope=f"{key}の記録範囲",
        collection_method=f"{key}の収集方法", regular_recipients="なし",
        request_office_name="若葉台市総務課", request_office_address="若葉台市一丁目1番1号",
        special_procedure=False, file_type="computer", persons_count=persons,
    )
    data.update(fields)
    file = service.create_file(session, audit.SYSTEM, FileCreate.model_validate(data), at=at)
    for number in range(1, items + 1):
        service.add_item(session, audit.SYSTEM, file, ItemCreate(
            key=f"{key}.item{number}", name_ja=f"{key}項目{number}"), at=at)
    return file
