"""The audit chain: append events in the caller's transaction, sign checkpoints, verify it."""

from __future__ import annotations

import base64
import hashlib
import json
import json.encoder
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy import Table, event, func, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session, col

from core import db, messages
from core.clock import as_utc, utcnow
from core.keys import get_keyring
from core.models import AuditCheckpoint, AuditEvent

GENESIS_HASH = "0" * 64
_EVENT_TABLE: Table = AuditEvent.__table__  # type: ignore[attr-defined]
# Any constant works; it names the advisory lock that serialises appends on PostgreSQL.
_PG_CHAIN_LOCK = 0x6B6F646F6D6F
_MAX_DETAIL_TEXT = 200

messages.register(
    {
        "audit.verified": (
            "監査ログを検証しました: {events} 件の記録と {checkpoints} 件の署名付き"
            "チェックポイントに問題はありません。",
            "Audit log verified: {events} events and {checkpoints} signed checkpoints are intact.",
        ),
        "audit.verify_button": ("監査ログを検証する", "Verify the audit log"),
        "audit.filter_action": ("操作で絞り込み", "Filter by action"),
        "audit.filter": ("絞り込み", "Filter"),
        "audit.col_time": ("日時", "Time"),
        "audit.col_actor": ("操作者", "Actor"),
        "audit.col_action": ("操作", "Action"),
        "audit.col_target": ("対象", "Target"),
        "audit.col_details": ("詳細", "Details"),
        "audit.hash_mismatch": (
            "連番 {seq} の監査記録が改ざんされています（ハッシュ不一致）。",
            "Audit event {seq} was altered (hash mismatch).",
        ),
        "audit.broken_link": (
            "連番 {seq} の監査記録が直前の記録とつながっていません（削除・挿入・並べ替え）。",
            "Audit event {seq} does not link to the event before it (deleted, inserted or "
            "reordered).",
        ),
        "audit.sequence_gap": (
            "連番 {expected} の監査記録がありません（次は {seq}）。",
            "Audit event {expected} is missing (next is {seq}).",
        ),
        "audit.checkpoint_bad_signature": (
            "連番 {seq} のチェックポイントの署名が無効です。",
            "The checkpoint at event {seq} has an invalid signature.",
        ),
        "audit.checkpoint_unknown_key": (
            "連番 {seq} のチェックポイントの署名鍵 {key_id} が見つかりません。",
            "The checkpoint at event {seq} is signed with unknown key {key_id}.",
        ),
        "audit.checkpoint_mismatch": (
            "連番 {seq} のチェックポイントが監査記録と一致しません。",
            "The checkpoint at event {seq} does not match the chain.",
        ),
        "audit.truncated": (
            "監査記録が連番 {seq} で途切れていますが、チェックポイントは連番 {checkpoint} "
            "まであります。",
            "The chain ends at event {seq} but a checkpoint covers event {checkpoint}.",
        ),
    }
)


@dataclass(frozen=True)
class Actor:
    """Who did something: a staff account, a resident, or the system itself."""

    type: str  # "staff" | "resident" | "system"
    id: int | None = None
    role: str | None = None
    organ_id: int | None = None


SYSTEM = Actor("system")


@dataclass(frozen=True)
class Signer:
    key_id: str
    private_key: Ed25519PrivateKey


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    code: str
    message_ja: str
    message_en: str


@dataclass(frozen=True)
class VerifyReport:
    events: int
    checkpoints: int
    problem: ChainProblem | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _check_detail_value(value: Any, path: str) -> None:
    # Details are for ids and codes; a long free text is where personal data would slip in.
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"audit detail key at {path} must be a string")
            _check_detail_value(key, f"{path} key {key[:20]!r}")
            _check_detail_value(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_detail_value(item, f"{path}[{index}]")
    elif isinstance(value, str):
        if len(value) > _MAX_DETAIL_TEXT:
            raise ValueError(f"audit detail {path} is longer than {_MAX_DETAIL_TEXT} characters")
        value.encode("utf-8")  # a lone surrogate cannot be stored nor hashed
    elif isinstance(value, float):
        if not math.isfinite(value):  # NaN and Infinity are not JSON
            raise ValueError(f"audit detail {path} is not a finite number")
    elif value is not None and not isinstance(value, bool | int):
        raise TypeError(f"audit detail {path} has unsupported type {type(value).__name__}")


def canonical_details(details: Mapping[str, Any] | None) -> str:
    data = dict(details or {})
    _check_detail_value(data, "details")
    return json.dumps(
        data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )


def _time_text(moment: datetime) -> str:
    """UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (naive values, as SQLite returns them, are UTC)."""
    if moment.utcoffset():  # aware and not UTC (PostgreSQL in another session time zone)
        moment = moment.astimezone(UTC)
    if moment.year < 1000:  # the v1 text came from strftime, which does not pad such years
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # isoformat is several times faster than strftime and gives the same bytes here.
    return moment.isoformat(timespec="microseconds")[:26] + "Z"


_encode_str = json.encoder.encode_basestring  # json.dumps' own escaper (C), ensure_ascii=False


def _json_value(value: Any) -> str:
    """One scalar exactly as ``json.dumps(value, ensure_ascii=False)`` writes it."""
    if value is None:
        return "null"
    kind = type(value)
    if kind is str:
        return _encode_str(value)
    if kind is int:
        return int.__repr__(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def event_hash(
    seq: int,
    occurred_at: datetime,
    actor_type: str,
    actor_id: int | None,
    role: str | None,
    organ_id: int | None,
    action: str,
    target_type: str | None,
    target_id: str | None,
    purpose_id: int | None,
    decision_id: str | None,
    details: str,
    prev_hash: str,
) -> str:
    """SHA-256 of the canonical JSON of the typed columns, identical on every backend.

    The hashed bytes (canonical form v1) are the UTF-8 encoding of the compact JSON array

        [seq, "YYYY-MM-DDTHH:MM:SS.ffffffZ", actor_type, actor_id, role, organ_id, action,
         target_type, target_id, purpose_id, decision_id, <details>, prev_hash]

    with the time in UTC, strings escaped as ``json.dumps(..., ensure_ascii=False)`` does (so
    non-ASCII text is written as itself), integers in decimal, NULL as ``null``, separators
    ``,`` and ``:`` with no spaces, and ``<details>`` the stored details text spliced in
    verbatim. The details text is always written by `canonical_details` (keys sorted at every
    level, compact, non-ASCII unescaped), so for every event `append` writes these bytes equal
    ``json.dumps([seq, time, ..., json.loads(details), prev_hash], ensure_ascii=False,
    separators=(",", ":"))``, the form this function computed before it was made faster; a
    row whose details text was edited in any way, even only in its spacing, no longer matches.
    Every column is read as a typed value (int, text, timestamp) and formatted here, never as
    the backend prints it, so SQLite and PostgreSQL hash the very same bytes.
    """
    # Inline fast paths for the usual types (verify calls this a million times); anything
    # else goes through _json_value, so the bytes are json.dumps' bytes whatever the values.
    enc = _encode_str
    payload = (
        f"[{seq if type(seq) is int else _json_value(seq)},"
        f'"{_time_text(occurred_at)}",'
        f"{enc(actor_type) if type(actor_type) is str else _json_value(actor_type)},"
        f"{actor_id if type(actor_id) is int else _json_value(actor_id)},"
        f"{enc(role) if type(role) is str else _json_value(role)},"
        f"{organ_id if type(organ_id) is int else _json_value(organ_id)},"
        f"{enc(action) if type(action) is str else _json_value(action)},"
        f"{enc(target_type) if type(target_type) is str else _json_value(target_type)},"
        f"{enc(target_id) if type(target_id) is str else _json_value(target_id)},"
        f"{purpose_id if type(purpose_id) is int else _json_value(purpose_id)},"
        f"{enc(decision_id) if type(decision_id) is str else _json_value(decision_id)},"
        f"{details},"
        f"{enc(prev_hash) if type(prev_hash) is str else _json_value(prev_hash)}]"
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


# Built once: statement construction is a measurable share of an append.
_LOCK_STATEMENT = text("SELECT pg_advisory_xact_lock(:key)")
_HEAD_STATEMENT = (
    select(col(AuditEvent.seq), col(AuditEvent.hash)).order_by(col(AuditEvent.seq).desc()).limit(1)
)
_INSERT_STATEMENT = insert(_EVENT_TABLE)


def _lock_chain(session: Session) -> None:
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(_LOCK_STATEMENT, {"key": _PG_CHAIN_LOCK})
    # SQLite: every transaction begins IMMEDIATE (core.db), so writers are already serialised.


def _head(session: Session) -> tuple[int, str]:
    row = session.execute(_HEAD_STATEMENT).first()
    return (0, GENESIS_HASH) if row is None else (row[0], row[1])


def checkpoint_message(seq: int, chain_hash: str) -> bytes:
    return f"kodomo-audit-checkpoint:v1:{seq}:{chain_hash}".encode()


_checkpoint_every: int = 1000


def configure(*, checkpoint_every: int) -> None:
    """Set how often a checkpoint is signed (the app and CLI call this at start-up)."""
    global _checkpoint_every
    _checkpoint_every = checkpoint_every


def _signer() -> Signer:
    keyring = get_keyring()
    return Signer(keyring.audit_signing_kid, keyring.audit_private_key())


def public_keys() -> dict[str, Ed25519PublicKey]:
    """Checkpoint verification keys by key id."""
    keyring = get_keyring()
    return {keyring.audit_signing_kid: keyring.audit_public_key()}


def append(
    session: Session,
    action: str,
    *,
    actor: Actor = SYSTEM,
    target_type: str | None = None,
    target_id: str | int | None = None,
    purpose_id: int | None = None,
    decision_id: str | None = None,
    details: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Add one event to the chain with the caller's unit of work (it lands with the change).

    In a unit of work opened by core.db as a write, the event is chained when the unit
    commits, so the chain's lock (PostgreSQL's advisory lock) is held from then to the commit
    only, not from here on. In one opened as a read (a page showing identified data), it is
    chained after the read, in a short write transaction of its own, before the answer leaves.
    Elsewhere (a bare session) it is chained at once. The returned copy has its seq and hash
    only when it was chained at once (otherwise seq 0 and empty hashes: read the chain).
    """
    fields: dict[str, Any] = {
        "occurred_at": None if at is None else as_utc(at),
        "actor_type": actor.type,
        "actor_id": actor.id,
        "role": actor.role,
        "organ_id": actor.organ_id,
        "action": action,
        "target_type": target_type,
        "target_id": None if target_id is None else str(target_id),
        "purpose_id": purpose_id,
        "decision_id": decision_id,
        "details": canonical_details(details),
    }
    if not db.session_writes(session):
        def chain_after(writer: Session) -> None:
            _chain(writer, [fields])

        db.after_read(session, chain_after)
        return _not_yet_chained(fields)
    if session.info.get(db.WRITES) is True:
        transaction = (session.get_nested_transaction() or session.get_transaction()
                       or session.begin())
        # Kept with the (sub)transaction it belongs to: a savepoint rolled back drops its own.
        session.info.setdefault(_PENDING, []).append((transaction, fields))
        return _not_yet_chained(fields)
    # A bare session: chain now, after anything waiting (in order).
    values = _chain(session, [*(f for _, f in session.info.pop(_PENDING, [])), fields])
    return AuditEvent(**values)  # a copy for the caller, not tracked by the session


_PENDING = "kodomo.audit_pending"


def _not_yet_chained(fields: dict[str, Any]) -> AuditEvent:
    """The copy returned for an event that waits: seq 0, no hashes (the chain decides them)."""
    return AuditEvent(**{**fields, "occurred_at": fields["occurred_at"] or utcnow(),
                         "seq": 0, "prev_hash": "", "hash": ""})


def _chain(session: Session, pending: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Lock the chain, read its head and insert the events after it (in the caller's txn);
    returns the last event's values."""
    if not pending:
        return {}
    # Write the caller's own changes first, so that the lock is held for the chain alone.
    session.flush()
    _lock_chain(session)
    prev_seq, prev_hash = _head(session)
    values: dict[str, Any] = {}
    for fields in pending:
        values = {**fields, "seq": prev_seq + 1, "prev_hash": prev_hash}
        values["occurred_at"] = fields["occurred_at"] or utcnow()
        values["hash"] = prev_hash = event_hash(**values)
        prev_seq = values["seq"]
        # A plain INSERT rather than session.add() + flush(): the ORM's unit of work costs
        # more than the statement itself on this hot path (every change writes an event).
        session.execute(_INSERT_STATEMENT, values)
        if prev_seq % _checkpoint_every == 0:
            _write_checkpoint(session, prev_seq, prev_hash)
    return values


@event.listens_for(OrmSession, "before_commit")
def _chain_at_commit(session: OrmSession) -> None:
    # The outermost commit only: a savepoint released joins its events to the transaction.
    if session.get_nested_transaction() is None and session.info.get(_PENDING):
        pending = session.info.pop(_PENDING)
        _chain(session, [fields for _, fields in pending])  # type: ignore[arg-type]


def _within(transaction: SessionTransaction | None, ended: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ended:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(OrmSession, "after_soft_rollback")
def _drop_at_rollback(session: OrmSession, ended: SessionTransaction) -> None:
    # What the rolled-back (sub)transaction appended goes with it; the rest still waits.
    pending = session.info.get(_PENDING)
    if pending:
        session.info[_PENDING] = [(t, f) for t, f in pending if not _within(t, ended)]


def _write_checkpoint(session: Session, seq: int, chain_hash: str) -> AuditCheckpoint:
    signer = _signer()
    signature = signer.private_key.sign(checkpoint_message(seq, chain_hash))
    checkpoint = AuditCheckpoint(
        seq=seq,
        hash=chain_hash,
        signed_at=utcnow(),
        key_id=signer.key_id,
        signature=base64.b64encode(signature).decode("ascii"),
    )
    session.add(checkpoint)
    session.flush()
    return checkpoint


def checkpoint_now(session: Session) -> AuditCheckpoint | None:
    """Sign the current head on demand; None when the chain is empty."""
    _lock_chain(session)
    seq, chain_hash = _head(session)
    if seq == 0:
        return None
    return _write_checkpoint(session, seq, chain_hash)


def _problem(seq: int, code: str, **params: Any) -> ChainProblem:
    ja, en = messages.both(code, seq=seq, **params)
    return ChainProblem(seq, code, ja, en)


_CHAIN_COLUMNS = (
    AuditEvent.seq,
    AuditEvent.occurred_at,
    AuditEvent.actor_type,
    AuditEvent.actor_id,
    AuditEvent.role,
    AuditEvent.organ_id,
    AuditEvent.action,
    AuditEvent.target_type,
    AuditEvent.target_id,
    AuditEvent.purpose_id,
    AuditEvent.decision_id,
    AuditEvent.details,
    AuditEvent.prev_hash,
    AuditEvent.hash,
)


def _batches(connection: Connection, batch: int) -> Iterator[Sequence[Any]]:
    """The chain in sequence order, a list of rows at a time (a server-side cursor on PG)."""
    # Options on the statement, not on the connection: Connection.execution_options() changes
    # the caller's connection for good, and a session that goes on after verify (the API
    # appends an event) would then run every statement through a server-side cursor.
    result = connection.execute(
        select(*(col(column) for column in _CHAIN_COLUMNS)).order_by(col(AuditEvent.seq)),
        execution_options={"stream_results": True, "yield_per": batch},
    )
    yield from result.partitions()


def verify(
    connection: Connection,
    public_keys: Mapping[str, Ed25519PublicKey],
    *,
    progress: Callable[[int, int], None] | None = None,
    batch: int = 50_000,
) -> VerifyReport:
    """Walk the chain from the start and name the first broken link, then check checkpoints."""
    total = connection.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    # Checkpoints are read before the events: a checkpoint is committed with (or after) the
    # event it signs, so every checkpoint seen here has its events in the later read, even on
    # PostgreSQL at READ COMMITTED while writers keep appending. Read after the events, a
    # checkpoint written meanwhile would look like a truncated or mismatched chain.
    checkpoints = connection.execute(
        select(AuditCheckpoint).order_by(col(AuditCheckpoint.seq), col(AuditCheckpoint.id))
    ).all()
    checkpoint_seqs = {cp.seq for cp in checkpoints}
    hashes_at_checkpoints: dict[int, str] = {}
    expected_seq = 1
    prev_hash = GENESIS_HASH
    checked = 0
    hash_of = event_hash
    for rows in _batches(connection, batch):
        for row in rows:
            (
                seq,
                occurred_at,
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
                row_prev,
                row_hash,
            ) = row
            if seq != expected_seq:
                code = "audit.sequence_gap" if seq > expected_seq else "audit.broken_link"
                return VerifyReport(expected_seq - 1, 0, _problem(seq, code, expected=expected_seq))
            if row_prev != prev_hash:
                return VerifyReport(expected_seq - 1, 0, _problem(seq, "audit.broken_link"))
            if (
                hash_of(
                    seq,
                    occurred_at,
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
                    row_prev,
                )
                != row_hash
            ):
                return VerifyReport(expected_seq - 1, 0, _problem(seq, "audit.hash_mismatch"))
            if seq in checkpoint_seqs:
                hashes_at_checkpoints[seq] = row_hash
            prev_hash = row_hash
            expected_seq += 1
        checked = expected_seq - 1
        if progress is not None:
            progress(checked, total)
    if progress is not None:
        progress(checked, total)
    last_seq = expected_seq - 1

    for cp in checkpoints:
        if cp.seq > last_seq:
            return VerifyReport(
                checked, 0, _problem(last_seq, "audit.truncated", checkpoint=cp.seq)
            )
        key = public_keys.get(cp.key_id)
        if key is None:
            return VerifyReport(
                checked, 0, _problem(cp.seq, "audit.checkpoint_unknown_key", key_id=cp.key_id)
            )
        try:
            key.verify(base64.b64decode(cp.signature), checkpoint_message(cp.seq, cp.hash))
        except (InvalidSignature, ValueError):
            return VerifyReport(checked, 0, _problem(cp.seq, "audit.checkpoint_bad_signature"))
        if hashes_at_checkpoints.get(cp.seq) != cp.hash:
            return VerifyReport(checked, 0, _problem(cp.seq, "audit.checkpoint_mismatch"))
    return VerifyReport(checked, len(checkpoints), None)


@dataclass(frozen=True)
class EventPage:
    events: list[AuditEvent]
    before: int | None  # pass as `before` to get the next (older) page


def page(
    session: Session,
    *,
    before: int | None = None,
    limit: int = 50,
    action: str | None = None,
    purpose_id: int | None = None,
) -> EventPage:
    """Newest first, keyset-paginated by sequence number."""
    query = select(AuditEvent).order_by(col(AuditEvent.seq).desc()).limit(limit + 1)
    if before is not None:
        query = query.where(col(AuditEvent.seq) < before)
    if action:
        query = query.where(col(AuditEvent.action) == action)
    if purpose_id is not None:
        query = query.where(col(AuditEvent.purpose_id) == purpose_id)
    rows = list(session.execute(query).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return EventPage(rows, rows[-1].seq if more and rows else None)


def decode_details(event: AuditEvent) -> dict[str, Any]:
    value = json.loads(event.details)
    return value if isinstance(value, dict) else {}
