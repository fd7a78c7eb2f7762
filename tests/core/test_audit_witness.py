"""The keyed chain, the witness and key rotation, tried as an attacker with write access to the
database (and, in one case, a stolen chain key): every attack of issue 13 is reported."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from core import audit, auth, witness
from core.db import unit_of_work
from core.keys import Keyring, get_keyring, load_keyring, reset_keyring_cache
from core.settings import get_settings
from main import cli
from tests.audit_chain import build_chain, execute, hash_at, rows

runner = CliRunner()


def verify_all(engine: Engine) -> audit.VerifyReport:
    """Verify as `kodomo audit verify` does: the chain, its checkpoints and the witness."""
    sink = witness.configured()
    with engine.connect() as conn:
        return audit.verify(
            conn, audit.public_keys(), witness_entries=sink.read(), witness_name=sink.describe()
        )


def checkpoint(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        audit.checkpoint_now(session)


@pytest.fixture
def witnessed(fresh_engine: Engine) -> Engine:
    """Events 1-10 with a witnessed checkpoint at 10, then 11-13 not yet witnessed."""
    build_chain(fresh_engine, 10)
    checkpoint(fresh_engine)
    build_chain(fresh_engine, 3)
    assert verify_all(fresh_engine).ok
    return fresh_engine


def _forge_events(engine: Engine, start: int, count: int, key: bytes | None,
                  key_id: str | None) -> None:
    """Append forged events after seq start-1 with correctly recomputed links: SHA-256 when no
    key is given (all an attacker without the keyring can do), HMAC under `key` otherwise."""
    prev = audit.GENESIS_HASH if start == 1 else hash_at(engine, start - 1)
    for seq in range(start, start + count):
        values: dict[str, Any] = {
            "seq": seq, "occurred_at": datetime(2026, 12, 1, tzinfo=UTC),
            "actor_type": "system", "actor_id": None, "role": None, "organ_id": None,
            "action": "core.forged", "target_type": None, "target_id": None,
            "purpose_id": None, "decision_id": None, "details": "{}", "prev_hash": prev,
            "actor_person_id": None, "key_id": key_id,
        }
        values["hash"] = audit.event_hash(**values, key=key)
        with engine.begin() as conn:
            conn.execute(audit._INSERT_STATEMENT, values)
        prev = values["hash"]


# ---------------------------------------------------------------- the attacks


def _edit(engine: Engine) -> None:
    execute(engine, "UPDATE core_audit_event SET action = 'core.other' WHERE seq = 4")


def _delete(engine: Engine) -> None:
    execute(engine, "DELETE FROM core_audit_event WHERE seq = 5")


def _insert(engine: Engine) -> None:
    execute(
        engine,
        "UPDATE core_audit_event SET seq = seq + 1000 WHERE seq >= 12",
        "UPDATE core_audit_event SET seq = seq - 999 WHERE seq > 1000",
    )
    _forge_events(engine, 12, 1, None, None)


def _swap(engine: Engine) -> None:
    execute(
        engine,
        "UPDATE core_audit_event SET seq = -3 WHERE seq = 3",
        "UPDATE core_audit_event SET seq = 3 WHERE seq = 4",
        "UPDATE core_audit_event SET seq = 4 WHERE seq = -3",
    )


def _cut_tail(engine: Engine) -> None:
    # Events and checkpoints after seq 7 go, so the database agrees with itself.
    execute(
        engine,
        "DELETE FROM core_audit_event WHERE seq > 7",
        "DELETE FROM core_audit_checkpoint WHERE seq > 7",
    )


def _cut_unwitnessed_tail(engine: Engine) -> None:
    # After the last witnessed checkpoint: what remains possible (docs/security.md).
    execute(engine, "DELETE FROM core_audit_event WHERE seq > 10")


def _wipe(engine: Engine) -> None:
    execute(engine, "DELETE FROM core_audit_event", "DELETE FROM core_audit_checkpoint")


def _forged_tail_sha256(engine: Engine) -> None:
    execute(engine, "DELETE FROM core_audit_event WHERE seq > 11")
    _forge_events(engine, 12, 5, None, None)


def _forged_tail_own_key(engine: Engine) -> None:
    execute(engine, "DELETE FROM core_audit_event WHERE seq > 11")
    _forge_events(engine, 12, 5, b"k" * 32, get_keyring().active_audit_chain_key)


def _forged_tail_stolen_chain_key(engine: Engine) -> None:
    # With the chain key (not the signing key): the links fit and the database's checkpoint
    # row can be deleted, but the witness still holds the signed hash of event 10.
    ring = get_keyring()
    assert ring.active_audit_chain_key is not None
    execute(
        engine,
        "DELETE FROM core_audit_event WHERE seq > 7",
        "DELETE FROM core_audit_checkpoint WHERE seq > 7",
    )
    _forge_events(engine, 8, 8, ring.audit_chain_keys[ring.active_audit_chain_key],
                  ring.active_audit_chain_key)


def _wipe_and_forge_unkeyed_chain(engine: Engine) -> None:
    _wipe(engine)
    _forge_events(engine, 1, 12, None, None)


ATTACKS = [
    ("edit", _edit, "audit.hash_mismatch", 4),
    ("delete", _delete, "audit.sequence_gap", 6),
    ("insert", _insert, "audit.unkeyed_event", 12),
    ("swap", _swap, "audit.broken_link", 3),
    ("cut tail", _cut_tail, "audit.witness_cut_tail", 7),
    ("wipe", _wipe, "audit.witness_cut_tail", 0),
    ("forged tail, recomputed SHA-256", _forged_tail_sha256, "audit.unkeyed_event", 12),
    ("forged tail, attacker's own key", _forged_tail_own_key, "audit.hash_mismatch", 12),
    ("forged tail, stolen chain key", _forged_tail_stolen_chain_key, "audit.witness_mismatch",
     10),
    ("wiped and forged unkeyed", _wipe_and_forge_unkeyed_chain, "audit.unkeyed_event", 1),
]


@pytest.mark.parametrize(
    ("attack", "code", "seq"), [a[1:] for a in ATTACKS], ids=[a[0] for a in ATTACKS]
)
def test_every_attack_is_reported(
    witnessed: Engine, attack: Callable[[Engine], None], code: str, seq: int
) -> None:
    attack(witnessed)
    report = verify_all(witnessed)
    assert report.problem is not None, attack.__name__
    assert (report.problem.code, report.problem.seq) == (code, seq)
    assert report.problem.message_ja and report.problem.message_en


def test_an_event_naming_an_unknown_chain_key_is_named(witnessed: Engine) -> None:
    execute(witnessed, "UPDATE core_audit_event SET key_id = 'ck-20200101-00000000' "
            "WHERE seq = 2")
    problem = verify_all(witnessed).problem
    assert problem is not None
    assert (problem.code, problem.seq) == ("audit.event_unknown_key", 2)
    assert "ck-20200101-00000000" in problem.message_en


def test_rollback_to_an_older_state_is_reported_then_reanchored(
    fresh_engine: Engine, tmp_path: Path
) -> None:
    build_chain(fresh_engine, 10)
    checkpoint(fresh_engine)
    database = fresh_engine.url.database or ""
    if fresh_engine.dialect.name == "sqlite":  # a real backup of the file
        backup = tmp_path / "backup.sqlite3"
        source = sqlite3.connect(database)
        target = sqlite3.connect(backup)
        source.backup(target)
        source.close()
        target.close()
    build_chain(fresh_engine, 10)
    checkpoint(fresh_engine)
    if fresh_engine.dialect.name == "sqlite":
        fresh_engine.dispose()
        shutil.copy(backup, database)
        for suffix in ("-wal", "-shm"):
            Path(database + suffix).unlink(missing_ok=True)
    else:
        execute(fresh_engine, "DELETE FROM core_audit_event WHERE seq > 10",
                "DELETE FROM core_audit_checkpoint WHERE seq > 10")
    report = verify_all(fresh_engine)
    assert report.problem is not None
    assert (report.problem.code, report.problem.seq) == ("audit.witness_rollback", 10)
    assert "event 20" in report.problem.message_en

    result = runner.invoke(cli, ["audit", "reanchor"])
    assert result.exit_code == 2 and "--confirm" in result.output
    result = runner.invoke(cli, ["audit", "reanchor", "--confirm"])
    assert result.exit_code == 0, result.output
    assert "re-anchored the witness at seq 10 (it had seen seq 20)" in result.output
    report = verify_all(fresh_engine)
    assert report.ok, report.problem
    actions = [r.action for r in rows(fresh_engine)]
    assert actions[-1] == "core.audit_reanchored"


def test_the_unwitnessed_tail_is_what_remains_possible(witnessed: Engine) -> None:
    _cut_unwitnessed_tail(witnessed)
    assert verify_all(witnessed).ok  # documented in docs/security.md


def test_cli_reports_each_witness_problem(witnessed: Engine) -> None:
    _cut_tail(witnessed)
    result = runner.invoke(cli, ["audit", "verify"])
    assert result.exit_code == 1
    assert "BROKEN at seq 7: audit.witness_cut_tail" in result.output
    assert "witness holds a checkpoint at event 10" in result.output


# ---------------------------------------------------------------- the witness itself


def test_every_checkpoint_reaches_the_witness_after_commit(
    fresh_engine: Engine, _own_witness: Path
) -> None:
    build_chain(fresh_engine, 3)
    with pytest.raises(RuntimeError), unit_of_work(fresh_engine) as session:
        audit.checkpoint_now(session)
        raise RuntimeError("rolled back")
    assert not _own_witness.exists()  # nothing witnessed for a rolled-back checkpoint
    checkpoint(fresh_engine)
    lines = [json.loads(line) for line in _own_witness.read_text().splitlines()]
    assert [(line["kind"], line["seq"], line["note"]) for line in lines] == [
        ("checkpoint", 3, "head")
    ]
    assert lines[0]["hash"] == hash_at(fresh_engine, 3)


def test_a_cli_command_that_wrote_ends_with_a_checkpoint(
    fresh_engine: Engine, _own_witness: Path
) -> None:
    result = runner.invoke(cli, ["demo", "load"])  # it used to leave no checkpoint at all
    assert result.exit_code == 0, result.output
    with fresh_engine.connect() as conn:
        head = conn.execute(text("SELECT max(seq) FROM core_audit_event")).scalar_one()
    lines = [json.loads(line) for line in _own_witness.read_text().splitlines()]
    assert head and lines and lines[-1]["seq"] == head, result.output
    result = runner.invoke(cli, ["audit", "verify"])  # only reads: no new checkpoint
    assert result.exit_code == 0, result.output
    assert len(_own_witness.read_text().splitlines()) == len(lines)


def test_checkpoint_by_time_hook(fresh_engine: Engine) -> None:
    build_chain(fresh_engine, 2)
    checkpoint(fresh_engine)
    build_chain(fresh_engine, 1)
    with unit_of_work(fresh_engine) as session:
        assert audit.checkpoint_if_due(session, max_age=timedelta(hours=1)) is None
        later = datetime.now(UTC) + timedelta(hours=2)
        due = audit.checkpoint_if_due(session, max_age=timedelta(hours=1), now=later)
        assert due is not None and due.seq == 3
        assert audit.checkpoint_if_due(session, max_age=timedelta(hours=1), now=later) is None


def _rewrite_line(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    change(lines[-1])
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda e: e.update(hash="f" * 64), "audit.witness_bad_signature"),
        (lambda e: e.update(key_id="ak-20200101-00000000"), "audit.witness_unknown_key"),
    ],
    ids=["altered line", "unknown key"],
)
def test_a_witness_that_does_not_match_is_named(
    witnessed: Engine, _own_witness: Path, change: Callable[[dict[str, Any]], None], code: str
) -> None:
    _rewrite_line(_own_witness, change)
    problem = verify_all(witnessed).problem
    assert problem is not None and problem.code == code
    assert "line 1" in problem.message_en


def test_a_missing_witness_is_named(witnessed: Engine, _own_witness: Path) -> None:
    _own_witness.unlink()
    problem = verify_all(witnessed).problem
    assert problem is not None and problem.code == "audit.witness_missing"
    assert str(_own_witness) in problem.message_en


def test_a_garbled_witness_is_a_clear_error(witnessed: Engine, _own_witness: Path) -> None:
    _own_witness.write_text("not json\n")
    result = runner.invoke(cli, ["audit", "verify"])
    assert result.exit_code == 1
    assert "audit.witness_unreadable" in result.output and "line 1" in result.output


def test_witness_setting_is_parsed(tmp_path: Path) -> None:
    assert isinstance(witness.parse(None, tmp_path), witness.FileWitness)
    default = witness.parse("", tmp_path)
    assert isinstance(default, witness.FileWitness)
    assert default.path == tmp_path / "audit-witness" / "checkpoints.jsonl"
    shared = witness.parse("file:/mnt/shared/witness.jsonl", tmp_path)
    assert isinstance(shared, witness.FileWitness)
    assert str(shared.path) == "/mnt/shared/witness.jsonl"
    remote = witness.parse("syslog://127.0.0.1:5514", tmp_path)
    assert isinstance(remote, witness.SyslogWitness) and remote.read() is None
    with pytest.raises(witness.WitnessError, match="KODOMO_AUDIT_WITNESS"):
        witness.parse("relative/path", tmp_path)
    with pytest.raises(witness.WitnessError, match="HOST:PORT"):
        witness.parse("syslog://nohost", tmp_path)


# ---------------------------------------------------------------- residents, upgrade


def test_a_resident_is_an_actor_and_their_id_is_hashed(fresh_engine: Engine) -> None:
    with unit_of_work(fresh_engine) as session:
        event = audit.append(session, "portal.viewed", actor=audit.Actor.resident("p-7f3a9c"))
    assert (event.actor_type, event.actor_id) == ("resident", None)
    assert event.actor_person_id == "p-7f3a9c"
    assert verify_all(fresh_engine).ok
    execute(fresh_engine, "UPDATE core_audit_event SET actor_person_id = 'p-other'")
    problem = verify_all(fresh_engine).problem
    assert problem is not None and problem.code == "audit.hash_mismatch"
    with pytest.raises(ValueError):
        audit.Actor.resident("")


@settings(max_examples=60, deadline=None)
@given(
    person=st.one_of(st.none(), st.text(min_size=1, max_size=64)),
    action=st.text(min_size=1, max_size=80),
    details=st.dictionaries(st.text(max_size=10), st.one_of(st.integers(), st.text(max_size=20),
                                                           st.none()), max_size=4),
    key=st.binary(min_size=32, max_size=32),
)
def test_keyed_hash_is_the_documented_hmac(
    person: str | None, action: str, details: dict[str, Any], key: bytes
) -> None:
    moment = datetime(2026, 12, 1, 3, 4, 5, 6, tzinfo=UTC)
    details_text = audit.canonical_details(details)
    def hash_of(person: str | None, key_id: str | None, key: bytes | None) -> str:
        return audit.event_hash(1, moment, "resident", None, None, None, action, None, None,
                                None, None, details_text, "0" * 64, person, key_id, key)

    digest = hash_of(person, "ck-1", key)
    reference = json.dumps(
        [1, "2026-12-01T03:04:05.000006Z", "resident", None, None, None, action, None, None,
         None, None, json.loads(details_text), "0" * 64, person, "ck-1"],
        ensure_ascii=False, separators=(",", ":"),
    ).encode()
    assert digest == hmac.new(key, reference, "sha256").hexdigest()
    # Unkeyed, with no person: form v1, SHA-256, as before.
    v1 = json.dumps([1, "2026-12-01T03:04:05.000006Z", "resident", None, None, None, action,
                     None, None, None, None, json.loads(details_text), "0" * 64],
                    ensure_ascii=False, separators=(",", ":")).encode()
    assert hash_of(None, None, None) == hashlib.sha256(v1).hexdigest()


@pytest.fixture
def unkeyed_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[bool], None]]:
    """Switch core.audit between the keyring as it was before the chain was keyed and now."""
    keyed = get_keyring()
    legacy = dataclasses.replace(keyed, audit_chain_keys={}, active_audit_chain_key=None)

    def switch(keyed_now: bool) -> None:
        monkeypatch.setattr(audit, "get_keyring", lambda: keyed if keyed_now else legacy)

    yield switch


def test_an_unkeyed_chain_is_upgraded_in_place(
    fresh_engine: Engine, unkeyed_keyring: Callable[[bool], None]
) -> None:
    unkeyed_keyring(False)
    build_chain(fresh_engine, 4)  # as written before this change: SHA-256, no key id
    report = verify_all(fresh_engine)
    assert report.ok and report.warnings  # "not keyed: run kodomo keys rotate --audit"
    before = rows(fresh_engine)
    unkeyed_keyring(True)
    build_chain(fresh_engine, 3)
    after = rows(fresh_engine)
    assert after[:4] == before  # never rewritten
    assert [r.key_id is None for r in after] == [True] * 4 + [False] * 3
    with fresh_engine.connect() as conn:
        marks = conn.execute(text("SELECT seq, note FROM core_audit_checkpoint")).all()
    assert [tuple(m) for m in marks] == [(4, audit.KEYED_FROM_NEXT)]
    report = verify_all(fresh_engine)
    assert report.ok and not report.warnings

    # An unkeyed event after the mark is a forgery; so is an unkeyed chain without the mark.
    execute(fresh_engine, "DELETE FROM core_audit_event WHERE seq > 5")
    _forge_events(fresh_engine, 6, 2, None, None)
    problem = verify_all(fresh_engine).problem
    assert problem is not None and (problem.code, problem.seq) == ("audit.unkeyed_event", 6)


# ---------------------------------------------------------------- rotation


@pytest.fixture
def own_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the test keyring that this test may rotate."""
    path = tmp_path / "keys.json"
    shutil.copy(get_settings().effective_key_file, path)
    monkeypatch.setenv("KODOMO_KEY_FILE", str(path))
    get_settings.cache_clear()
    reset_keyring_cache()
    yield path
    monkeypatch.undo()
    get_settings.cache_clear()
    reset_keyring_cache()


def test_chain_and_receipts_verify_across_a_rotation(
    fresh_engine: Engine, own_keyring: Path
) -> None:
    before = load_keyring(own_keyring)
    build_chain(fresh_engine, 3)
    checkpoint(fresh_engine)
    old_receipt = auth.sign_jws({"receipt": "before"})

    result = runner.invoke(cli, ["keys", "rotate", "--audit", "--receipts"])
    assert result.exit_code == 0, result.output
    reset_keyring_cache()
    after = load_keyring(own_keyring)
    assert after.audit_signing_kid != before.audit_signing_kid
    assert after.active_audit_chain_key != before.active_audit_chain_key
    assert before.audit_signing_kid in after.audit_signing_retired
    assert set(before.audit_chain_keys) < set(after.audit_chain_keys)
    assert before.receipt_signing_kid in after.receipt_signing_retired
    assert after.field_keys == before.field_keys  # --fields not asked for

    build_chain(fresh_engine, 3)
    checkpoint(fresh_engine)
    key_ids = [r.key_id for r in rows(fresh_engine)]
    assert key_ids[:3] == [before.active_audit_chain_key] * 3
    assert set(key_ids[4:]) == {after.active_audit_chain_key}
    with fresh_engine.connect() as conn:
        signers = conn.execute(text("SELECT key_id FROM core_audit_checkpoint ORDER BY seq")).all()
    assert signers[0][0] == before.audit_signing_kid
    assert signers[-1][0] == after.audit_signing_kid
    report = verify_all(fresh_engine)
    assert report.ok, report.problem

    # Receipts: the old one still verifies; new ones use the new key; JWKS lists both.
    assert auth.verify_jws(old_receipt) == {"receipt": "before"}
    new_receipt = auth.sign_jws({"receipt": "after"})
    assert auth.verify_jws(new_receipt) == {"receipt": "after"}
    from jose import jws

    assert jws.get_unverified_header(new_receipt)["kid"] == after.receipt_signing_kid
    kids = [k["kid"] for k in auth.receipt_jwks()["keys"]]
    assert kids == [after.receipt_signing_kid, before.receipt_signing_kid]

    # A verifier without the retired keys names the unknown one and rewrites nothing.
    without = dataclasses.replace(after, audit_signing_retired={})
    with fresh_engine.connect() as conn:
        report = audit.verify(conn, without.audit_public_keys())
    assert report.problem is not None
    assert report.problem.code == "audit.checkpoint_unknown_key"
    assert before.audit_signing_kid in report.problem.message_en


def test_rotation_without_a_keyring_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KODOMO_KEY_FILE", str(tmp_path / "absent.json"))
    monkeypatch.setenv("KODOMO_DEMO", "0")  # demo mode would make one
    get_settings.cache_clear()
    try:
        result = runner.invoke(cli, ["keys", "rotate", "--audit"])
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "KODOMO_KEY_FILE" in result.output and "does not exist" in result.output
    assert not (tmp_path / "absent.json").exists()


def test_keyring_round_trips_retired_keys() -> None:
    ring = get_keyring().with_new_audit_keys().with_new_receipt_key()
    assert Keyring.from_json(json.loads(json.dumps(ring.to_json()))) == ring


# ---------------------------------------------------------------- verify's fast path

_text = st.one_of(st.none(), st.text(max_size=30))
_int = st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1))


@settings(max_examples=300, deadline=None)
@given(
    seq=st.integers(min_value=1, max_value=2**62),
    moment=st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31),
                        timezones=st.just(UTC)),
    actor_type=st.text(max_size=16), actor_id=_int, role=_text, organ_id=_int,
    action=st.text(max_size=80), target_type=_text, target_id=_text, purpose_id=_int,
    decision_id=_text,
    details=st.dictionaries(st.text(max_size=8), st.one_of(st.integers(), st.text(max_size=9),
                                                          st.booleans(), st.none()), max_size=3),
    person=_text, key_id=_text,
)
def test_verify_reads_the_same_bytes_as_append_writes(
    seq: int, moment: datetime, actor_type: str, actor_id: int | None, role: str | None,
    organ_id: int | None, action: str, target_type: str | None, target_id: str | None,
    purpose_id: int | None, decision_id: str | None, details: dict[str, Any],
    person: str | None, key_id: str | None,
) -> None:
    details_text = audit.canonical_details(details)
    values = (seq, moment, actor_type, actor_id, role, organ_id, action, target_type, target_id,
              purpose_id, decision_id, details_text, "a" * 64, person, key_id)
    expected = audit.event_payload(*values)
    # PostgreSQL: psycopg's aware datetime, here in another zone than UTC.
    tokyo = moment.astimezone(timezone(timedelta(hours=9)))
    assert audit._fast_payload((values[0], tokyo, *values[2:]), audit._time_text) == expected
    # SQLite: the text SQLAlchemy stores.
    from sqlalchemy.dialects import sqlite as sqlite_dialect

    stored = moment.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    time_text = audit._sqlite_time_text(sqlite_dialect.dialect())
    assert audit._fast_payload((values[0], stored, *values[2:]), time_text) == expected
