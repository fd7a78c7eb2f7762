"""An upgrade never makes an approved PIA stale: a database from before the design formats, with
approved PIAs whose hashes the service of that time computed, is migrated and every PIA stays
usable (each is compared with the design in the format it approved)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from alembic import command
from sqlalchemy import Boolean, DateTime, Integer, MetaData, Table, create_engine
from sqlalchemy.engine import Connection
from sqlmodel import Session, select

from core.cli import alembic_config
from tests.databases import drop_postgres_database, new_database_url

BEFORE = "a7d1c3e5f902"  # the head before job kinds and design formats
NOW = datetime(2026, 11, 30, tzinfo=UTC)
# The design hashes the service computed before this upgrade (governance.design.design_hash of
# design_of at revision BEFORE, over the records `seed` writes). Purpose "upg_b" had a draft
# route when its PIA was approved: the design of that time took drafts in.
HASHES_BEFORE = {
    "upg_a": "cdbf514aaad33c889456f393632f627bd9e67b9c0d9fc7dfbb9aebc9d224d869",
    "upg_b": "fa4675f19b1618d8fe47f91e2d5682fc6f27551f08adb44bd46ace1844eefcf4",
}


def _insert(conn: Connection, table_name: str, **values: Any) -> int:
    """A row with the given values; other required columns get empty values of their type."""
    table = Table(table_name, MetaData(), autoload_with=conn)
    row = dict(values)
    for column in table.columns:
        if column.name in row or column.nullable or column.primary_key:
            continue
        if column.server_default is not None:
            continue
        if isinstance(column.type, Boolean):
            row[column.name] = False
        elif isinstance(column.type, Integer):
            row[column.name] = 1 if column.name == "version" else 0
        elif isinstance(column.type, DateTime):
            row[column.name] = NOW
        else:
            row[column.name] = ""
    result = conn.execute(table.insert().values(**row))
    key = result.inserted_primary_key
    return int(key[0]) if key and key[0] is not None else 0


def seed(conn: Connection) -> dict[str, int]:
    """Two approved purposes with routes, in the schema of revision BEFORE (no PIA yet)."""
    city = _insert(conn, "core_municipality", key="upg", code="999999", name_ja="試験市",
                   name_en="Test City")
    mayor = _insert(conn, "core_organ", key="mayor", municipality_id=city, kind="mayor",
                    name_ja="試験市長", name_en="Mayor")
    board = _insert(conn, "core_organ", key="board_of_education", municipality_id=city,
                    kind="board_of_education", name_ja="試験市教育委員会", name_en="Board")
    file = _insert(conn, "registry_file", key="upg.file", name="出欠ファイル", organ_id=board,
                   purpose="就学事務", persons_count=100)
    absent = _insert(conn, "registry_item", key="upg.absent", file_id=file, name_ja="欠席日数",
                     data_type="number", category="education", status="active")
    late = _insert(conn, "registry_item", key="upg.late", file_id=file, name_ja="遅刻回数",
                   data_type="number", category="education", status="active")
    ids = {}
    for key, draft in (("upg_a", False), ("upg_b", True)):
        purpose = _insert(
            conn, "governance_purpose", key=key, version=1, status="approved",
            title_ja=f"試験 {key}", purpose_text="支援につなげる", necessity="必要",
            acquisition_method="reuse", handling_logic="確認リスト", safeguards="{}",
            public_notice="{}", subjects_rule='{"max_age":17,"min_age":6}')
        ids[key] = purpose
        for organ, role in ((mayor, "overall"), (board, "holding"), (mayor, "analysis"),
                            (mayor, "use")):
            _insert(conn, "governance_purpose_subject", purpose_id=purpose, organ_id=organ,
                    role=role)
        for item in (absent, late):
            _insert(conn, "governance_purpose_item", purpose_id=purpose, item_id=item,
                    necessity_reason="必要", relevance_to_difficulty="関連")
        route = _insert(conn, "governance_route", key=f"{key}.within", purpose_id=purpose,
                        from_organ_id=board, to_organ_id=mayor, basis="law",
                        recurrence="recurring", kind="69-1-law", status="approved",
                        law_citation="学校教育法第18条")
        _insert(conn, "governance_flow", route_id=route, item_id=absent)
        if draft:
            pending = _insert(conn, "governance_route", key=f"{key}.draft", purpose_id=purpose,
                              from_organ_id=board, to_organ_id=mayor, basis="consent",
                              recurrence="one_off", kind="69-2-1", status="draft")
            _insert(conn, "governance_flow", route_id=pending, item_id=late)
    return ids


def approve_pias(conn: Connection, ids: dict[str, int], hashes: dict[str, str]) -> None:
    for key, purpose in ids.items():
        _insert(conn, "pia_assessment", purpose_id=purpose, status="approved", version=3,
                snapshot="{}", design_hash=hashes[key], purpose_key=key, level="basic",
                threshold="{}", form="{}", residual_accepted=True, approved_at=NOW,
                next_review_due=NOW + timedelta(days=3650))


def test_every_approved_pia_stays_usable_after_the_upgrade(backend: str) -> None:
    from governance import assessment, gate, purposes
    from governance.design import design_of
    from governance.models import Purpose

    url = new_database_url(backend)
    try:
        command.upgrade(alembic_config(url), BEFORE)
        engine = create_engine(url)
        with engine.begin() as conn:
            approve_pias(conn, seed(conn), HASHES_BEFORE)
        engine.dispose()
        command.upgrade(alembic_config(url), "head")
        engine = create_engine(url)
        with Session(engine) as session:
            found = list(session.exec(select(Purpose).order_by(Purpose.key)))
            assert [p.key for p in found] == ["upg_a", "upg_b"]
            for purpose in found:
                status = assessment.pia_status(session, purpose, NOW)
                assert status.usable, (purpose.key, [r.code for r in status.reasons])
                # Existing purposes keep every job kind they could run before.
                assert design_of(session, purpose)["job_kinds"] == [
                    "export", "linkage", "scoring", "statistics"]
                usable = gate.usability(session, purposes.get_purpose(session, purpose.key),
                                        NOW)
                codes = {r.code for k in usable.kinds for r in k.reasons}
                assert not codes & {"pia.design_changed", "pia.not_approved"}, codes
        engine.dispose()
    finally:
        if backend == "postgres":
            drop_postgres_database(url)
