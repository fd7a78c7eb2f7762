"""The audit chain's links: canonical bytes, HMAC and the walk that checks a run of events.

Light to import (no SQLAlchemy, no models), so that `verify` can hand a segment of a long chain
to a worker process (`python -m core.chain`, a job on stdin, the result on stdout) and join the
segments' ends, which checks the very same links as one walk from the start does.
"""

from __future__ import annotations

import hashlib
import json
import json.encoder
import re
import sys
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64
EVENT_TABLE = "core_audit_event"
# The columns a link covers, in the order of the stored row verify reads (hash last).
CHAIN_COLUMNS = (
    "seq", "occurred_at", "actor_type", "actor_id", "role", "organ_id", "action", "target_type",
    "target_id", "purpose_id", "decision_id", "details", "prev_hash", "actor_person_id",
    "key_id", "hash",
)


def utc_text(moment: datetime) -> str:
    """UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (naive values, as SQLite returns them, are UTC)."""
    if moment.utcoffset():  # aware and not UTC (PostgreSQL in another session time zone)
        moment = moment.astimezone(UTC)
    if moment.year < 1000:  # the v1 text came from strftime, which does not pad such years
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # isoformat is several times faster than strftime and gives the same bytes here.
    return moment.isoformat(timespec="microseconds")[:26] + "Z"


encode_str = json.encoder.encode_basestring  # json.dumps' own escaper (C), ensure_ascii=False


def json_value(value: Any) -> str:
    """One scalar exactly as ``json.dumps(value, ensure_ascii=False)`` writes it."""
    if value is None:
        return "null"
    kind = type(value)
    if kind is str:
        return encode_str(value)
    if kind is int:
        return int.__repr__(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class ChainMac:
    """HMAC-SHA256 under one chain key, with the padded key blocks hashed once (RFC 2104).

    Equal to ``hmac.new(key, message, "sha256").hexdigest()``; copying the two prepared
    SHA-256 states costs a fraction of what building an HMAC object per event would.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def hexdigest(self, message: bytes) -> str:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


_macs: dict[bytes, ChainMac] = {}


def chain_mac(key: bytes) -> ChainMac:
    mac = _macs.get(key)
    if mac is None:
        mac = _macs[key] = ChainMac(key)
    return mac



# json.dumps' own C encoder for compact, non-ASCII-preserving JSON: one call encodes the
# typed columns exactly as json.dumps (and so event_payload) does, for any JSON value.
def make_list_encoder() -> Callable[[list[Any]], str]:
    encoder = json.encoder.JSONEncoder(ensure_ascii=False, separators=(",", ":"),
                                       allow_nan=False)
    make = json.encoder.c_make_encoder  # type: ignore[attr-defined]
    if make is None:  # no C accelerator: the same bytes, more slowly
        return encoder.encode
    # What JSONEncoder.iterencode builds on every call, built once (no circular-reference
    # markers: a row holds scalars only).
    iterencode = make(None, encoder.default, encode_str, None, ":", ",", False, False, False)
    join = "".join

    def encode(values: list[Any]) -> str:
        return join(iterencode(values, 0))

    return encode


encode_list = make_list_encoder()



def fast_payload(row: Sequence[Any], time_text: Callable[[Any], str]) -> bytes:
    """`event_payload` of a row (columns as in _CHAIN_COLUMNS, the time raw): the same bytes,
    built with two calls of the C JSON encoder instead of a dozen Python-level ones."""
    head = encode_list(
        [row[0], time_text(row[1]), row[2], row[3], row[4], row[5], row[6], row[7], row[8],
         row[9], row[10]]
    )
    prev = row[12]
    person = row[13]
    key_id = row[14]
    enc = encode_str
    prev_text = enc(prev) if type(prev) is str else json_value(prev)
    if person is None and key_id is None:
        return f"{head[:-1]},{row[11]},{prev_text}]".encode()
    person_text = enc(person) if type(person) is str else json_value(person)
    key_text = enc(key_id) if type(key_id) is str else json_value(key_id)
    return f"{head[:-1]},{row[11]},{prev_text},{person_text},{key_text}]".encode()



@dataclass
class Walk:
    """Where a walk over a run of events stands: the next seq and link it expects (None
    until the first row when the run is a segment whose start another walk checks)."""

    expected_seq: int | None
    prev_hash: str | None
    first_seq: int | None = None
    first_prev: str | None = None
    problem: tuple[int, str, dict[str, Any]] | None = None  # seq, code, message parameters
    problem_at: int = 0  # events verified before the problem

    @property
    def verified(self) -> int:
        """Events verified so far (seq numbers run from 1, so the last good seq)."""
        return (self.expected_seq or 1) - 1


def walk(
    batches: Iterator[Sequence[Any]],
    state: Walk,
    *,
    macs: Mapping[str, ChainMac],
    must_be_keyed: bool,
    keyed_from: int,
    wanted: Collection[int],
    hashes_at: dict[int, str],
    time_text: Callable[[Any], str],
    after_batch: Callable[[int], None] | None = None,
) -> Walk:
    """Check every row of `batches` in order: seq contiguous, each row linked to the one
    before, each link recomputed (HMAC under the row's chain key, or SHA-256 for the unkeyed
    events before the keyed mark). Stops at the first problem (state.problem)."""
    expected_seq = state.expected_seq
    prev_hash = state.prev_hash
    payload_of = fast_payload
    sha256 = hashlib.sha256
    problem: tuple[int, str, dict[str, Any]] | None = None
    for rows in batches:
        for row in rows:
            seq = row[0]
            if expected_seq is None:  # a segment: its start is checked where segments join
                state.first_seq, state.first_prev = seq, row[12]
                expected_seq, prev_hash = seq, row[12]
            if seq != expected_seq:
                code = "audit.sequence_gap" if seq > expected_seq else "audit.broken_link"
                problem = (seq, code, {"expected": expected_seq})
                break
            if row[12] != prev_hash:
                problem = (seq, "audit.broken_link", {})
                break
            key_id = row[14]
            try:
                payload = payload_of(row, time_text)
            except (TypeError, ValueError):  # a value no event can hold (a blob, NaN…)
                problem = (seq, "audit.hash_mismatch", {})
                break
            if key_id is None:
                if must_be_keyed and seq >= keyed_from:
                    problem = (seq, "audit.unkeyed_event", {"keyed_from": keyed_from})
                    break
                digest = sha256(payload).hexdigest()
            else:
                mac = macs.get(key_id)
                if mac is None:
                    problem = (seq, "audit.event_unknown_key", {"key_id": key_id})
                    break
                digest = mac.hexdigest(payload)
            prev_hash = row[15]
            if digest != prev_hash:
                problem = (seq, "audit.hash_mismatch", {})
                break
            if seq in wanted:
                hashes_at[seq] = prev_hash
            expected_seq += 1
        if problem is not None:
            break
        if after_batch is not None and expected_seq is not None:
            after_batch(expected_seq - 1)
    if problem is not None:
        state.problem = problem
        state.problem_at = expected_seq - 1 if expected_seq is not None else 0
    state.expected_seq, state.prev_hash = expected_seq, prev_hash
    return state




def chain_query(low: int | None = None, high: int | None = None) -> str:
    """The chain's rows with seq in [low, high] (an open end when None), in sequence order."""
    where = []
    if low is not None:
        where.append(f"seq >= {int(low)}")
    if high is not None:
        where.append(f"seq <= {int(high)}")
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    return f"SELECT {', '.join(CHAIN_COLUMNS)} FROM {EVENT_TABLE}{condition} ORDER BY seq"  # noqa: S608


def read_rows(driver: Any, postgres: bool, batch: int, low: int | None = None,
              high: int | None = None) -> Iterator[Sequence[Any]]:
    """The rows of `chain_query` through a DB-API connection, a list of tuples at a time.

    PostgreSQL streams through a server-side cursor in the connection's transaction (one
    held over commits when it autocommits); SQLite steps one statement."""
    query = chain_query(low, high)
    if postgres:
        with driver.cursor(name="kodomo_audit_verify", binary=True,
                           withhold=bool(driver.autocommit)) as cursor:
            cursor.itersize = batch
            cursor.execute(query)
            while rows := cursor.fetchmany(batch):
                yield rows
        return
    cursor = driver.cursor()
    try:
        cursor.execute(query)
        while rows := cursor.fetchmany(batch):
            yield rows
    finally:
        cursor.close()


# The text SQLAlchemy's SQLite DateTime stores (always six fraction digits), year >= 1000.
SQLITE_TIME = re.compile(r"[1-9]\d{3}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}")


def sqlite_time_text(other: Callable[[Any], str]) -> Callable[[Any], str]:
    """The canonical time text from the raw stored SQLite value: sliced when it is the text
    SQLAlchemy writes (what the column type would parse into the very same moment), else
    `other` (the column type's parsing, then `utc_text`)."""
    match = SQLITE_TIME.fullmatch

    def time_text(raw: Any) -> str:
        if type(raw) is str and len(raw) == 26 and match(raw):
            return f"{raw[:10]}T{raw[11:]}Z"
        return other(raw)

    return time_text


def _worker_sqlite_fallback(raw: Any) -> str:
    from sqlalchemy.dialects import sqlite  # only for a stored time SQLAlchemy did not write

    from core.audit import _sqlite_time_text
    return _sqlite_time_text(sqlite.dialect())(raw)


def walk_segment(job: Mapping[str, Any]) -> dict[str, Any]:
    """A worker's part of `verify`: walk the rows with seq in [low, high] on a connection of
    its own and return the segment's ends, its first problem and the hashes wanted."""
    postgres = "postgres" in job
    if postgres:
        import psycopg

        driver: Any = psycopg.connect(job["postgres"])
        time_text: Callable[[Any], str] = utc_text
    else:
        import sqlite3

        driver = sqlite3.connect(job["sqlite"], uri=bool(job.get("uri")))
        time_text = sqlite_time_text(_worker_sqlite_fallback)
    hashes_at: dict[int, str] = {}
    try:
        state = walk(
            read_rows(driver, postgres, job["batch"], job["low"], job["high"]),
            Walk(None, None),
            macs={kid: ChainMac(bytes.fromhex(key)) for kid, key in job["keys"].items()},
            must_be_keyed=job["must_be_keyed"], keyed_from=job["keyed_from"],
            wanted=set(job["wanted"]), hashes_at=hashes_at, time_text=time_text,
        )
    finally:
        driver.close()
    return {**state.__dict__, "hashes_at": hashes_at}


if __name__ == "__main__":
    json.dump(walk_segment(json.load(sys.stdin)), sys.stdout)
