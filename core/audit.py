"""The audit chain: append events in the caller's transaction, sign checkpoints, verify the chain."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection
from sqlmodel import Session

from core import messages
from core.clock import as_utc, utcnow
from core.keys import get_keyring
from core.models import AuditCheckpoint, AuditEvent

GENESIS_HASH = "0" * 64
# Any constant works; it names the advisory lock that serialises appends on PostgreSQL.
_PG_CHAIN_LOCK = 0x6B6F646F6D6F
_MAX_DETAIL_TEXT = 200

messages.register(
    {
        "audit.verified": (
            "監査ログを検証しました: {events} 件の記録と {checkpoints} 件の署名付きチェックポイントに問題はありません。",
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
            "監査記録が連番 {seq} で途切れていますが、チェックポイントは連番 {checkpoint} まであります。",
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
            _check_detail_value(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_detail_value(item, f"{path}[{index}]")
    elif isinstance(value, str):
        if len(value) > _MAX_DETAIL_TEXT:
            raise ValueError(f"audit detail {path} is longer than {_MAX_DETAIL_TEXT} characters")
    elif value is not None and not isinstance(value, bool | int | float):
        raise TypeError(f"audit detail {path} has unsupported type {type(value).__name__}")


def canonical_details(details: Mapping[str, Any] | None) -> str:
    data = dict(details or {})
    _check_detail_value(data, "details")
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _time_text(moment: datetime) -> str:
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
    """SHA-256 of the canonical JSON of the typed columns, identical on every backend."""
    payload = json.dumps(
        [
            seq,
            _time_text(occurred_at),
            actor_type,
            actor_id,
            role,
            organ_id,
            action,
            target_type,
            target_id,
            purpose_id,
            decision_id,
            json.loads(details),
            prev_hash,
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _lock_chain(session: Session) -> None:
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_CHAIN_LOCK})
    # SQLite: every transaction begins IMMEDIATE (core.db), so writers are already serialised.


def _head(session: Session) -> tuple[int, str]:
    row = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)  # type: ignore[attr-defined]
    ).first()
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
    """Add one event to the chain inside the caller's transaction (it commits with the change)."""
    details_text = canonical_details(details)
    _lock_chain(session)
    prev_seq, prev_hash = _head(session)
    seq = prev_seq + 1
    occurred_at = as_utc(at or utcnow())
    target = None if target_id is None else str(target_id)
    digest = event_hash(
        seq,
        occurred_at,
        actor.type,
        actor.id,
        actor.role,
        actor.organ_id,
        action,
        target_type,
        target,
        purpose_id,
        decision_id,
        details_text,
        prev_hash,
    )
    event = AuditEvent(
        seq=seq,
        occurred_at=occurred_at,
        actor_type=actor.type,
        actor_id=actor.id,
        role=actor.role,
        organ_id=actor.organ_id,
        action=action,
        target_type=target_type,
        target_id=target,
        purpose_id=purpose_id,
        decision_id=decision_id,
        details=details_text,
        prev_hash=prev_hash,
        hash=digest,
    )
    session.add(event)
    session.flush()
    if seq % _checkpoint_every == 0:
        _write_checkpoint(session, seq, digest)
    return event


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


def _stream(connection: Connection, batch: int) -> Iterator[Any]:
    result = connection.execution_options(stream_results=True, yield_per=batch).execute(
        select(
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
        ).order_by(AuditEvent.seq)  # type: ignore[arg-type]
    )
    yield from result


def verify(
    connection: Connection,
    public_keys: Mapping[str, Ed25519PublicKey],
    *,
    progress: Callable[[int, int], None] | None = None,
    batch: int = 20_000,
) -> VerifyReport:
    """Walk the chain from the start and name the first broken link, then check checkpoints."""
    total = connection.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    hashes_at_checkpoints: dict[int, str] = {}
    checkpoint_seqs = {
        seq
        for (seq,) in connection.execute(select(AuditCheckpoint.seq))  # type: ignore[call-overload]
    }
    expected_seq = 1
    prev_hash = GENESIS_HASH
    checked = 0
    for row in _stream(connection, batch):
        seq = row[0]
        if seq != expected_seq:
            problem_code = "audit.sequence_gap" if seq > expected_seq else "audit.broken_link"
            return VerifyReport(checked, 0, _problem(seq, problem_code, expected=expected_seq))
        if row[12] != prev_hash:
            return VerifyReport(checked, 0, _problem(seq, "audit.broken_link"))
        if event_hash(*row[:13]) != row[13]:
            return VerifyReport(checked, 0, _problem(seq, "audit.hash_mismatch"))
        if seq in checkpoint_seqs:
            hashes_at_checkpoints[seq] = row[13]
        prev_hash = row[13]
        expected_seq += 1
        checked += 1
        if progress is not None and checked % batch == 0:
            progress(checked, total)
    if progress is not None:
        progress(checked, total)
    last_seq = expected_seq - 1

    checkpoints = connection.execute(
        select(AuditCheckpoint).order_by(AuditCheckpoint.seq)  # type: ignore[arg-type]
    ).all()
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
    query = select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(limit + 1)  # type: ignore[attr-defined]
    if before is not None:
        query = query.where(AuditEvent.seq < before)
    if action:
        query = query.where(AuditEvent.action == action)
    if purpose_id is not None:
        query = query.where(AuditEvent.purpose_id == purpose_id)
    rows = list(session.execute(query).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return EventPage(rows, rows[-1].seq if more and rows else None)


def decode_details(event: AuditEvent) -> dict[str, Any]:
    value = json.loads(event.details)
    return value if isinstance(value, dict) else {}
