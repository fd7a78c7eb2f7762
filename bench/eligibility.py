"""Eligibility benchmark: `consent.eligibility.eligible()` over a city-sized person register.

    .venv/bin/python bench/eligibility.py [--persons 1000000] [--events 300000]
                                          [--restrictions 5000] [--backend sqlite|postgres|both]

Set-up (timed and printed, not the figure): a fresh, migrated database per backend with the
demo city loaded (for the purpose, its consent route's items and the recipient), then bulk-loaded
with executemany (SQLite) or COPY (PostgreSQL), never through the service:

- persons: 40 % children aged 0–17, 60 % adults; encrypted columns hold placeholder tokens
  (eligibility never reads them) and the keyed-hash columns random unique values;
- guardianship: 80 % of children have two 親権者, 18 % one, 2 % a 未成年後見人;
- consent events (given, and some withdrawn) up to --events in total, each consent covering
  both items of the route for its recipient: children under 16 by their guardians (most with
  both parents, some with one), children of 16–17 by themselves, some with the child's objection;
- restrictions for random children, and 500 consent-route-unsuitable marks;
- ANALYZE on both backends (and VACUUM on PostgreSQL), as autovacuum / maintenance would.

The figure: the time to run the query `eligible()` returns for the purpose's population
(children aged 9–17, as the purpose's subjects rule says) and fetch every eligible id; the same
for the whole register as population, for context. Target: ≤ 2 s on each backend.
"""

from __future__ import annotations

import argparse
import random
import secrets
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bench.sandbox  # noqa: E402, F401  (first: sets the environment)

# isort: split
from alembic import command  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlmodel import Session, select  # noqa: E402

from bench.audit import (  # noqa: E402
    backend_info,
    drop_database,
    machine,
    new_database,
    settle,
)
from consent import eligibility  # noqa: E402
from consent.models import ConsentScope, Notice, Person  # noqa: E402
from core.ages import age_on, latest_birth_for_age  # noqa: E402
from core.cli import alembic_config  # noqa: E402
from core.clock import local_day  # noqa: E402
from core.db import make_engine, unit_of_work  # noqa: E402
from core.settings import get_settings  # noqa: E402
from core.startup import prepare  # noqa: E402

TARGET_S = 2.0
AT = datetime(2026, 6, 1, 3, tzinfo=UTC)  # noon in Tokyo
BATCH = 50_000


def _sqlite_time(moment: datetime) -> str:
    # The text SQLAlchemy's SQLite DateTime writes and binds (UTC, no offset).
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _pg_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


class Loader:
    """Bulk rows into a table: executemany on SQLite, COPY on PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self.raw = engine.raw_connection()
        self.driver: Any = self.raw.driver_connection

    def time(self, moment: datetime | None) -> str | None:
        if moment is None:
            return None
        return _pg_time(moment) if self.postgres else _sqlite_time(moment)

    def load(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        count = 0
        batch: list[Sequence[Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= BATCH:
                count += self._flush(table, columns, batch)
                batch = []
        if batch:
            count += self._flush(table, columns, batch)
        if self.postgres:
            self.driver.commit()
        return count

    def _flush(self, table: str, columns: Sequence[str], batch: list[Sequence[Any]]) -> int:
        names = ", ".join(columns)
        cursor = self.driver.cursor()
        if self.postgres:
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in batch:
                    copy.write_row(row)
        else:
            # core.db's SQLite connections are in autocommit mode (it emits BEGIN itself):
            # one explicit transaction per batch, not one fsync per row.
            cursor.execute("BEGIN IMMEDIATE")
            marks = ", ".join("?" for _ in columns)
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})",  # noqa: S608
                               batch)
            cursor.execute("COMMIT")
        cursor.close()
        return len(batch)

    def close(self) -> None:
        self.raw.close()


def load_consents(loader: Loader, records: list[Sequence[Any]],
                  scopes: list[Sequence[Any]], event_rows: list[Sequence[Any]]
                  ) -> dict[str, int]:
    """Bulk-load consent records with their scopes and events (column order of the rows)."""
    return {
        "consent records": loader.load("consent_record", (
            "id", "schema_version", "principal_id", "given_by_id", "relation",
            "authority_proof", "child_age_at_event", "confirmed_age", "child_view",
            "child_view_reason", "controller_organ_id", "purpose_id", "notice_id",
            "legal_route", "language", "collection_method", "retention_class",
            "withdrawal_method", "power_imbalance_note", "state", "given_at", "valid_until",
            "withdrawn_at", "created_by", "created_at"), records),
        "consent scope rows": loader.load(
            "consent_scope", ("record_id", "item_id", "recipient", "optional"), scopes),
        "consent events": loader.load("consent_event", (
            "record_id", "type", "at", "person_id", "staff_id", "channel", "evidence_ref"),
            event_rows),
    }


def fill(engine: Engine, persons: int, events: int, restrictions: int,
         purpose_id: int, items: list[int], recipient: str, notice_id: int,
         organ_id: int) -> dict[str, int]:
    rng = random.Random(20261126)
    loader = Loader(engine)
    now = loader.time(AT)
    children = int(persons * 0.4)
    adults = persons - children
    today = local_day(AT)
    child_ids = [secrets.token_hex(16) for _ in range(children)]
    adult_ids = [secrets.token_hex(16) for _ in range(adults)]
    births: dict[str, date] = {}
    span = (today - latest_birth_for_age(today, 18)).days - 1

    def people() -> Iterable[Sequence[Any]]:
        for n, pid in enumerate(child_ids):
            birth = today - timedelta(days=rng.randint(0, span))
            births[pid] = birth
            yield (pid, "bench", f"bench.c{n}", "bench", "bench.n", "bench", "bench.k",
                   birth, "unknown", None, None, now, now)
        for n, pid in enumerate(adult_ids):
            birth = date(1950, 1, 1) + timedelta(days=rng.randint(0, 365 * 55))
            yield (pid, "bench", f"bench.a{n}", "bench", "bench.n", "bench", "bench.k",
                   birth, "unknown", None, None, now, now)

    counts: dict[str, int] = {}
    counts["persons"] = loader.load("consent_person", (
        "id", "atena_no", "atena_hash", "name", "name_hash", "kana", "kana_hash",
        "birth_date", "sex", "household_no", "household_hash", "created_at", "updated_at"),
        people())
    guardians: dict[str, list[tuple[str, str]]] = {}
    adult_cursor = 0

    def links() -> Iterable[Sequence[Any]]:
        nonlocal adult_cursor
        for pid in child_ids:
            roll = rng.random()
            if roll < 0.02:
                kinds = ["minor_guardian"]
            elif roll < 0.20:
                kinds = ["parent"]
            else:
                kinds = ["parent", "parent"]
            chosen: list[tuple[str, str]] = []
            for kind in kinds:
                guardian = adult_ids[adult_cursor % len(adult_ids)]
                adult_cursor += 1
                chosen.append((guardian, kind))
                yield (pid, guardian, kind, "bench proof", births[pid], None, now)
            guardians[pid] = chosen

    counts["guardianship links"] = loader.load("consent_guardianship", (
        "child_id", "guardian_id", "relation", "proof_ref", "valid_from", "valid_until",
        "created_at"), links())

    records: list[Sequence[Any]] = []
    scopes: list[Sequence[Any]] = []
    event_rows: list[Sequence[Any]] = []
    order = list(child_ids)
    rng.shuffle(order)
    given_base = datetime(2026, 4, 2, tzinfo=UTC)
    made = 0
    for pid in order:
        if made >= events:
            break
        birth = births[pid]
        age_then = age_on(birth, local_day(given_base))
        if age_then < 9:
            continue
        if age_then >= 16:
            givers = [(pid, "self")]
        else:
            givers = guardians[pid] if rng.random() < 0.85 else guardians[pid][:1]
        for giver, relation in givers:
            if made >= events:
                break
            rid = secrets.token_hex(16)
            at = given_base + timedelta(minutes=rng.randint(0, 60 * 24 * 30))
            withdrawn = at + timedelta(days=10) if rng.random() < 0.12 else None
            view = "objection" if rng.random() < 0.02 else "assent"
            state = "withdrawn" if withdrawn else "given"
            records.append((rid, "bench", pid, giver, relation, "", age_then, age_then, view,
                            "", organ_id, purpose_id, notice_id, "69-2-1", "ja", "paper", "R3",
                            "窓口", "", state, loader.time(at),
                            loader.time(at + timedelta(days=365)), loader.time(withdrawn),
                            None, now))
            for item in items:
                scopes.append((rid, item, recipient, False))
            event_rows.append((rid, "given", loader.time(at), giver, None, "paper", ""))
            made += 1
            if withdrawn is not None and made < events:
                event_rows.append((rid, "withdrawn", loader.time(withdrawn), giver, None,
                                   "paper", ""))
                made += 1
    counts.update(load_consents(loader, records, scopes, event_rows))
    restricted = rng.sample(child_ids, restrictions)
    counts["restrictions"] = loader.load("consent_restriction", (
        "person_id", "purpose_id", "source", "source_ref", "reason", "valid_from",
        "valid_until", "created_by", "created_at", "lifted_at", "lifted_by"),
        ((pid, purpose_id, "suspension_request", "", "bench",
          loader.time(AT - timedelta(days=rng.randint(1, 60))), None, None, now, None, None)
         for pid in restricted))
    counts["unsuitable marks"] = loader.load("consent_unsuitable_mark", (
        "person_id", "purpose_id", "reason", "marked_by", "marked_at", "lifted_at",
        "lifted_by"),
        ((pid, None, "bench", None, loader.time(AT - timedelta(days=3)), None, None)
         for pid in rng.sample(child_ids, 500)))
    loader.close()
    settle(engine)
    return counts


def timed(engine: Engine, purpose_id: int, flows: list[tuple[int, str]], population: Any,
          repeat: int = 3) -> tuple[float, int]:
    best = float("inf")
    found = 0
    for _ in range(repeat):
        with Session(engine) as session:
            started = time.perf_counter()
            query = eligibility.eligible(session, purpose_id, flows, population, AT)
            found = len(session.exec(query).all())  # type: ignore[call-overload]
            best = min(best, time.perf_counter() - started)
    return best, found


def run(backend: str, persons: int, events: int, restrictions: int) -> dict[str, Any] | None:
    url = new_database(backend)
    try:
        engine_setup = time.perf_counter()
        command.upgrade(alembic_config(url), "head")
        engine = make_engine(url)
        import main

        with unit_of_work(engine) as session:
            for loader in main.DEMO_LOADERS:
                loader(session)
        with Session(engine) as session:
            notice = session.exec(select(Notice)).first()
            assert notice is not None and notice.id is not None
            pairs = sorted({(s.item_id, s.recipient)
                            for s in session.exec(select(ConsentScope)).all()})
            purpose_id, organ_id, notice_id = (notice.purpose_id, notice.controller_organ_id,
                                               notice.id)
        items = sorted({i for i, _r in pairs})
        recipient = pairs[0][1]
        started = time.perf_counter()
        counts = fill(engine, persons, events, restrictions, purpose_id, items, recipient,
                      notice_id, organ_id)
        load_s = time.perf_counter() - started
        setup_s = time.perf_counter() - engine_setup
        flows = [(i, recipient) for i in items]
        population = eligibility.population_of_children(9, 17, AT)
        with Session(engine) as session:
            size = len(session.exec(population).all())  # type: ignore[call-overload]
        seconds, found = timed(engine, purpose_id, flows, population)
        everyone = select(Person.id)
        all_s, all_found = timed(engine, purpose_id, flows, everyone)
        no_flow_s, no_flow_found = timed(engine, purpose_id, [], population)
        info = backend_info(engine)
        engine.dispose()
        return {"backend": backend, "info": info, "counts": counts, "load_s": load_s,
                "setup_s": setup_s, "population": size, "seconds": seconds, "found": found,
                "all_s": all_s, "all_found": all_found, "no_flow_s": no_flow_s,
                "no_flow_found": no_flow_found, "flows": len(flows)}
    finally:
        drop_database(backend, url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--restrictions", type=int, default=5_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args(argv)
    prepare(get_settings())
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results = []
    for backend in backends:
        print(f"[{backend}] loading {args.persons:,} persons, {args.events:,} consent events, "
              f"{args.restrictions:,} restrictions …", flush=True)
        result = run(backend, args.persons, args.events, args.restrictions)
        if result:
            results.append(result)
            print(f"[{backend}] set-up {result['setup_s']:.1f} s (bulk load "
                  f"{result['load_s']:.1f} s): "
                  + ", ".join(f"{k} {v:,}" for k, v in result["counts"].items()), flush=True)
    print()
    print(f"machine: {machine()}")
    print(f"at {AT.isoformat()}; purpose population: children aged 9–17; "
          f"target ≤ {TARGET_S:.1f} s (best of 3, query + fetching every eligible id)")
    print()
    header = f"{'':44}" + "".join(f"{r['backend']:>16}" for r in results)
    print(header)
    rows = [
        ("population (children 9–17)", lambda r: f"{r['population']:,}"),
        (f"eligible(), {results[0]['flows'] if results else 2} consent flows [s]",
         lambda r: f"{r['seconds']:.3f}"),
        ("  eligible ids", lambda r: f"{r['found']:,}"),
        ("eligible(), restrictions only [s]", lambda r: f"{r['no_flow_s']:.3f}"),
        ("  eligible ids", lambda r: f"{r['no_flow_found']:,}"),
        ("eligible(), whole register as population [s]", lambda r: f"{r['all_s']:.3f}"),
        ("  eligible ids", lambda r: f"{r['all_found']:,}"),
    ]
    for label, value in rows:
        print(f"{label:44}" + "".join(f"{value(r):>16}" for r in results))
    for r in results:
        print(f"{r['backend']}: {r['info']}")
    ok = all(r["seconds"] <= TARGET_S for r in results)
    print("target met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
