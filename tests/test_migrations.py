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
