"""The audit chain as tests read and tamper with it: a plain module (not a test module), shared
by tests/core/test_audit.py and tests/core/test_audit_witness.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from core import audit
from core.db import unit_of_work
from core.models import AuditEvent

STAFF = audit.Actor("staff", 42, "privacy_officer", 3)


class Ev(NamedTuple):
    """One stored event as typed values (what verify reads)."""

    seq: int
    occurred_at: datetime
    actor_type: str
    actor_id: int | None
    role: str | None
    organ_id: int | None
    action: str
    target_type: str | None
    target_id: str | None
    purpose_id: int | None
    decision_id: str | None
    details: str
    prev_hash: str
    actor_person_id: str | None
    key_id: str | None
    hash: str


def rows(engine_or_session: Engine | Session) -> list[Ev]:
    """Every event as typed values, in chain order."""
    statement = select(*(col(getattr(AuditEvent, name)) for name in Ev._fields)).order_by(
        col(AuditEvent.seq)
    )
    if isinstance(engine_or_session, Session):
        return [Ev(*row) for row in engine_or_session.execute(statement)]
    with engine_or_session.connect() as conn:
        return [Ev(*row) for row in conn.execute(statement)]


def build_chain(engine: Engine, count: int = 10) -> list[AuditEvent]:
    """`count` events, one committed transaction each, as the service writes them; the events
    as chained (read back: a unit of work chains its events when it commits)."""
    for i in range(1, count + 1):
        with unit_of_work(engine) as session:
            audit.append(
                session,
                "test.event",
                actor=STAFF,
                target_type="purpose",
                target_id=i,
                purpose_id=i % 3 or None,
                details={"i": i, "codes": ["gate.ok"]},
            )
    with Session(engine) as session:
        return list(session.scalars(select(AuditEvent).order_by(col(AuditEvent.seq))).all())


def execute(engine: Engine, *statements: str | Any, **params: Any) -> None:
    """Tamper with the tables directly, as someone with database access would."""
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement) if isinstance(statement, str) else statement, params)


def hash_at(engine: Engine, seq: int) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                text("SELECT hash FROM core_audit_event WHERE seq = :s"), {"s": seq}
            ).scalar_one()
        )
