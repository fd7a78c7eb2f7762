"""Database helpers: the temporary table built from a query, and UTC moments on both backends."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Table,
    column,
    create_engine,
    event,
    func,
    literal,
    select,
    table,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import CompileError, StatementError
from sqlalchemy.pool import NullPool
from sqlmodel import Session
from sqlmodel import select as sqlmodel_select

from consent.models import Relation
from core import db as core_db
from core.clock import TOKYO
from core.db import TemporaryTableAs, UtcDateTime, get_by, is_postgres
from core.models import Organ, Role, RoleGrant, StaffAccount
from core.reasons import NotFound

HOSTILE = "b'; DROP TABLE consent_person; --"


def test_a_temporary_table_binds_the_query_values_and_goes_at_commit(engine: Engine) -> None:
    query = select(literal(Relation.self_).label("relation"), literal(HOSTILE).label("text"))
    with Session(engine) as session:
        if not is_postgres(session):
            with pytest.raises(CompileError):
                session.execute(TemporaryTableAs("staged_values", query))
            return
        sent: list[tuple[str, Any]] = []

        def record(_conn: Any, _cursor: Any, statement: str, parameters: Any,
                   _context: Any, _executemany: bool) -> None:
            sent.append((statement, parameters))

        event.listen(engine, "before_cursor_execute", record)
        try:
            session.execute(TemporaryTableAs("staged_values", query))
        finally:
            event.remove(engine, "before_cursor_execute", record)
        [(statement, parameters)] = sent
        assert statement.startswith("CREATE TEMPORARY TABLE staged_values ON COMMIT DROP AS ")
        # The values travel as bound parameters, never inlined in the statement's text.
        assert HOSTILE not in statement and "DROP TABLE" not in statement
        assert HOSTILE in parameters.values() and "self" in parameters.values()
        staged = table("staged_values", column("relation"), column("text"))
        row = session.execute(select(staged.c.relation, staged.c.text)).one()
        assert tuple(row) == ("self", HOSTILE)
        session.commit()
        assert session.execute(select(func.to_regclass("pg_temp.staged_values"))).scalar() is None
        # The session goes on after the commit, and the table the value names is still there.
        assert session.execute(select(func.to_regclass("consent_person"))).scalar() is not None



_probe = Table("probe_utc", MetaData(), Column("id", Integer, primary_key=True),
               Column("at", UtcDateTime(), nullable=True))
_moments = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2999, 12, 31),
                        timezones=st.sampled_from([UTC, TOKYO, timezone(timedelta(hours=-11))]))


def _round_trip(engine: Engine, moment: datetime) -> datetime:
    """Write and read one moment in a transaction that is rolled back, table and all."""
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            _probe.create(connection)
            connection.execute(_probe.insert().values(id=1, at=moment))
            back: datetime = connection.execute(select(_probe.c.at)).scalar_one()
            return back
        finally:
            transaction.rollback()


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(moment=_moments)
def test_a_stored_moment_comes_back_aware_in_utc_and_equal(engine: Engine,
                                                           moment: datetime) -> None:
    back = _round_trip(engine, moment)
    assert back.tzinfo is UTC and back == moment


def test_a_model_column_reads_back_aware_in_utc(db: Session) -> None:
    tokyo_noon = datetime(2026, 4, 1, 12, 0, tzinfo=TOKYO)
    account = db.exec(sqlmodel_select(StaffAccount)).first()
    organ = db.exec(sqlmodel_select(Organ)).first()
    assert account is not None and account.id is not None and organ is not None
    assert organ.id is not None and account.created_at.tzinfo is UTC
    grant = RoleGrant(account_id=account.id, role=Role.auditor, organ_id=organ.id,
                      granted_at=tokyo_noon)
    db.add(grant)
    db.flush()
    db.expire(grant)
    assert grant.granted_at.tzinfo is UTC and grant.granted_at == tokyo_noon


def test_a_naive_moment_is_refused_on_write(engine: Engine) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        _round_trip(engine, datetime(2026, 4, 1, 3, 0))


def test_get_by_finds_the_row_or_names_what_was_missing(db: Session) -> None:
    mayor = get_by(db, Organ, "core.unknown_organ", field="organ", key="mayor")
    assert mayor.key == "mayor" and mayor.id is not None
    assert get_by(db, Organ, "core.unknown_organ", id=mayor.id) is mayor  # identity map
    with pytest.raises(NotFound) as missing:
        get_by(db, Organ, "core.unknown_organ", field="organ", key="nowhere")
    reason = missing.value.reasons[0]
    assert (reason.code, reason.field) == ("core.unknown_organ", "organ")
    assert "nowhere" in reason.message_ja and "nowhere" in reason.message_en
    with pytest.raises(NotFound) as by_id:
        get_by(db, Organ, "core.unknown_organ", params={"key": "#0"}, id=0)
    assert "#0" in by_id.value.reasons[0].message_en and by_id.value.reasons[0].field is None
    with pytest.raises(NotFound):  # every column must match
        get_by(db, Organ, "core.unknown_organ", key="mayor", municipality_id=-1)


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_pooled_connection_that_died_while_idle_is_replaced(
    fresh_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No ping on every checkout (a round trip per transaction): only after an idle spell.
    monkeypatch.setattr(core_db, "PING_AFTER_IDLE_SECONDS", 0.0)
    with fresh_engine.connect() as conn:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    other = create_engine(fresh_engine.url, poolclass=NullPool)
    with other.connect() as killer:
        killer.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
    other.dispose()
    with fresh_engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() != pid


def test_sqlite_writers_of_one_process_take_turns_in_arrival_order() -> None:
    turns = core_db.WriteTurns()
    first = object()
    assert turns.acquire(first, timeout=1)
    order: list[int] = []

    def writer(number: int, connection: object) -> None:
        assert turns.acquire(connection, timeout=30)
        order.append(number)
        turns.release(connection)

    threads = []
    for number in range(5):
        thread = threading.Thread(target=writer, args=(number, object()))
        thread.start()
        threads.append(thread)
        while len(turns._queue) < number + 1:  # queued before the next one arrives
            time.sleep(0.001)
    turns.release(first)
    for thread in threads:
        thread.join()
    assert order == [0, 1, 2, 3, 4]
    assert turns._holder is None


def test_a_sqlite_writer_that_waits_too_long_leaves_the_queue() -> None:
    turns = core_db.WriteTurns()
    holder, late = object(), object()
    assert turns.acquire(holder, timeout=1)
    answers: list[bool] = []

    def wait_for_a_turn() -> None:  # another thread: one thread never queues behind itself
        answers.append(turns.acquire(late, timeout=0.01))

    thread = threading.Thread(target=wait_for_a_turn)
    thread.start()
    thread.join()
    assert answers == [False]
    assert not turns._queue
    turns.release(holder)
    assert turns.acquire(late, timeout=0.01)
