"""Database helpers: the temporary table built from a query (PostgreSQL only)."""

from __future__ import annotations

import pytest
from sqlalchemy import column, func, literal, select, table
from sqlalchemy.engine import Engine
from sqlalchemy.exc import CompileError
from sqlmodel import Session

from consent.models import Person, Relation
from core.db import TemporaryTableAs, is_postgres


def test_a_temporary_table_binds_the_query_values_and_goes_at_commit(engine: Engine) -> None:
    query = select(literal(Relation.self_).label("relation"),
                   literal("b'; DROP TABLE consent_person; --").label("text"))
    with Session(engine) as session:
        if not is_postgres(session):
            with pytest.raises(CompileError):
                session.execute(TemporaryTableAs("staged_values", query))
            return
        session.execute(TemporaryTableAs("staged_values", query))
        staged = table("staged_values", column("relation"), column("text"))
        row = session.execute(select(staged.c.relation, staged.c.text)).one()
        assert tuple(row) == ("self", "b'; DROP TABLE consent_person; --")
        session.commit()
        assert session.execute(select(func.to_regclass("pg_temp.staged_values"))).scalar() is None
        assert session.execute(select(func.count()).select_from(Person)).scalar() is not None
