"""Audit chain benchmark: appends through the service layer, then `verify` over a large chain.

    .venv/bin/python bench/audit.py [--events 3000] [--verify-events 1000000]
                                    [--backend sqlite|postgres|both]

Append: each event is `core.audit.append` inside its own `core.db.unit_of_work`, i.e. one
durable transaction per event (SQLite: WAL with synchronous=FULL as core.db configures it;
PostgreSQL: synchronous_commit as the server has it, never turned off here).

Verify: the chain is topped up to --verify-events events by computing the chain in Python with
the same `event_hash` the service uses and bulk-inserting it (executemany on SQLite, COPY on
PostgreSQL), with a signed checkpoint every `checkpoint_every` events. That set-up is timed
and printed but is not the figure; the figure is `core.audit.verify` over the whole chain.

Each backend gets a fresh, migrated, temporary database (PostgreSQL: created next to the test
database, as tests/conftest.py does, and dropped afterwards).
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.sandbox import TMP as _TMP  # noqa: E402  (first: sets the environment)

# isort: split

import sqlalchemy  # noqa: E402
from alembic import command  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import Engine, make_url  # noqa: E402

from core import audit  # noqa: E402
from core.cli import alembic_config  # noqa: E402
from core.db import make_engine, unit_of_work  # noqa: E402
from core.keys import get_keyring  # noqa: E402
from core.settings import get_settings  # noqa: E402
from core.startup import prepare  # noqa: E402

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
APPEND_TARGET = 2_000  # events/s on SQLite, one transaction each
APPEND_FLOOR_SHARE = 0.70  # on PostgreSQL: at least this share of the bare driver, same run
VERIFY_TARGET_S = 5.0  # seconds for 1,000,000 events
FILL_BATCH = 20_000

COLUMNS = (
    "seq",
    "occurred_at",
    "actor_type",
    "actor_id",
    "role",
    "organ_id",
    "action",
    "target_type",
    "target_id",
    "purpose_id",
    "decision_id",
    "details",
    "prev_hash",
    "actor_person_id",
    "key_id",
    "hash",
)


def postgres_admin_url() -> str:
    return os.environ.get("KODOMO_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def new_database(backend: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{_TMP / f'bench-{secrets.token_hex(6)}.sqlite3'}"
    admin = create_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    name = f"kodomo_bench_{secrets.token_hex(6)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(postgres_admin_url()).set(database=name).render_as_string(hide_password=False)


def drop_database(backend: str, url: str) -> None:
    if backend == "sqlite":
        path = Path(make_url(url).database or "")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    name = make_url(url).database
    admin = create_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def settle(engine: Engine) -> None:
    """After a bulk load, what autovacuum or a maintenance job would have done by then:
    ANALYZE; on PostgreSQL, VACUUM (the visibility map that index-only scans need) and a
    CHECKPOINT, so that the load's dirty pages are not written out during the measurements."""
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
            conn.execute(text("CHECKPOINT"))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}"
    )


def backend_info(engine: Engine) -> str:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            version = conn.exec_driver_sql("select sqlite_version()").scalar()
            mode = conn.exec_driver_sql("pragma journal_mode").scalar()
            sync = conn.exec_driver_sql("pragma synchronous").scalar()
            names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
            level = names.get(int(sync), str(sync)) if sync is not None else "?"
            return f"SQLite {version}, journal_mode={mode}, synchronous={level}"
        version = conn.exec_driver_sql("show server_version").scalar()
        sync = conn.exec_driver_sql("show synchronous_commit").scalar()
        fsync = conn.exec_driver_sql("show fsync").scalar()
        return f"PostgreSQL {version}, synchronous_commit={sync}, fsync={fsync}"


# ---------------------------------------------------------------- append


def bench_append(engine: Engine, events: int) -> float:
    actor = audit.Actor("staff", 7, "privacy_officer", 1)
    # Warm up the pool and the statement caches outside the timing.
    with unit_of_work(engine) as session:
        audit.append(session, "bench.warm_up", actor=actor)
    started = time.perf_counter()
    for i in range(events):
        with unit_of_work(engine) as session:
            audit.append(
                session,
                "bench.appended",
                actor=actor,
                target_type="purpose",
                target_id=i % 97,
                purpose_id=i % 13,
                details={"i": i, "result": "allowed", "codes": ["gate.ok"]},
            )
    elapsed = time.perf_counter() - started
    return events / elapsed


def bench_driver_floor(engine: Engine, events: int) -> float:
    """Context, not the figure: the same round trips through the bare driver, no service layer.

    One durable transaction each with the statements `append` sends (PostgreSQL: the advisory
    lock, the head read, the insert; SQLite: BEGIN IMMEDIATE, the head read, the insert) into
    a scratch table, on a connection configured as core.db configures it (same PRAGMAs, same
    synchronous setting). It shows what this machine allows at that moment.
    """
    postgres = engine.dialect.name == "postgresql"
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        assert driver is not None
        cursor = driver.cursor()
        mark = "%s" if postgres else "?"
        if postgres:
            cursor.execute("CREATE TABLE bench_floor (seq INTEGER PRIMARY KEY, h TEXT, d TEXT)")
            driver.commit()
        else:
            cursor.execute("CREATE TABLE bench_floor (seq INTEGER PRIMARY KEY, h TEXT, d TEXT)")
        details = audit.canonical_details({"i": 0, "result": "allowed", "codes": ["gate.ok"]})
        started = time.perf_counter()
        for i in range(1, events + 1):
            if postgres:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", (audit._PG_CHAIN_LOCK,))
            else:
                cursor.execute("BEGIN IMMEDIATE")
            cursor.execute("SELECT seq, h FROM bench_floor ORDER BY seq DESC LIMIT 1")
            cursor.fetchone()
            cursor.execute(
                f"INSERT INTO bench_floor VALUES ({mark}, {mark}, {mark})",  # noqa: S608
                (i, "0" * 64, details),
            )
            if postgres:
                driver.commit()
            else:
                cursor.execute("COMMIT")
        elapsed = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_floor")
        if postgres:
            driver.commit()
        cursor.close()
    finally:
        raw.close()
    return events / elapsed


# ---------------------------------------------------------------- bulk fill for verify


def _head(engine: Engine) -> tuple[int, str, datetime]:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT seq, hash, occurred_at FROM core_audit_event ORDER BY seq DESC LIMIT 1")
        ).first()
    if row is None:
        return 0, audit.GENESIS_HASH, datetime(2026, 4, 1, tzinfo=UTC)
    occurred = row[2]
    if isinstance(occurred, str):  # raw SQLite text
        occurred = datetime.fromisoformat(occurred)
    return (
        int(row[0]),
        str(row[1]),
        occurred.replace(tzinfo=UTC) if occurred.tzinfo is None else occurred,
    )


def _chain(
    start_seq: int, prev_hash: str, start_at: datetime, count: int
) -> Iterator[tuple[Any, ...]]:
    """Correctly hashed events seq start_seq+1 … start_seq+count, as the service writes them."""
    actions = [
        "gate.decided",
        "consent.given",
        "pia.approved",
        "core.audit_read",
        "linkage.job_finished",
        "registry.entry_updated",
    ]
    roles = [None, "privacy_officer", "data_holder", "analyst", "auditor"]
    ring = get_keyring()
    key_id = ring.active_audit_chain_key
    key = None if key_id is None else ring.audit_chain_keys[key_id]
    for i in range(start_seq + 1, start_seq + count + 1):
        occurred = start_at + timedelta(milliseconds=i, microseconds=(i * 7919) % 1000)
        role = roles[i % len(roles)]
        actor_type, actor_id, organ_id = (
            ("system", None, None) if role is None else ("staff", i % 50 + 1, i % 3 + 1)
        )
        person = f"p-{i % 9973:08x}" if i % 7 == 0 else None  # a resident now and then
        if person is not None:
            actor_type, actor_id, role, organ_id = "resident", None, None, None
        action = actions[i % len(actions)]
        target_type, target_id = ("purpose", str(i % 211)) if i % 2 else (None, None)
        purpose_id = i % 17 if i % 3 else None
        decision_id = f"d-{i:010d}" if action == "gate.decided" else None
        details = audit.canonical_details(
            {
                "n": i,
                "outcome": "allowed" if i % 5 else "refused",
                "codes": ["gate.ok"],
                "note": "監査" if i % 11 == 0 else None,
            }
        )
        digest = audit.event_hash(
            i,
            occurred,
            actor_type,
            actor_id,
            role,
            organ_id,
            action,
            target_type,
            target_id,
            purpose_id,
            decision_id,
            details,
            prev_hash,
            person,
            key_id,
            key,
        )
        yield (
            i,
            occurred,
            actor_type,
            actor_id,
            role,
            organ_id,
            action,
            target_type,
            target_id,
            purpose_id,
            decision_id,
            details,
            prev_hash,
            person,
            key_id,
            digest,
        )
        prev_hash = digest


def _checkpoint_row(seq: int, chain_hash: str) -> dict[str, Any]:
    signer = audit._signer()
    import base64

    signed_at = datetime.now(UTC)
    message = audit.checkpoint_message(seq, chain_hash, audit._signed_at_text(signed_at), "head")
    signature = signer.private_key.sign(message)
    return {
        "seq": seq,
        "hash": chain_hash,
        "signed_at": signed_at,
        "key_id": signer.key_id,
        "signature": base64.b64encode(signature).decode("ascii"),
        "note": "head",
    }


def fill(engine: Engine, total: int, checkpoint_every: int) -> int:
    """Top the chain up to `total` events; returns how many were added."""
    start_seq, prev_hash, last_at = _head(engine)
    count = total - start_seq
    if count <= 0:
        return 0
    checkpoints: list[dict[str, Any]] = []
    batch: list[tuple[Any, ...]] = []
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        assert driver is not None
        cursor = driver.cursor()

        def flush() -> None:
            if not batch:
                return
            if engine.dialect.name == "sqlite":
                rows = [(r[0], r[1].strftime("%Y-%m-%d %H:%M:%S.%f"), *r[2:]) for r in batch]
                cursor.execute("BEGIN IMMEDIATE")
                cursor.executemany(
                    f"INSERT INTO core_audit_event ({', '.join(COLUMNS)}) "  # noqa: S608
                    f"VALUES ({', '.join('?' for _ in COLUMNS)})",
                    rows,
                )
                cursor.execute("COMMIT")
            else:
                with cursor.copy(
                    f"COPY core_audit_event ({', '.join(COLUMNS)}) FROM STDIN"
                ) as copy:
                    for row in batch:
                        copy.write_row(row)
                driver.commit()
            batch.clear()

        for row in _chain(start_seq, prev_hash, last_at, count):
            batch.append(row)
            if row[0] % checkpoint_every == 0:
                checkpoints.append(_checkpoint_row(row[0], row[-1]))
            if len(batch) >= FILL_BATCH:
                flush()
        flush()
        cursor.close()
    finally:
        raw.close()
    if checkpoints:
        with engine.begin() as conn:
            conn.execute(audit.AuditCheckpoint.__table__.insert(), checkpoints)  # type: ignore[attr-defined]
    return count


def bench_verify(engine: Engine) -> tuple[float, audit.VerifyReport]:
    keys = audit.public_keys()
    with engine.connect() as conn:
        started = time.perf_counter()
        report = audit.verify(conn, keys)
        elapsed = time.perf_counter() - started
    return elapsed, report


# ---------------------------------------------------------------- main


def run(backend: str, events: int, verify_events: int) -> bool:
    url = new_database(backend)
    ok = True
    try:
        command.upgrade(alembic_config(url), "head")
        engine = make_engine(url)
        print(f"\n== {backend}: {backend_info(engine)}")
        if events > 0:
            floor = bench_driver_floor(engine, events)
            print(
                f"context N={events:,} same statements through the bare driver, one transaction "
                f"each: {floor:,.0f} events/s (what the machine allows now; not the figure)"
            )
            rate = bench_append(engine, events)
            if backend == "sqlite":
                met = rate >= APPEND_TARGET
                goal = f">= {APPEND_TARGET:,}"
            else:
                met = rate >= APPEND_FLOOR_SHARE * floor
                goal = f">= {APPEND_FLOOR_SHARE:.0%} of the bare driver"
            ok &= met
            print(
                f"append  N={events:,} (one transaction each): {rate:,.0f} events/s, "
                f"{rate / floor:.0%} of the bare driver [target {goal}: "
                f"{'met' if met else 'MISSED'}]"
            )
        if verify_events > 0:
            every = get_settings().audit_checkpoint_every
            started = time.perf_counter()
            added = fill(engine, verify_events, every)
            print(
                f"setup   bulk-filled {added:,} hashed events (+ checkpoints every {every:,}) "
                f"in {time.perf_counter() - started:.1f} s (not the figure)"
            )
            elapsed, report = bench_verify(engine)
            target = VERIFY_TARGET_S * verify_events / 1_000_000
            met = report.ok and elapsed <= target
            ok &= met
            outcome = "OK" if report.ok else f"BROKEN {report.problem}"
            print(
                f"verify  N={report.events:,} events, {report.checkpoints:,} checkpoints: "
                f"{elapsed:.2f} s ({report.events / elapsed:,.0f} events/s), {outcome} "
                f"[target <= {target:.1f} s: {'met' if met else 'MISSED'}]"
            )
        engine.dispose()
    finally:
        drop_database(backend, url)
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=3000, help="events to append (timed)")
    parser.add_argument(
        "--verify-events", type=int, default=1_000_000, help="chain length for the verify timing"
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args(argv)
    prepare(get_settings())
    print(f"machine: {machine()}")
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"data: {_TMP}")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    ok = True
    for backend in backends:
        ok &= run(backend, args.events, args.verify_events)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
