"""Fixtures of the consent tests: a purpose, items, a recipient, a shown notice, and people."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import Session, col, select

from consent.rules import organ_recipient
from core.models import Organ
from governance.models import Purpose
from registry.models import RegistryItem
from tests.factories import World, make_notice


@pytest.fixture
def world(db: Session) -> Iterator[World]:
    purpose = db.exec(select(Purpose).where(Purpose.key == "young_carers_outreach")).one()
    organ = db.exec(select(Organ).where(Organ.key == "mayor")).one()
    items = [i.id for i in db.exec(select(RegistryItem).order_by(col(RegistryItem.id))).all()][:3]
    assert purpose.id and organ.id and len(items) == 3
    notice = make_notice(db, purpose.id, organ.id, [i for i in items[:2] if i],
                         organ_recipient(organ.id))
    yield World(db, purpose.id, organ.id, [i for i in items[:2] if i],
                organ_recipient(organ.id), notice)
