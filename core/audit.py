"""The audit chain: append events in the caller's transaction, sign checkpoints, verify it."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import itertools
import json
import json.encoder
import logging
import math
import os
import subprocess
import sys
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy import DateTime, String, Table, event, func, insert, select, text, type_coerce
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session, col

from core import db, messages, witness
from core.chain import (
    GENESIS_HASH,
    ChainMac,
    Walk,
    chain_mac,
    encode_str,
    fast_payload,
    json_value,
    read_rows,
    sqlite_time_text,
    utc_text,
    walk,
)
from core.clock import as_utc, utcnow
from core.db import unit_of_work
from core.keys import get_keyring
from core.models import AuditCheckpoint, AuditEvent
from core.witness import WitnessEntry

log = logging.getLogger(__name__)

# The link code lives in core.chain (light enough for a verify worker); these names stay.
_encode_str = encode_str
_fast_payload = fast_payload
_json_value = json_value
_time_text = utc_text

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
        "audit.unkeyed_event": (
            "連番 {seq} の監査記録に鍵がありません（鍵付きの連鎖に鍵なしの記録が追加・改ざん"
            "されています）。",
            "Audit event {seq} has no chain key, but the chain is keyed from event {keyed_from} "
            "(an unkeyed event was forged or altered).",
        ),
        "audit.event_unknown_key": (
            "連番 {seq} の監査記録の鍵 {key_id} が鍵リングにありません。",
            "Audit event {seq} names chain key {key_id}, which the keyring does not hold.",
        ),
        "audit.witness_cut_tail": (
            "監査記録は連番 {seq} までですが、証人は連番 {witnessed} までのチェックポイントを"
            "記録しています（末尾の削除または全消去）。",
            "The chain ends at event {seq} but the witness holds a checkpoint at event "
            "{witnessed} (the tail was cut or the chain wiped).",
        ),
        "audit.witness_rollback": (
            "監査記録は証人が記録した古い状態（連番 {seq}）に戻っています。証人は連番 "
            "{witnessed} まで記録しています（巻き戻し、またはバックアップからの復元。復元なら"
            "再アンカーしてください）。",
            "The chain is an older state (event {seq}) than the witness holds (event "
            "{witnessed}): rolled back, or restored from a backup (then re-anchor it).",
        ),
        "audit.witness_mismatch": (
            "連番 {seq} の監査記録が証人の記録と一致しません（偽造された末尾または書き換え）。",
            "Audit event {seq} does not match the witness (a forged tail or a rewritten chain).",
        ),
        "audit.witness_missing": (
            "署名付きチェックポイントがありますが、証人 {witness} に記録がありません。",
            "The chain has signed checkpoints but the witness ({witness}) holds none.",
        ),
        "audit.witness_bad_signature": (
            "証人の {line} 行目（連番 {seq}）の署名が無効です。",
            "Witness line {line} (event {seq}) has an invalid signature.",
        ),
        "audit.witness_unknown_key": (
            "証人の {line} 行目（連番 {seq}）の署名鍵 {key_id} が見つかりません。",
            "Witness line {line} (event {seq}) is signed with unknown key {key_id}.",
        ),
        "audit.witness_unreadable": (
            "証人 {witness} を読めません: {problem}",
            "The witness ({witness}) cannot be read: {problem}",
        ),
        "audit.witness_not_readable": (
            "証人 {witness} はここから読み戻せません。収集側の写しと照合してください"
            "（kodomo audit verify --witness FILE）。",
            "The witness ({witness}) cannot be read back from here; compare with the "
            "collector's copy (kodomo audit verify --witness FILE).",
        ),
        "audit.not_keyed": (
            "監査ログの連鎖に鍵がありません。`kodomo keys rotate --audit` で鍵を設定してください。",
            "The audit chain is not keyed; run `kodomo keys rotate --audit`.",
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

    type: str  # "staff" | "resident" | "system" | "anonymous"
    id: int | None = None  # a staff account id
    role: str | None = None
    organ_id: int | None = None
    person_id: str | None = None  # a resident's person id (consent_person.id)

    @classmethod
    def resident(cls, person_id: str) -> Actor:
        """A resident acting on the portal, named by their person id."""
        if not isinstance(person_id, str) or not 0 < len(person_id) <= 64:
            raise ValueError("a resident actor needs a person id of 1-64 characters")
        return cls("resident", person_id=person_id)


SYSTEM = Actor("system")


@dataclass(frozen=True)
class Signer:
    key_id: str
    private_key: Ed25519PrivateKey


@dataclass(frozen=True, slots=True)
class AppendedEvent:
    """The event `append` wrote, as plain values (the columns of AuditEvent).

    Not a table instance: building an SQLModel instance for the caller cost a fifth of an
    append, and nothing may change a written event anyway."""

    seq: int
    occurred_at: datetime
    actor_type: str
    actor_id: int | None
    role: str | None
    organ_id: int | None
    action: str
    target_type: str | None
    target_id: str | None
    purpose_id: int | None
    decision_id: str | None
    details: str
    prev_hash: str
    actor_person_id: str | None
    key_id: str | None
    hash: str


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
    witnessed: int = 0  # witness entries compared
    warnings: tuple[tuple[str, str], ...] = ()  # (ja, en)

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


def event_payload(
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
    actor_person_id: str | None = None,
    key_id: str | None = None,
) -> bytes:
    """The canonical bytes of an event (see `event_hash`)."""
    # Inline fast paths for the usual types (verify calls this a million times); anything
    # else goes through _json_value, so the bytes are json.dumps' bytes whatever the values.
    enc = _encode_str
    head = (
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
        f"{enc(prev_hash) if type(prev_hash) is str else _json_value(prev_hash)}"
    )
    if actor_person_id is None and key_id is None:
        return (head + "]").encode("utf-8")  # form v1
    return (  # form v2
        f"{head},{_json_value(actor_person_id)},{_json_value(key_id)}]"
    ).encode()


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
    actor_person_id: str | None = None,
    key_id: str | None = None,
    key: bytes | None = None,
) -> str:
    """The link of one event: HMAC-SHA256 under chain key `key_id` (form v2), or for the
    unkeyed events written before the chain was keyed, SHA-256 (form v1). Identical on every
    backend.

    Form v1 hashes the UTF-8 encoding of the compact JSON array

        [seq, "YYYY-MM-DDTHH:MM:SS.ffffffZ", actor_type, actor_id, role, organ_id, action,
         target_type, target_id, purpose_id, decision_id, <details>, prev_hash]

    with the time in UTC, strings escaped as ``json.dumps(..., ensure_ascii=False)`` does (so
    non-ASCII text is written as itself), integers in decimal, NULL as ``null``, separators
    ``,`` and ``:`` with no spaces, and ``<details>`` the stored details text spliced in
    verbatim. The details text is always written by `canonical_details` (keys sorted at every
    level, compact, non-ASCII unescaped), so for every event `append` writes these bytes equal
    ``json.dumps([seq, time, ..., json.loads(details), prev_hash], ensure_ascii=False,
    separators=(",", ":"))``; a row whose details text was edited in any way, even only in
    its spacing, no longer matches. Every column is read as a typed value (int, text,
    timestamp) and formatted here, never as the backend prints it, so SQLite and PostgreSQL
    hash the very same bytes.

    Form v2 (any event with a chain key or a resident actor) appends two elements to that
    array, ``actor_person_id`` (a resident's person id, or null) and ``key_id`` (or null):

        [..., <details>, prev_hash, actor_person_id, key_id]

    and the link is ``HMAC-SHA256(chain key, bytes)`` in lower-case hex when key_id is set
    (the key is in the keyring, never in the database), SHA-256 otherwise.
    """
    payload = event_payload(
        seq, occurred_at, actor_type, actor_id, role, organ_id, action, target_type,
        target_id, purpose_id, decision_id, details, prev_hash, actor_person_id, key_id,
    )
    if key_id is None:
        return hashlib.sha256(payload).hexdigest()
    if key is None:
        raise ValueError(f"event_hash: chain key {key_id!r} not given")
    return chain_mac(key).hexdigest(payload)


# Built once: statement construction is a measurable share of an append.
_LOCK_STATEMENT = text("SELECT pg_advisory_xact_lock(:key)")
_HEAD_STATEMENT = (
    select(col(AuditEvent.seq), col(AuditEvent.hash), col(AuditEvent.key_id))
    .order_by(col(AuditEvent.seq).desc())
    .limit(1)
)
_INSERT_STATEMENT = insert(_EVENT_TABLE)
_LAST_CHECKPOINT_STATEMENT = (
    select(col(AuditCheckpoint.seq), col(AuditCheckpoint.signed_at), col(AuditCheckpoint.note))
    .order_by(col(AuditCheckpoint.seq).desc(), col(AuditCheckpoint.id).desc())
    .limit(1)
)
KEYED_FROM_NEXT = "keyed_from_next"
HEAD = "head"


def _lock_chain(session: Session) -> None:
    # Through the session's connection, not session.execute: the ORM's statement handling
    # costs more than these statements on the hot path (every change appends an event).
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(_LOCK_STATEMENT, {"key": _PG_CHAIN_LOCK})
    # SQLite: every transaction begins IMMEDIATE (core.db), so writers are already serialised.


def _head(session: Session) -> tuple[int, str, str | None]:
    row = session.connection().execute(_HEAD_STATEMENT).first()
    return (0, GENESIS_HASH, None) if row is None else (row[0], row[1], row[2])


def checkpoint_message(
    seq: int, chain_hash: str, signed_at: str | None = None, note: str | None = None
) -> bytes:
    """The signed bytes: form v1 (seq and hash) when note is None, else form v2."""
    if note is None:
        return f"kodomo-audit-checkpoint:v1:{seq}:{chain_hash}".encode()
    return f"kodomo-audit-checkpoint:v2:{seq}:{chain_hash}:{signed_at}:{note}".encode()


def reanchor_message(seq: int, chain_hash: str, signed_at: str) -> bytes:
    return f"kodomo-audit-reanchor:v1:{seq}:{chain_hash}:{signed_at}".encode()


_checkpoint_every: int = 1000


def configure(*, checkpoint_every: int) -> None:
    """Set how often a checkpoint is signed (the app and CLI call this at start-up)."""
    global _checkpoint_every
    _checkpoint_every = checkpoint_every


def _signer() -> Signer:
    keyring = get_keyring()
    return Signer(keyring.audit_signing_kid, keyring.audit_private_key())


def public_keys() -> dict[str, Ed25519PublicKey]:
    """Checkpoint verification keys by key id: the active one and every retired one."""
    return get_keyring().audit_public_keys()


def _pending(session: Session) -> list[WitnessEntry]:
    pending: list[WitnessEntry] = session.info.setdefault("audit_witness", [])
    return pending


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
) -> AppendedEvent:
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
        "actor_person_id": actor.person_id,
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
    return AppendedEvent(**values)  # a copy for the caller, not tracked by the session


_PENDING = "kodomo.audit_pending"


def _not_yet_chained(fields: dict[str, Any]) -> AppendedEvent:
    """The copy returned for an event that waits: seq 0, no hashes (the chain decides them)."""
    return AppendedEvent(**{**fields, "occurred_at": fields["occurred_at"] or utcnow(),
                            "seq": 0, "prev_hash": "", "hash": "", "key_id": None})


def _chain(session: Session, pending: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Lock the chain, read its head and insert the events after it (in the caller's
    transaction), each link keyed with the active chain key; returns the last event's values."""
    if not pending:
        return {}
    # Write the caller's own changes first, so that the lock is held for the chain alone.
    session.flush()
    keyring = get_keyring()
    key_id = keyring.active_audit_chain_key
    key = None if key_id is None else keyring.audit_chain_keys[key_id]
    _lock_chain(session)
    prev_seq, prev_hash, prev_key_id = _head(session)
    if key_id is not None and prev_key_id is None and prev_seq > 0:
        _mark_keyed_from_next(session, prev_seq, prev_hash)
    values: dict[str, Any] = {}
    connection = session.connection()
    for fields in pending:
        values = {**fields, "seq": prev_seq + 1, "prev_hash": prev_hash, "key_id": key_id}
        values["occurred_at"] = fields["occurred_at"] or utcnow()
        values["hash"] = prev_hash = event_hash(**values, key=key)
        prev_seq = values["seq"]
        # A plain INSERT on the connection rather than session.add() + flush(): the ORM's
        # unit of work costs more than the statement itself on this hot path.
        connection.execute(_INSERT_STATEMENT, values)
        if prev_seq % _checkpoint_every == 0:
            _write_checkpoint(session, prev_seq, prev_hash)
    if "audit_appended" not in session.info:
        session.info["audit_appended"] = session.connection()
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


def _mark_keyed_from_next(session: Session, seq: int, chain_hash: str) -> None:
    """The upgrade in place: sign the unkeyed head as the point where keyed links begin."""
    exists = session.execute(
        select(col(AuditCheckpoint.id)).where(
            col(AuditCheckpoint.seq) == seq, col(AuditCheckpoint.note) == KEYED_FROM_NEXT
        )
    ).first()
    if exists is None:
        _write_checkpoint(session, seq, chain_hash, note=KEYED_FROM_NEXT)


def _signed_at_text(moment: datetime) -> str:
    return _time_text(as_utc(moment))


def _write_checkpoint(
    session: Session, seq: int, chain_hash: str, note: str = HEAD
) -> AuditCheckpoint:
    signer = _signer()
    signed_at = utcnow()
    signed_text = _signed_at_text(signed_at)
    signature = base64.b64encode(
        signer.private_key.sign(checkpoint_message(seq, chain_hash, signed_text, note))
    ).decode("ascii")
    checkpoint = AuditCheckpoint(
        seq=seq,
        hash=chain_hash,
        signed_at=signed_at,
        key_id=signer.key_id,
        signature=signature,
        note=note,
    )
    session.add(checkpoint)
    session.flush()
    # Written to the witness once the transaction commits (core.audit._after_commit).
    _pending(session).append(
        WitnessEntry("checkpoint", seq, chain_hash, signed_text, signer.key_id, signature, note)
    )
    if "audit_appended" not in session.info:
        session.info["audit_appended"] = session.connection()
    return checkpoint


def checkpoint_now(session: Session) -> AuditCheckpoint | None:
    """Sign the current head on demand; None when the chain is empty."""
    _lock_chain(session)
    seq, chain_hash, _key_id = _head(session)
    if seq == 0:
        return None
    return _write_checkpoint(session, seq, chain_hash)


def checkpoint_if_needed(session: Session) -> AuditCheckpoint | None:
    """Sign the head unless it is signed already (the end of a CLI command that wrote)."""
    _lock_chain(session)
    seq, chain_hash, _key_id = _head(session)
    last = session.execute(_LAST_CHECKPOINT_STATEMENT).first()
    if seq == 0 or (last is not None and last[0] >= seq):
        return None
    return _write_checkpoint(session, seq, chain_hash)


def checkpoint_if_due(
    session: Session, *, max_age: timedelta, now: datetime | None = None
) -> AuditCheckpoint | None:
    """Sign the head when the newest checkpoint is older than max_age and events came since.

    The hook for checkpoints by time: the scheduler (`kodomo scheduler`) calls it with
    ``timedelta(minutes=settings.audit_checkpoint_minutes)``.
    """
    now = as_utc(now or utcnow())
    _lock_chain(session)
    seq, chain_hash, _key_id = _head(session)
    last = session.execute(_LAST_CHECKPOINT_STATEMENT).first()
    if seq == 0 or (last is not None and last[0] >= seq):
        return None
    if last is not None and now - as_utc(last[1]) < max_age:
        return None
    return _write_checkpoint(session, seq, chain_hash)


# -- after the commit: the witness, and "this process wrote" --------------------------------

_wrote_events = False


def wrote_since_start() -> bool:
    """True once this process committed an audit event (the CLI signs its head at exit)."""
    return _wrote_events


def reset_wrote() -> None:
    global _wrote_events
    _wrote_events = False


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    global _wrote_events
    info = session.info
    connection = info.pop("audit_appended", None)
    pending = info.pop("audit_witness", None)
    # A session joined to an outer transaction (tests) only released a savepoint: the outer
    # transaction may still roll back, so nothing is witnessed for it.
    if connection is None or connection.in_transaction():
        return
    _wrote_events = True
    if pending:
        witness.write(pending)


@event.listens_for(Session, "after_rollback")
@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, *args: Any) -> None:
    session.info.pop("audit_appended", None)
    session.info.pop("audit_witness", None)


def checkpoint_after_command() -> None:
    """At the end of a CLI command that wrote audit events: sign the head, so that the
    witness covers everything the command did."""
    if not _wrote_events:
        return
    reset_wrote()
    try:
        with unit_of_work() as session:
            checkpoint_if_needed(session)
    except Exception:  # the command's own work is committed; say so, do not mask its result
        log.exception("could not sign the audit chain's head at the end of the command")
    finally:
        reset_wrote()


# -- re-anchoring after a restore -----------------------------------------------------------


def reanchor(connection: Connection) -> WitnessEntry:
    """A signed witness line that makes the database's current head the witnessed state.

    After a restore from backup the database is older than the witness and verify reports a
    rollback; once the restored chain verifies on its own, this line tells later verifies to
    compare with the witness from here on (the older lines stay, as the record of what was
    lost). The caller checks the chain first and records the re-anchoring as an event.
    """
    row = connection.execute(_HEAD_STATEMENT).first()
    seq, chain_hash = (0, GENESIS_HASH) if row is None else (row[0], row[1])
    signer = _signer()
    signed_text = _signed_at_text(utcnow())
    signature = base64.b64encode(
        signer.private_key.sign(reanchor_message(seq, chain_hash, signed_text))
    ).decode("ascii")
    entry = WitnessEntry("reanchor", seq, chain_hash, signed_text, signer.key_id, signature)
    witness.configured().append([entry])
    return entry


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
    AuditEvent.actor_person_id,
    AuditEvent.key_id,
    AuditEvent.hash,
)


def _batches(connection: Connection, batch: int, *, raw_time: bool = False
             ) -> Iterator[Sequence[Any]]:
    """The chain in sequence order, a list of rows at a time (a server-side cursor on PG).

    With raw_time, the time column comes as the driver returns it, without the column type's
    processing (SQLite: the stored text; PostgreSQL: psycopg's aware datetime)."""
    columns: list[Any] = [col(column) for column in _CHAIN_COLUMNS]
    if raw_time:
        columns[1] = type_coerce(
            col(AuditEvent.occurred_at),
            String() if connection.dialect.name == "sqlite" else DateTime(timezone=True),
        )
    # Options on the statement, not on the connection: Connection.execution_options() changes
    # the caller's connection for good, and a session that goes on after verify (the API
    # appends an event) would then run every statement through a server-side cursor.
    result = connection.execute(
        select(*columns).order_by(col(AuditEvent.seq)),
        execution_options={"stream_results": True, "yield_per": batch},
    )
    yield from result.partitions()


def _sqlite_time_text(dialect: Any) -> Callable[[Any], str]:
    """The canonical time text from the raw stored SQLite value: sliced when it is the text
    SQLAlchemy writes (what UtcDateTime would parse into the very same moment), otherwise
    parsed as the column type would and then formatted, as before."""
    processor = AuditEvent.__table__.c.occurred_at.type.result_processor(  # type: ignore[attr-defined]
        dialect, None
    )

    def parsed(raw: Any) -> str:
        return _time_text(processor(raw) if processor is not None else raw)

    return sqlite_time_text(parsed)


def _raw_batches(connection: Connection, batch: int, low: int | None = None,
                 high: int | None = None) -> Iterator[Sequence[Any]]:
    """The chain's rows with seq in [low, high] through the DB-API cursor: the same values as
    `_batches(raw_time=True)` without a SQLAlchemy Row per event (a sixth of verify's time)."""
    driver = connection.connection.driver_connection
    return read_rows(driver, connection.dialect.name == "postgresql", batch, low, high)


def _signature_ok(key: Ed25519PublicKey, signature: str, message: bytes) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True


# Below this many events one walk is quicker than starting a worker process.
PARALLEL_FROM = 200_000
_MAX_WORKERS = 4


def _segment_bounds(connection: Connection, total: int, workers: int | None,
                    parallel_from: int) -> list[tuple[int | None, int | None]]:
    """Seq ranges that cover every row whatever its seq: (-inf, b1], [b1+1, b2], …, [bk+1, inf).
    One range (no workers) for a short chain, an in-memory database or another backend."""
    if workers is None:
        workers = min(os.cpu_count() or 1, _MAX_WORKERS)
    url = connection.engine.url
    separate = connection.dialect.name == "postgresql" or (
        connection.dialect.name == "sqlite" and url.database not in (None, "", ":memory:")
        and "mode=memory" not in str(url))
    if workers < 2 or total < max(parallel_from, workers) or not separate:
        return [(None, None)]
    step = total // workers
    cuts = [step * i for i in range(1, workers)]
    return [(None, cuts[0]), *((c + 1, n) for c, n in itertools.pairwise(cuts)),
            (cuts[-1] + 1, None)]


def _segment_job(connection: Connection, low: int | None, high: int | None,
                 chain_keys: Mapping[str, bytes], must_be_keyed: bool, keyed_from: int,
                 wanted: Collection[int], batch: int) -> dict[str, Any]:
    url = connection.engine.url
    where: dict[str, Any]
    if connection.dialect.name == "postgresql":
        where = {"postgres": url.set(drivername="postgresql").render_as_string(
            hide_password=False)}
    else:
        where = {"sqlite": url.database, "uri": url.query.get("uri") == "true"}
    return {**where, "low": low, "high": high, "batch": batch,
            "keys": {kid: key.hex() for kid, key in chain_keys.items()},
            "must_be_keyed": must_be_keyed, "keyed_from": keyed_from,
            "wanted": sorted(seq for seq in wanted
                             if (low is None or seq >= low) and (high is None or seq <= high))}


def _start_segment(job: Mapping[str, Any]) -> subprocess.Popen[bytes]:
    """A worker process walking one segment (`python -m core.chain`); the job, chain keys
    included, goes through its stdin, never its command line."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "core.chain"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, env=environment)
    assert worker.stdin is not None
    worker.stdin.write(json.dumps(job).encode())
    worker.stdin.close()
    return worker


def _finish_segment(worker: subprocess.Popen[bytes]) -> dict[str, Any] | None:
    """The worker's result, or None when it failed (the caller walks the segment itself)."""
    assert worker.stdout is not None
    output = worker.stdout.read()
    if worker.wait() != 0:
        log.warning("an audit verify worker failed (exit %s); walking its segment here",
                    worker.returncode)
        return None
    result: dict[str, Any] = json.loads(output)
    return result


def _join(walked: Walk, segment: Mapping[str, Any], hashes_at: dict[int, str]) -> Walk:
    """The walk so far followed by a segment a worker walked: the segment's first row must
    come next and link to the walk's last, as in one walk; then the segment's own problem."""
    first_seq = segment["first_seq"]
    if first_seq is None:  # no rows in that range
        return walked
    expected = walked.expected_seq
    assert expected is not None
    problem: tuple[int, str, dict[str, Any]] | None = None
    if first_seq != expected:
        code = "audit.sequence_gap" if first_seq > expected else "audit.broken_link"
        problem = (first_seq, code, {"expected": expected})
    elif segment["first_prev"] != walked.prev_hash:
        problem = (first_seq, "audit.broken_link", {})
    if problem is not None:
        return Walk(expected, walked.prev_hash, problem=problem, problem_at=expected - 1)
    hashes_at.update((int(seq), value) for seq, value in segment["hashes_at"].items())
    found = segment["problem"]
    return Walk(segment["expected_seq"], segment["prev_hash"],
                problem=None if found is None else (found[0], found[1], found[2]),
                problem_at=segment["problem_at"])


def verify(
    connection: Connection,
    public_keys: Mapping[str, Ed25519PublicKey],
    *,
    chain_keys: Mapping[str, bytes] | None = None,
    witness_entries: Sequence[WitnessEntry] | None = None,
    witness_name: str = "",
    progress: Callable[[int, int], None] | None = None,
    batch: int = 50_000,
    workers: int | None = None,
    parallel_from: int = PARALLEL_FROM,
) -> VerifyReport:
    """Walk the chain from the start and name the first broken link, then check checkpoints,
    then compare with the witness (when its entries are given).

    `chain_keys` are the chain's HMAC keys by id (default: the keyring's). When the keyring
    holds chain keys, every event after the signed 'keyed_from_next' checkpoint (or every
    event, when there is none) must be keyed: an unkeyed event there is a forgery.

    A chain of `parallel_from` events or more is walked in `workers` segments at once (default:
    one per CPU, at most 4); each link is checked exactly as in one walk from the start.
    """
    if chain_keys is None:
        chain_keys = get_keyring().audit_chain_keys
    total = connection.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    # Checkpoints are read before the events: a checkpoint is committed with (or after) the
    # event it signs, so every checkpoint seen here has its events in the later read, even on
    # PostgreSQL at READ COMMITTED while writers keep appending. Read after the events, a
    # checkpoint written meanwhile would look like a truncated or mismatched chain.
    checkpoints = connection.execute(
        select(AuditCheckpoint).order_by(col(AuditCheckpoint.seq), col(AuditCheckpoint.id))
    ).all()
    witness_list = list(witness_entries or ())
    wanted = {cp.seq for cp in checkpoints} | {e.seq for e in witness_list}
    # Where keyed links begin: after the first 'keyed_from_next' checkpoint (its signature is
    # checked below with the others); no such checkpoint: from the first event.
    keyed_marks = [cp.seq for cp in checkpoints if cp.note == KEYED_FROM_NEXT]
    keyed_from = (min(keyed_marks) + 1) if keyed_marks else 1
    must_be_keyed = bool(chain_keys)
    hashes_at: dict[int, str] = {}
    sqlite = connection.dialect.name == "sqlite"
    time_text = _sqlite_time_text(connection.dialect) if sqlite else _time_text
    macs = {kid: ChainMac(key) for kid, key in chain_keys.items()}

    def after_batch(done: int) -> None:
        if progress is not None:
            progress(done, total)

    def walk_rows(batches: Iterator[Sequence[Any]], state: Walk) -> Walk:
        try:
            return walk(batches, state, macs=macs, must_be_keyed=must_be_keyed,
                        keyed_from=keyed_from, wanted=wanted, hashes_at=hashes_at,
                        time_text=time_text, after_batch=after_batch)
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    # A long chain is cut into segments by seq; workers walk all but the first while this
    # process walks the first, then the segments' ends are joined in order (_join).
    bounds = _segment_bounds(connection, total, workers, parallel_from)
    jobs = [_segment_job(connection, low, high, chain_keys, must_be_keyed, keyed_from, wanted,
                         batch) for low, high in bounds[1:]]
    running = [_start_segment(job) for job in jobs]
    try:
        if connection.dialect.name in ("sqlite", "postgresql"):
            first = _raw_batches(connection, batch, None, bounds[0][1])
        else:
            first = _batches(connection, batch, raw_time=True)
        walked = walk_rows(first, Walk(1, GENESIS_HASH))
        for (low, high), worker in zip(bounds[1:], running, strict=True):
            if walked.problem is not None:
                break
            segment = _finish_segment(worker)
            if segment is None:  # the worker failed: walk its segment here instead
                walked = walk_rows(_raw_batches(connection, batch, low, high), walked)
                continue
            walked = _join(walked, segment, hashes_at)
            after_batch(walked.verified)
    finally:
        for worker in running:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    if walked.problem is not None:
        seq, code, params = walked.problem
        return VerifyReport(walked.problem_at, 0, _problem(seq, code, **params))
    checked = walked.verified
    if progress is not None:
        progress(checked, total)
    last_seq = checked

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
        signed_at = None if cp.note is None else _signed_at_text(cp.signed_at)
        if not _signature_ok(key, cp.signature, checkpoint_message(cp.seq, cp.hash, signed_at,
                                                                   cp.note)):
            return VerifyReport(checked, 0, _problem(cp.seq, "audit.checkpoint_bad_signature"))
        if hashes_at.get(cp.seq) != cp.hash:
            return VerifyReport(checked, 0, _problem(cp.seq, "audit.checkpoint_mismatch"))

    warnings: list[tuple[str, str]] = []
    if not must_be_keyed:
        warnings.append(messages.both("audit.not_keyed"))
    if witness_entries is None:
        return VerifyReport(checked, len(checkpoints), None, 0, tuple(warnings))
    problem = _compare_with_witness(
        witness_list, checkpoints, hashes_at, last_seq, public_keys, witness_name
    )
    return VerifyReport(checked, len(checkpoints), problem, len(witness_list), tuple(warnings))


def verify_against_witness(
    connection: Connection,
    *,
    sink: witness.Witness | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """`verify` with every known key and the configured witness (or `sink`): what
    `kodomo audit verify` and the auditor's pages run. An unreadable witness is the problem."""
    sink = sink or witness.configured()
    try:
        entries = sink.read()
    except witness.WitnessError as error:
        return VerifyReport(
            0, 0, _problem(0, "audit.witness_unreadable", witness=sink.describe(),
                           problem=error.problem)
        )
    report = verify(connection, public_keys(), witness_entries=entries,
                    witness_name=sink.describe(), progress=progress)
    if entries is None:
        note = messages.both("audit.witness_not_readable", witness=sink.describe())
        report = dataclasses.replace(report, warnings=(*report.warnings, note))
    return report


def _compare_with_witness(
    entries: Sequence[WitnessEntry],
    checkpoints: Sequence[Any],
    hashes_at: Mapping[int, str],
    last_seq: int,
    public_keys: Mapping[str, Ed25519PublicKey],
    witness_name: str,
) -> ChainProblem | None:
    """The database against the witness: nothing it saw may be missing, older or different."""
    start = 0
    for line, entry in enumerate(entries, start=1):
        key = public_keys.get(entry.key_id)
        if key is None:
            return _problem(entry.seq, "audit.witness_unknown_key", line=line, key_id=entry.key_id)
        message = (
            reanchor_message(entry.seq, entry.hash, entry.signed_at)
            if entry.kind == "reanchor"
            else checkpoint_message(entry.seq, entry.hash, entry.signed_at, entry.note)
        )
        if not _signature_ok(key, entry.signature, message):
            return _problem(entry.seq, "audit.witness_bad_signature", line=line)
        if entry.kind == "reanchor":
            start = line - 1  # compare from the newest re-anchoring on
    current = entries[start:]
    signed_v2 = any(cp.note is not None for cp in checkpoints)
    if not current:
        if signed_v2:
            return _problem(last_seq, "audit.witness_missing", witness=witness_name)
        return None
    newest = max(current, key=lambda e: e.seq)
    if newest.seq > last_seq:
        # Behind the witness. A database whose own newest checkpoint is one the witness saw
        # is an older, consistent state (a rollback or a restore); otherwise the tail was cut.
        db_newest = checkpoints[-1] if checkpoints else None
        seen = {(e.seq, e.hash) for e in current}
        if db_newest is not None and (db_newest.seq, db_newest.hash) in seen:
            return _problem(last_seq, "audit.witness_rollback", witnessed=newest.seq)
        return _problem(last_seq, "audit.witness_cut_tail", witnessed=newest.seq)
    for entry in current:
        if entry.seq == 0 and entry.hash == GENESIS_HASH:
            continue
        if hashes_at.get(entry.seq) != entry.hash:
            return _problem(entry.seq, "audit.witness_mismatch")
    return None


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
