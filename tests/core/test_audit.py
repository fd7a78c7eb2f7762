"""The audit chain: links and hashes, the caller's transaction, tampering, checkpoints,
`kodomo audit verify`, parallel writers and the auditor's API."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col
from typer.testing import CliRunner

from core import audit, service
from core.db import unit_of_work
from core.keys import get_keyring
from core.models import AuditCheckpoint, AuditEvent, Municipality
from core.settings import get_settings
from main import cli
from tests.audit_chain import STAFF, Ev, build_chain, execute, hash_at, rows
from tests.databases import (
    drop_postgres_database,
    migrate,
    new_database_url,
    skip_or_fail_without_postgres,
)
from tests.web import api_token, bearer, console_sign_in, csrf_from

# ---------------------------------------------------------------- helpers


def recompute(row: Ev) -> str:
    return audit.event_hash(
        row.seq,
        row.occurred_at,
        row.actor_type,
        row.actor_id,
        row.role,
        row.organ_id,
        row.action,
        row.target_type,
        row.target_id,
        row.purpose_id,
        row.decision_id,
        row.details,
        row.prev_hash,
        row.actor_person_id,
        row.key_id,
        key=None if row.key_id is None else get_keyring().audit_chain_key(row.key_id),
    )


def reference_hash(row: Ev) -> str:
    """The canonical form as first written: json.dumps of the parsed columns (form v1), with
    the person id and key id appended and an HMAC under the chain key in form v2."""
    moment = row.occurred_at if row.occurred_at.tzinfo else row.occurred_at.replace(tzinfo=UTC)
    payload = json.dumps(
        [
            row.seq,
            moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            row.actor_type,
            row.actor_id,
            row.role,
            row.organ_id,
            row.action,
            row.target_type,
            row.target_id,
            row.purpose_id,
            row.decision_id,
            json.loads(row.details),
            row.prev_hash,
        ]
        + ([] if row.key_id is None and row.actor_person_id is None
           else [row.actor_person_id, row.key_id]),
        ensure_ascii=False,
        separators=(",", ":"),
    )
    if row.key_id is None:
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()
    key = get_keyring().audit_chain_key(row.key_id)
    return hmac.new(key, payload.encode("utf-8"), "sha256").hexdigest()


def verify(engine: Engine) -> audit.VerifyReport:
    with engine.connect() as conn:
        return audit.verify(conn, audit.public_keys())


@pytest.fixture
def checkpoint_every() -> Iterator[Callable[[int], None]]:
    """Set audit.configure(checkpoint_every=N) for one test and restore it afterwards."""
    previous = audit._checkpoint_every

    def configure(every: int) -> None:
        audit.configure(checkpoint_every=every)

    yield configure
    audit.configure(checkpoint_every=previous)


# ---------------------------------------------------------------- append


def test_append_links_and_hashes(db: Session) -> None:
    head_seq, head_hash, _key = audit._head(db)
    first = audit.append(
        db, "test.first", actor=STAFF, target_type="organ", target_id=7, details={"key": "mayor"}
    )
    second = audit.append(db, "test.second", purpose_id=5, decision_id="d-1")
    third = audit.append(db, "test.third", details={"nested": {"b": [1, 2.5], "a": None}})

    assert (first.seq, second.seq, third.seq) == (head_seq + 1, head_seq + 2, head_seq + 3)
    assert first.prev_hash == head_hash
    assert second.prev_hash == first.hash
    assert third.prev_hash == second.hash
    assert first.target_id == "7"  # ids are stored as text
    assert third.details == '{"nested":{"a":null,"b":[1,2.5]}}'  # canonical: sorted, compact
    assert second.actor_type == "system" and second.actor_id is None

    stored = {row.seq: row for row in rows(db)}
    for event in (first, second, third):
        row = stored[event.seq]
        assert row.hash == event.hash
        assert recompute(row) == event.hash
        assert reference_hash(row) == event.hash
    assert len({row.hash for row in stored.values()}) == len(stored)


def test_event_lands_or_disappears_with_the_callers_transaction(fresh_engine: Engine) -> None:
    with pytest.raises(RuntimeError), unit_of_work(fresh_engine) as session:
        service.create_municipality(
            session, STAFF, key="rolled", code="990001", name_ja="巻き戻し市", name_en="Rolled back"
        )
        # Chained when the unit of work commits (the chain's lock is held from there only).
        assert audit._head(session)[0] == 0
        raise RuntimeError("the change fails after its event was written")
    with Session(fresh_engine) as session:
        assert session.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == 0
        assert session.execute(select(func.count()).select_from(Municipality)).scalar_one() == 0

    with unit_of_work(fresh_engine) as session:
        service.create_municipality(
            session, STAFF, key="kept", code="990001", name_ja="確定市", name_en="Committed"
        )
    [event] = rows(fresh_engine)
    assert (event.seq, event.action, event.prev_hash) == (
        1,
        "core.municipality_created",
        audit.GENESIS_HASH,
    )
    assert verify(fresh_engine).ok


@pytest.mark.parametrize(
    ("details", "error"),
    [
        ({"note": "山田太郎さんの相談内容" * 20}, ValueError),  # long free text
        ({"nested": {"list": ["x" * 201]}}, ValueError),
        ({"x" * 201: 1}, ValueError),  # a long key is free text too
        ({"at": datetime(2026, 4, 1, tzinfo=UTC)}, TypeError),
        ({"raw": b"bytes"}, TypeError),
        ({"ids": {1, 2}}, TypeError),
        ({"obj": object()}, TypeError),
        ({1: "non-string key"}, TypeError),
        ({"ratio": float("nan")}, ValueError),
        ({"ratio": float("inf")}, ValueError),
        ({"bad": "\ud800"}, ValueError),  # a lone surrogate is not UTF-8
    ],
)
def test_details_refuse_free_text_and_non_json(
    db: Session, details: Any, error: type[Exception]
) -> None:
    before = audit._head(db)
    with pytest.raises(error):
        audit.append(db, "test.refused", details=details)
    assert audit._head(db) == before


def test_details_accept_ids_and_codes() -> None:
    text_ = audit.canonical_details({"z": [1, True, None, 0.5], "a": "gate.ok", "b": {"y": 1}})
    assert text_ == '{"a":"gate.ok","b":{"y":1},"z":[1,true,null,0.5]}'
    assert audit.canonical_details(None) == "{}"
    assert audit.canonical_details({"code": "x" * 200}) == '{"code":"' + "x" * 200 + '"}'


# ---------------------------------------------------------------- one hash on every backend


@pytest.fixture
def both_engines() -> Iterator[dict[str, Engine]]:
    """An empty, migrated SQLite and PostgreSQL database side by side."""
    skip_or_fail_without_postgres()
    urls = {backend: new_database_url(backend) for backend in ("sqlite", "postgres")}
    engines = {backend: migrate(url) for backend, url in urls.items()}
    try:
        yield engines
    finally:
        for engine in engines.values():
            engine.dispose()
        drop_postgres_database(urls["postgres"])


# Tokyo time on purpose: the hash uses UTC whatever zone the caller used.
FIXED_AT = datetime(2026, 4, 1, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=9)))
FIXED_DETAILS = {
    "codes": ["gate.ok", "consent.本人同意"],
    "quote": 'a"b\\c/\n\t',
    "ratio": 0.1,
    "big": 2**53 + 1,
    "none": None,
    "flag": False,
    "emoji": "😀",
    "nested": {"z": 1, "a": [{"k": "v"}]},
}
# The canonical form is a contract: a change here means old chains no longer verify.
FIXED_HASHES = {
    1: "f2be4a76ac0b62012f5abf0b58e59835e29bd2aef94834ce0131690a789991c5",
    2: "837a500005061d8e4c620fdb351fad541454dc1eda494cffb578f5f354c7d1e9",
}
# Form v2, keyed: HMAC-SHA256 under the chain key below.
FIXED_CHAIN_KEY = ("ck-fixed", bytes(range(32)))
FIXED_KEYED_HASHES = {
    1: "adedc890be59af99ced23329afaea720f80c2855d91725e33ca71cbb69ebd835",
    2: "534381a0ba911bdd61673fbadd65db98b142929a4425347916714c735f009cd9",
}


@pytest.mark.parametrize("keyed", [False, True], ids=["v1 unkeyed", "v2 keyed"])
def test_same_event_hashes_alike_on_sqlite_and_postgres(
    both_engines: dict[str, Engine], keyed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    kid, key = FIXED_CHAIN_KEY
    ring = dataclasses.replace(
        get_keyring(),
        audit_chain_keys={kid: key} if keyed else {},
        active_audit_chain_key=kid if keyed else None,
    )
    monkeypatch.setattr(audit, "get_keyring", lambda: ring)
    monkeypatch.setattr(sys.modules[__name__], "get_keyring", lambda: ring)
    written: dict[str, list[audit.AppendedEvent]] = {}
    read_back: dict[str, list[Ev]] = {}
    for backend, engine in both_engines.items():
        with unit_of_work(engine) as session:
            written[backend] = [
                audit.append(
                    session,
                    "gate.decided",
                    actor=STAFF,
                    target_type="purpose",
                    target_id="17",
                    purpose_id=17,
                    decision_id="d-0001",
                    details=FIXED_DETAILS,
                    at=FIXED_AT,
                ),
                audit.append(
                    session,
                    "core.sign_in_failed",
                    details={"reason": "unknown_login"},
                    at=FIXED_AT + timedelta(microseconds=1),
                ),
            ]
        read_back[backend] = rows(engine)
        assert verify(engine).ok

    # Chained at commit (a core.db unit of work): the copies returned wait for their seq.
    assert all(event.seq == 0 for events in written.values() for event in events)
    sqlite_hashes = [row.hash for row in read_back["sqlite"]]
    postgres_hashes = [row.hash for row in read_back["postgres"]]
    assert sqlite_hashes == postgres_hashes
    for backend in both_engines:
        # What each backend gives back hashes to the same value, by the documented form too.
        assert [recompute(row) for row in read_back[backend]] == sqlite_hashes
        assert [reference_hash(row) for row in read_back[backend]] == sqlite_hashes
    assert dict(enumerate(sqlite_hashes, start=1)) == (
        FIXED_KEYED_HASHES if keyed else FIXED_HASHES
    )


def test_event_hash_is_the_documented_canonical_json() -> None:
    moment = datetime(2026, 4, 1, 0, 0, 0, 5, tzinfo=UTC)
    details = audit.canonical_details({"k": '監査 "x"', "n": [1, None]})
    digest = audit.event_hash(
        3,
        moment,
        "staff",
        1,
        "auditor",
        2,
        "core.audit_read",
        None,
        None,
        None,
        None,
        details,
        "ab" * 32,
    )
    payload = (
        '[3,"2026-04-01T00:00:00.000005Z","staff",1,"auditor",2,"core.audit_read",'
        'null,null,null,null,{"k":"監査 \\"x\\"","n":[1,null]},"' + "ab" * 32 + '"]'
    )
    assert digest == hashlib.sha256(payload.encode("utf-8")).hexdigest()
    # Naive values (as SQLite returns them) are UTC; aware ones are converted to UTC.
    tokyo = moment.astimezone(timezone(timedelta(hours=9)))
    naive = moment.replace(tzinfo=None)
    for same in (tokyo, naive):
        assert (
            audit.event_hash(
                3,
                same,
                "staff",
                1,
                "auditor",
                2,
                "core.audit_read",
                None,
                None,
                None,
                None,
                details,
                "ab" * 32,
            )
            == digest
        )


# ---------------------------------------------------------------- verify and tampering


def test_verify_ok_on_an_intact_chain(fresh_engine: Engine) -> None:
    assert verify(fresh_engine).ok  # empty chain
    build_chain(fresh_engine, 10)
    with unit_of_work(fresh_engine) as session:
        checkpoint = audit.checkpoint_now(session)
    assert checkpoint is not None and checkpoint.seq == 10
    report = verify(fresh_engine)
    assert (report.ok, report.events, report.checkpoints, report.problem) == (True, 10, 1, None)


def _edit_action(engine: Engine) -> None:
    execute(engine, "UPDATE core_audit_event SET action = 'core.forged' WHERE seq = 4")


def _edit_details(engine: Engine) -> None:
    execute(
        engine, "UPDATE core_audit_event SET details = :d WHERE seq = 5", d='{"codes":[],"i":5}'
    )


def _edit_details_spacing(engine: Engine) -> None:
    # Same JSON value, other bytes: still an edit of the row.
    execute(
        engine,
        "UPDATE core_audit_event SET details = :d WHERE seq = 5",
        d='{"codes": ["gate.ok"], "i": 5}',
    )


def _edit_time(engine: Engine) -> None:
    execute(
        engine,
        update(AuditEvent.__table__)  # type: ignore[attr-defined]
        .where(text("seq = 6"))
        .values(occurred_at=datetime(2020, 1, 1, tzinfo=UTC)),
    )


def _edit_actor_id_to_null(engine: Engine) -> None:
    execute(engine, "UPDATE core_audit_event SET actor_id = NULL WHERE seq = 2")


def _edit_and_rehash_one_row(engine: Engine) -> None:
    [row] = [r for r in rows(engine) if r.seq == 3]
    forged = row._replace(action="core.forged")
    execute(
        engine,
        "UPDATE core_audit_event SET action = 'core.forged', hash = :h WHERE seq = 3",
        h=recompute(forged),
    )


def _rewrite_tail_with_correct_hashes(engine: Engine) -> None:
    # Whoever rewrites the chain from seq 3 on can make every link fit: only the signed
    # checkpoint at seq 10 still tells.
    prev_hash = hash_at(engine, 2)
    for row in [r for r in rows(engine) if r.seq >= 3]:
        forged = row._replace(action="core.forged", prev_hash=prev_hash)
        digest = recompute(forged)
        execute(
            engine,
            "UPDATE core_audit_event SET action = 'core.forged', prev_hash = :p, "
            "hash = :h WHERE seq = :s",
            p=prev_hash,
            h=digest,
            s=row.seq,
        )
        prev_hash = digest


def _delete_middle(engine: Engine) -> None:
    execute(engine, "DELETE FROM core_audit_event WHERE seq = 5")


def _delete_middle_and_renumber(engine: Engine) -> None:
    execute(
        engine,
        "DELETE FROM core_audit_event WHERE seq = 5",
        "UPDATE core_audit_event SET seq = seq + 1000 WHERE seq > 5",
        "UPDATE core_audit_event SET seq = seq - 1001 WHERE seq > 1000",
    )


def _insert_middle(engine: Engine) -> None:
    # A correctly hashed event slipped in after seq 4, the later events moved up by one.
    prev_hash = hash_at(engine, 4)
    [row] = [r for r in rows(engine) if r.seq == 4]
    forged = row._replace(seq=5, action="core.forged", prev_hash=prev_hash)
    execute(
        engine,
        "UPDATE core_audit_event SET seq = seq + 1000 WHERE seq >= 5",
        "UPDATE core_audit_event SET seq = seq - 999 WHERE seq > 1000",
    )
    with engine.begin() as conn:
        conn.execute(
            AuditEvent.__table__.insert(),  # type: ignore[attr-defined]
            {**forged._asdict(), "hash": recompute(forged)},
        )


def _swap_rows(engine: Engine) -> None:
    execute(
        engine,
        "UPDATE core_audit_event SET seq = -3 WHERE seq = 3",
        "UPDATE core_audit_event SET seq = 3 WHERE seq = 4",
        "UPDATE core_audit_event SET seq = 4 WHERE seq = -3",
    )


def _delete_tail(engine: Engine) -> None:
    execute(engine, "DELETE FROM core_audit_event WHERE seq = 10")


def _forge_signature(engine: Engine) -> None:
    # Signed with someone else's key but claiming the service's key id.
    forger = Ed25519PrivateKey.generate()
    signature = forger.sign(audit.checkpoint_message(10, hash_at(engine, 10)))
    execute(
        engine,
        "UPDATE core_audit_checkpoint SET signature = :s WHERE seq = 10",
        s=base64.b64encode(signature).decode("ascii"),
    )


def _garble_signature(engine: Engine) -> None:
    execute(engine, "UPDATE core_audit_checkpoint SET signature = 'not base64!' WHERE seq = 10")


def _move_checkpoint_hash(engine: Engine) -> None:
    execute(
        engine, "UPDATE core_audit_checkpoint SET hash = :h WHERE seq = 10", h=hash_at(engine, 9)
    )


def _unknown_key(engine: Engine) -> None:
    forger = Ed25519PrivateKey.generate()
    signature = forger.sign(audit.checkpoint_message(10, hash_at(engine, 10)))
    execute(
        engine,
        "UPDATE core_audit_checkpoint SET key_id = 'ak-20260101-deadbeef', "
        "signature = :s WHERE seq = 10",
        s=base64.b64encode(signature).decode("ascii"),
    )


TAMPERING = [
    # name, tamper, code, seq named
    ("edited action", _edit_action, "audit.hash_mismatch", 4),
    ("edited details", _edit_details, "audit.hash_mismatch", 5),
    ("edited details spacing", _edit_details_spacing, "audit.hash_mismatch", 5),
    ("edited time", _edit_time, "audit.hash_mismatch", 6),
    ("edited actor id", _edit_actor_id_to_null, "audit.hash_mismatch", 2),
    ("edited and re-hashed row", _edit_and_rehash_one_row, "audit.broken_link", 4),
    ("rewritten tail", _rewrite_tail_with_correct_hashes, "audit.checkpoint_mismatch", 10),
    ("deleted middle row", _delete_middle, "audit.sequence_gap", 6),
    ("deleted and renumbered", _delete_middle_and_renumber, "audit.broken_link", 5),
    ("inserted row", _insert_middle, "audit.broken_link", 6),
    ("swapped rows", _swap_rows, "audit.broken_link", 3),
    ("deleted tail under checkpoint", _delete_tail, "audit.truncated", 9),
    ("forged signature", _forge_signature, "audit.checkpoint_bad_signature", 10),
    ("garbled signature", _garble_signature, "audit.checkpoint_bad_signature", 10),
    ("checkpoint moved", _move_checkpoint_hash, "audit.checkpoint_bad_signature", 10),
    ("unknown key id", _unknown_key, "audit.checkpoint_unknown_key", 10),
]


@pytest.mark.parametrize(
    ("tamper", "code", "seq"), [case[1:] for case in TAMPERING], ids=[case[0] for case in TAMPERING]
)
def test_verify_names_the_first_broken_link(
    fresh_engine: Engine, tamper: Callable[[Engine], None], code: str, seq: int
) -> None:
    build_chain(fresh_engine, 10)
    with unit_of_work(fresh_engine) as session:
        audit.checkpoint_now(session)
    assert verify(fresh_engine).ok

    tamper(fresh_engine)

    report = verify(fresh_engine)
    assert not report.ok
    assert report.problem is not None
    assert (report.problem.code, report.problem.seq) == (code, seq)
    assert str(seq) in report.problem.message_en and str(seq) in report.problem.message_ja


def _verify_in(engine: Engine, workers: int) -> audit.VerifyReport:
    with engine.connect() as conn:
        return audit.verify(conn, audit.public_keys(), workers=workers, parallel_from=0)


@pytest.mark.parametrize(
    ("tamper", "code", "seq"), [case[1:] for case in TAMPERING], ids=[case[0] for case in TAMPERING]
)
def test_verify_in_segments_reports_what_one_walk_reports(
    fresh_engine: Engine, tamper: Callable[[Engine], None], code: str, seq: int
) -> None:
    # Three segments of 10 events meet after events 3 and 6: tampering at and across a seam
    # must be named exactly as one walk from the start names it.
    build_chain(fresh_engine, 10)
    with unit_of_work(fresh_engine) as session:
        audit.checkpoint_now(session)
    intact = _verify_in(fresh_engine, 3)
    assert (intact.ok, intact.events, intact.checkpoints) == (True, 10, 1)

    tamper(fresh_engine)

    in_segments = _verify_in(fresh_engine, 3)
    assert in_segments == _verify_in(fresh_engine, 1)
    assert in_segments.problem is not None
    assert (in_segments.problem.code, in_segments.problem.seq) == (code, seq)


def test_verify_walks_a_failed_workers_segment_itself(
    fresh_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_chain(fresh_engine, 10)
    execute(fresh_engine, "UPDATE core_audit_event SET action = 'x' WHERE seq = 8")

    def failing(job: dict[str, Any]) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"],
                                stdout=subprocess.PIPE)

    monkeypatch.setattr(audit, "_start_segment", failing)
    problem = _verify_in(fresh_engine, 2).problem
    assert problem is not None
    assert (problem.code, problem.seq) == ("audit.hash_mismatch", 8)


def test_truncation_names_the_checkpoint(fresh_engine: Engine) -> None:
    build_chain(fresh_engine, 5)
    with unit_of_work(fresh_engine) as session:
        audit.checkpoint_now(session)
    execute(fresh_engine, "DELETE FROM core_audit_event WHERE seq >= 4")
    problem = verify(fresh_engine).problem
    assert problem is not None
    assert (problem.code, problem.seq) == ("audit.truncated", 3)
    assert "checkpoint covers event 5" in problem.message_en


# ---------------------------------------------------------------- checkpoints


def test_checkpoint_every_n_events(
    fresh_engine: Engine, checkpoint_every: Callable[[int], None]
) -> None:
    checkpoint_every(3)
    build_chain(fresh_engine, 7)
    with unit_of_work(fresh_engine) as session:  # several events in one transaction
        for _ in range(3):
            audit.append(session, "test.batch")
    with Session(fresh_engine) as session:
        checkpoints = list(
            session.execute(select(AuditCheckpoint).order_by(col(AuditCheckpoint.seq))).scalars()
        )
    assert [cp.seq for cp in checkpoints] == [3, 6, 9]
    hashes = {row.seq: row.hash for row in rows(fresh_engine)}
    keyring = get_keyring()
    for cp in checkpoints:
        assert cp.hash == hashes[cp.seq]
        assert cp.key_id == keyring.audit_signing_kid
        keyring.audit_public_key().verify(
            base64.b64decode(cp.signature),
            audit.checkpoint_message(
                cp.seq, cp.hash, audit._signed_at_text(cp.signed_at), cp.note
            ),
        )
    report = verify(fresh_engine)
    assert (report.ok, report.events, report.checkpoints) == (True, 10, 3)


def test_checkpoint_on_demand(fresh_engine: Engine) -> None:
    with unit_of_work(fresh_engine) as session:
        assert audit.checkpoint_now(session) is None  # nothing to sign yet
    events = build_chain(fresh_engine, 4)
    with unit_of_work(fresh_engine) as session:
        checkpoint = audit.checkpoint_now(session)
    assert checkpoint is not None
    assert (checkpoint.seq, checkpoint.hash) == (4, events[-1].hash)
    assert verify(fresh_engine).checkpoints == 1


def test_configure_follows_the_setting(checkpoint_every: Callable[[int], None]) -> None:
    checkpoint_every(5)
    assert audit._checkpoint_every == 5
    from core.startup import prepare

    prepare(get_settings())
    assert audit._checkpoint_every == get_settings().audit_checkpoint_every


# ---------------------------------------------------------------- the CLI


@pytest.mark.parametrize("backend", ["sqlite"])
def test_cli_verify_on_a_sqlite_file(fresh_engine: Engine) -> None:
    assert fresh_engine.url.database and fresh_engine.url.database.endswith(".sqlite3")
    build_chain(fresh_engine, 6)
    runner = CliRunner()

    result = runner.invoke(cli, ["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output and "6 events" in result.output

    execute(fresh_engine, "UPDATE core_audit_event SET details = :d WHERE seq = 3", d='{"i":99}')
    result = runner.invoke(cli, ["audit", "verify"])
    assert result.exit_code == 1
    assert "BROKEN at seq 3: audit.hash_mismatch" in result.output
    assert "Audit event 3 was altered" in result.output


@pytest.mark.parametrize("backend", ["sqlite"])
def test_cli_verify_does_not_wait_for_the_sqlite_write_lock(fresh_engine: Engine) -> None:
    build_chain(fresh_engine, 4)
    with unit_of_work(fresh_engine) as writer:  # holds the write lock, uncommitted event
        audit.append(writer, "test.in_flight")
        started = time.monotonic()
        result = CliRunner().invoke(cli, ["audit", "verify"])
        waited = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert "OK: 4 events" in result.output  # the committed chain, read beside the writer
    assert waited < 10  # not the 30 s busy timeout
    assert verify(fresh_engine).events == 5


@pytest.mark.parametrize("backend", ["sqlite"])
def test_cli_checkpoint_then_verify(fresh_engine: Engine) -> None:
    build_chain(fresh_engine, 3)
    runner = CliRunner()
    result = runner.invoke(cli, ["audit", "checkpoint"])
    assert result.exit_code == 0, result.output
    assert "signed seq 3" in result.output
    result = runner.invoke(cli, ["audit", "verify"])
    assert result.exit_code == 0 and "1 signed checkpoints" in result.output


# ---------------------------------------------------------------- parallel writers


def test_parallel_writers_never_fork_the_chain(
    fresh_engine: Engine, checkpoint_every: Callable[[int], None]
) -> None:
    threads_count, per_thread = 8, 50
    checkpoint_every(16)
    start = threading.Barrier(threads_count)
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                with unit_of_work(fresh_engine) as session:
                    audit.append(
                        session,
                        "test.parallel",
                        actor=audit.Actor("staff", number),
                        details={"writer": number, "i": i},
                    )
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)

    chain = rows(fresh_engine)
    total = threads_count * per_thread
    assert [row.seq for row in chain] == list(range(1, total + 1))
    assert len({row.prev_hash for row in chain}) == total  # no two events share a parent
    assert [row.prev_hash for row in chain] == [audit.GENESIS_HASH] + [r.hash for r in chain[:-1]]
    per_writer: dict[int | None, list[int]] = {}
    for row in chain:
        per_writer.setdefault(row.actor_id, []).append(json.loads(row.details)["i"])
    assert per_writer == {n: list(range(per_thread)) for n in range(threads_count)}
    report = verify(fresh_engine)
    assert (report.ok, report.events, report.checkpoints) == (True, total, total // 16)


@pytest.mark.parametrize("backend", ["postgres"])
def test_verify_while_writers_append(
    fresh_engine: Engine, checkpoint_every: Callable[[int], None]
) -> None:
    # READ COMMITTED: events and checkpoints committed while verify reads must not look like
    # a truncated or mismatched chain.
    checkpoint_every(5)
    build_chain(fresh_engine, 20)
    appended: list[AuditEvent] = []

    def append_meanwhile(done: int, total: int) -> None:
        if done < total and not appended:
            appended.extend(build_chain(fresh_engine, 10))

    with fresh_engine.connect() as conn:
        report = audit.verify(conn, audit.public_keys(), batch=5, progress=append_meanwhile)
    assert appended
    assert report.ok, report.problem
    assert verify(fresh_engine).events == 30


# ---------------------------------------------------------------- the auditor's API


def test_audit_api_needs_the_auditor_role(client: TestClient) -> None:
    assert client.get("/api/audit/events").status_code == 401
    analyst = bearer(api_token(client, "analyst"))
    assert client.get("/api/audit/events", headers=analyst).status_code == 403
    assert client.post("/api/audit/verify", headers=analyst).status_code == 403
    assert client.post("/api/audit/checkpoint", headers=analyst).status_code == 403
    admin = bearer(api_token(client, "admin"))
    assert client.get("/api/audit/events", headers=admin).status_code == 403


def test_auditor_pages_through_the_log(client: TestClient, db: Session) -> None:
    auditor = bearer(api_token(client, "auditor"))
    head = audit._head(db)[0]

    seen: list[int] = []
    before: int | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 7}
        if before is not None:
            params["before"] = before
        response = client.get("/api/audit/events", params=params, headers=auditor)
        assert response.status_code == 200, response.text
        body = response.json()
        page_seqs = [event["seq"] for event in body["events"]]
        assert page_seqs == sorted(page_seqs, reverse=True)  # newest first
        assert len(page_seqs) <= 7
        seen.extend(page_seqs)
        pages += 1
        before = body["next_before"]
        if before is None:
            break
        assert before == page_seqs[-1]
    assert seen == list(range(head, 0, -1))  # every event once, none skipped
    assert pages == -(-head // 7)

    event = client.get("/api/audit/events", params={"limit": 1}, headers=auditor).json()["events"][
        0
    ]
    assert set(event) >= {"seq", "occurred_at", "action", "details", "prev_hash", "hash"}
    assert isinstance(event["details"], dict)

    filtered = client.get(
        "/api/audit/events", params={"action": "core.audit_read"}, headers=auditor
    ).json()["events"]
    assert filtered and {e["action"] for e in filtered} == {"core.audit_read"}


def test_reading_the_log_is_itself_audited(client: TestClient, db: Session) -> None:
    auditor = bearer(api_token(client, "auditor"))
    me = client.get("/api/me", headers=auditor).json()
    response = client.get("/api/audit/events", params={"limit": 3, "before": 5}, headers=auditor)
    assert response.status_code == 200
    [read] = audit.page(db, limit=1).events
    assert read.action == "core.audit_read"
    assert (read.actor_type, read.actor_id, read.role) == ("staff", me["account_id"], "auditor")
    assert audit.decode_details(read) == {"action": None, "before": 5, "limit": 3}

    response = client.post("/api/audit/verify", headers=auditor)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] is True and body["problem"] is None and body["events"] > 0
    [verified] = audit.page(db, limit=1).events
    assert verified.action == "core.audit_verified"
    assert audit.decode_details(verified) == {"ok": True, "events": body["events"]}


def test_auditor_signs_a_checkpoint(client: TestClient, db: Session) -> None:
    auditor = bearer(api_token(client, "auditor"))
    head_seq, head_hash, _key = audit._head(db)
    response = client.post("/api/audit/checkpoint", headers=auditor)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["seq"], body["hash"]) == (head_seq, head_hash)
    assert body["key_id"] == get_keyring().audit_signing_kid
    report = client.post("/api/audit/verify", headers=auditor).json()
    assert report["checkpoints"] >= 1
    # The test's outer transaction never commits, so the checkpoint is not witnessed (it
    # would be after a real commit: tests/core/test_audit_witness.py); the chain itself holds.
    assert report["ok"] is True or report["problem"]["code"] == "audit.witness_missing"
    assert audit.verify(db.connection(), audit.public_keys()).ok


# ---------------------------------------------------------------- the console


def test_console_audit_pages_and_verifies(client: TestClient, db: Session) -> None:
    assert console_sign_in(client, "analyst").status_code == 303
    assert client.get("/audit").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/").text)})
    client.cookies.clear()

    for i in range(60):  # more than one page of 50
        audit.append(db, "test.filler", details={"i": i})
    db.commit()
    assert console_sign_in(client, "auditor").status_code == 303
    page = client.get("/audit")
    assert page.status_code == 200, page.text
    [next_before] = re.findall(r'href="/audit\?before=(\d+)"', page.text)
    older = client.get("/audit", params={"before": next_before})
    assert older.status_code == 200
    assert f"<td>{int(next_before) - 1}</td>" in older.text
    [read] = audit.page(db, limit=1).events
    assert read.action == "core.audit_read" and read.role == "auditor"

    verified = client.post("/audit/verify", data={"csrf_token": csrf_from(older.text)})
    assert verified.status_code == 200, verified.text
    assert "Audit log verified" in verified.text
