"""Database helpers: the temporary table built from a query (PostgreSQL only)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import column, event, func, literal, select, table
from sqlalchemy.engine import Engine
from sqlalchemy.exc import CompileError
from sqlmodel import Session

from consent.models import Relation
from core.db import TemporaryTableAs, is_postgres

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
