"""The migration to structured Art. 69(4) limits converts free text safely, on both backends."""

from __future__ import annotations

import json

from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.cli import alembic_config
from core.db import unit_of_work
from main import DEMO_LOADERS

BEFORE = "a7d1c3e5f902"  # the revision before export scope and access limits


def test_free_text_limits_are_converted_or_kept_as_a_note(fresh_engine: Engine) -> None:
    with unit_of_work(fresh_engine) as session:
        for loader in DEMO_LOADERS:
            loader(session)
    url = fresh_engine.url.render_as_string(hide_password=False)
    command.downgrade(alembic_config(url), BEFORE)
    with fresh_engine.begin() as connection:
        # the demo's structured limit came back as text on the way down
        assert connection.execute(text(
            "SELECT access_limited_to FROM governance_authorisation WHERE key = "
            "'abuse.mayor_internal.2026'")).scalar_one() == "child_family、digital"
        connection.execute(text(
            "UPDATE governance_authorisation SET access_limited_to = :t WHERE key = :k"),
            [{"t": "digital、child_family analyst", "k": "abuse.mayor_internal.2026"},
             {"t": "企画部デジタル推進課の指名職員", "k": "abuse.boe_provision.2026"}])
    command.upgrade(alembic_config(url), "head")
    with fresh_engine.connect() as connection:
        rows = {key: (json.loads(limits), note) for key, limits, note in connection.execute(text(
            "SELECT key, access_limits, access_limit_note FROM governance_authorisation"))}
        opened = set(connection.execute(text(
            "SELECT identified_for FROM governance_purpose_item")).scalars())
    assert rows["abuse.mayor_internal.2026"] == (
        {"organs": [], "departments": ["child_family", "digital"], "roles": ["analyst"]}, "")
    assert rows["abuse.boe_provision.2026"] == (
        {"organs": [], "departments": [], "roles": []}, "企画部デジタル推進課の指名職員")
    assert opened == {"holding"}  # items from before: only their holder receives them identified
