"""The migrations build the models' schema exactly, on SQLite and on PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

import main


def test_upgrade_head_matches_the_models(fresh_engine: Engine) -> None:
    with fresh_engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True}
        )
        differences = compare_metadata(context, main.all_metadata())
    assert differences == [], f"models and migrations differ: {differences}"


def test_every_table_is_prefixed_by_its_package(fresh_engine: Engine) -> None:
    prefixes = (
        "core_",
        "governance_",
        "consent_",
        "registry_",
        "pia_",
        "linkage_",
        "scoring_",
        "portal_",
    )
    tables = set(inspect(fresh_engine).get_table_names()) - {"alembic_version"}
    assert tables, "no tables were created"
    assert all(name.startswith(prefixes) for name in tables), sorted(tables)


def test_column_collations_match_the_models(fresh_engine: Engine) -> None:
    # compare_type does not look at collations; on PostgreSQL the token ids rely on "C".
    dialect = fresh_engine.dialect
    reflected = inspect(fresh_engine)
    expected: dict[tuple[str, str], str | None] = {}
    for table in main.all_metadata().tables.values():
        for column in table.columns:
            collation = getattr(column.type.dialect_impl(dialect), "collation", None)
            if collation is not None:
                expected[(table.name, column.name)] = collation
    if dialect.name == "postgresql":
        assert ("consent_person", "id") in expected
    found = {
        (table, column["name"]): getattr(column["type"], "collation", None)
        for table in {name for name, _ in expected}
        for column in reflected.get_columns(table)
        if (table, column["name"]) in expected
    }
    assert found == expected
