"""Field encryption (AES-256-GCM with key ids), keyed hashes, and key rotation in the database."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import (
    Column,
    MetaData,
    Table,
    Text,
    bindparam,
    func,
    select,
    text,
    tuple_,
    type_coerce,
)
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

from core.keys import (
    Keyring,
    KeyringError,
    UnknownKeyId,
    backup_keyring,
    get_keyring,
    load_keyring,
    reset_keyring_cache,
    save_keyring,
)
from core.settings import get_settings

log = logging.getLogger(__name__)

FIELD_FORMAT = "v1"
NONCE_BYTES = 12  # the GCM standard nonce; random nonces are safe far beyond our volumes
DEFAULT_BATCH_SIZE = 500

# Column.info keys that mark a keyed-hash column and say how to recompute it.
KEYED_HASH_OF = "keyed_hash_of"
HASH_PURPOSE = "hash_purpose"
HASH_NORMALISE = "hash_normalise"


class CryptoError(ValueError):
    """A stored value cannot be decrypted; the message never contains the value."""


class TamperedValue(CryptoError):
    """The ciphertext, its key id or its context does not authenticate."""


class KeyRotationError(RuntimeError):
    """Rotation cannot proceed; nothing was saved and the caller must roll back."""


# -- field encryption -----------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _aad(kid: str, context: str) -> bytes:
    # The key id is authenticated too, so a token cannot be relabelled to another key, and
    # the context binds a value to its column: a name copied into an address field fails.
    if not context:
        raise ValueError("an encryption context is required, e.g. 'consent_person.name'")
    return f"{FIELD_FORMAT}.{kid}.{context}".encode()


def token_kid(token: str) -> str:
    """The key id a stored token was encrypted under."""
    parts = token.split(".", 2)
    if len(parts) != 3 or parts[0] != FIELD_FORMAT or not parts[1]:
        raise CryptoError(f"not a {FIELD_FORMAT} field token")
    return parts[1]


def encrypt_field(plaintext: str, *, context: str, keyring: Keyring | None = None) -> str:
    """Encrypt under the active field key: "v1.<kid>.<base64url(nonce||ciphertext)>"."""
    ring = keyring or get_keyring()
    kid, key = ring.active_field()
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), _aad(kid, context))
    return f"{FIELD_FORMAT}.{kid}.{_b64url(nonce + sealed)}"


def decrypt_field(token: str, *, context: str, keyring: Keyring | None = None) -> str:
    """Decrypt a token made by encrypt_field with the same context; refuses any tampering."""
    kid = token_kid(token)
    ring = keyring or get_keyring()
    try:
        key = ring.field_key(kid)
    except UnknownKeyId:
        raise CryptoError(
            f"field value encrypted under key id {kid!r}, which the keyring "
            "(KODOMO_KEY_FILE) does not hold"
        ) from None
    body = token.split(".", 2)[2]
    try:
        blob = _unb64url(body)
    except (binascii.Error, ValueError):
        blob = b""
    # Only the canonical encoding is accepted: otherwise the unused low bits of the last
    # character could be changed and the altered token would still be taken as genuine.
    if not blob or _b64url(blob) != body:
        raise TamperedValue(f"field value under key id {kid!r} is not canonical base64url")
    if len(blob) < NONCE_BYTES + 16:
        raise TamperedValue(f"field value under key id {kid!r} is truncated")
    try:
        plain = AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _aad(kid, context))
    except InvalidTag:
        raise TamperedValue(
            f"field value under key id {kid!r} does not authenticate for context "
            f"{context!r}: altered, or stored in another column"
        ) from None
    return plain.decode("utf-8")


# -- keyed hashes ---------------------------------------------------------------------------


def _mac(key: bytes, value: str, purpose: str) -> str:
    if not purpose or "\x00" in purpose:
        raise ValueError("a keyed hash needs a purpose without NUL, e.g. 'consent.atena_no'")
    # The purpose is a prefix, so equal values hashed for different purposes cannot be
    # linked by comparing hashes; NUL cannot occur in the purpose, so prefixes cannot collide.
    message = b"kodomo.keyed_hash.v1\x00" + purpose.encode() + b"\x00" + value.encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def keyed_hash(value: str, *, purpose: str, keyring: Keyring | None = None) -> str:
    """HMAC-SHA256 under the active HMAC key: "<kid>.<hex>". Normalise value before calling."""
    ring = keyring or get_keyring()
    kid, key = ring.active_hmac()
    return f"{kid}.{_mac(key, value, purpose)}"


def keyed_hash_candidates(value: str, purpose: str, *, keyring: Keyring | None = None) -> list[str]:
    """The hash under every HMAC key held, active first: match with `column IN (...)`."""
    ring = keyring or get_keyring()
    kids = [ring.active_hmac_key, *sorted(set(ring.hmac_keys) - {ring.active_hmac_key})]
    return [f"{kid}.{_mac(ring.hmac_keys[kid], value, purpose)}" for kid in kids]


def keyed_hash_info(
    source: str, purpose: str, normalise: Callable[[str], str] | None = None
) -> dict[str, Any]:
    """Column.info for a keyed-hash column that rotation recomputes from `source`.

    The hash must be of exactly normalise(plaintext of source), or rotation would produce
    hashes that lookups no longer find.
    """
    info: dict[str, Any] = {KEYED_HASH_OF: source, HASH_PURPOSE: purpose}
    if normalise is not None:
        info[HASH_NORMALISE] = normalise
    return info


# -- the column type ------------------------------------------------------------------------


class EncryptedText(TypeDecorator[str]):
    """A str column stored as an encrypted token; never filter or sort on it (use a keyed hash)."""

    impl = Text
    cache_ok = True

    def __init__(self, context: str) -> None:
        super().__init__()
        if not context:
            raise ValueError("EncryptedText needs a context, e.g. 'consent_person.name'")
        self.context = context

    def __repr__(self) -> str:
        return f"EncryptedText({self.context!r})"

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return encrypt_field(value, context=self.context)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return decrypt_field(value, context=self.context)


# -- rotation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _HashColumn:
    name: str
    source: str
    purpose: str
    normalise: Callable[[str], str] | None


@dataclass(frozen=True)
class _TablePlan:
    table: Table
    encrypted: Mapping[str, str]  # column name -> context
    hashed: Sequence[_HashColumn]

    @property
    def primary_key(self) -> list[Column[Any]]:
        return list(self.table.primary_key.columns)


@dataclass(frozen=True)
class RotationReport:
    """What rotate_keys did; `keyring` is the new keyring to save once the session commits."""

    keyring: Keyring
    new_field_kid: str
    new_hmac_kid: str
    retired_field_kids: frozenset[str]
    retired_hmac_kids: frozenset[str]
    tables: tuple[str, ...]
    rows: int
    values_reencrypted: int
    hashes_recomputed: int


def _plan(metadata: MetaData) -> list[_TablePlan]:
    plans: list[_TablePlan] = []
    for table in metadata.sorted_tables:
        encrypted = {
            column.name: column.type.context
            for column in table.columns
            if isinstance(column.type, EncryptedText)
        }
        hashed: list[_HashColumn] = []
        for column in table.columns:
            source = column.info.get(KEYED_HASH_OF)
            if source is None:
                continue
            purpose = column.info.get(HASH_PURPOSE)
            if not isinstance(purpose, str) or not purpose:
                raise KeyRotationError(f"{table.name}.{column.name}: {HASH_PURPOSE} is missing")
            if source not in table.columns:
                raise KeyRotationError(
                    f"{table.name}.{column.name}: {KEYED_HASH_OF} names {source!r}, "
                    "which is not a column of the table"
                )
            hashed.append(
                _HashColumn(column.name, source, purpose, column.info.get(HASH_NORMALISE))
            )
        if not encrypted and not hashed:
            continue
        if not table.primary_key.columns:
            raise KeyRotationError(f"{table.name}: rotation pages by primary key; it has none")
        plans.append(_TablePlan(table, encrypted, hashed))
    return plans


def _lock_tables(conn: Connection, plans: Sequence[_TablePlan]) -> None:
    # PostgreSQL: readers go on, writers wait until the commit, so no row is written under
    # a retiring key while its table is being re-encrypted. SQLite: core.db's engine begins
    # IMMEDIATE, which already holds the database's one write lock until the commit.
    if conn.dialect.name != "postgresql":
        return
    preparer = conn.dialect.identifier_preparer
    for plan in plans:
        conn.execute(text(f"LOCK TABLE {preparer.format_table(plan.table)} IN EXCLUSIVE MODE"))


def _rotate_table(
    conn: Connection,
    plan: _TablePlan,
    ring: Keyring,
    batch_size: int,
    on_batch: Callable[[int], None],
) -> tuple[int, int, int]:
    table = plan.table
    pk = plan.primary_key
    hash_sources = {h.source for h in plan.hashed}
    read_names = sorted(set(plan.encrypted) | hash_sources)
    # Raw stored text, bypassing EncryptedText, which would decrypt with the process keyring.
    read_cols = [
        type_coerce(table.c[name], Text).label(name) if name in plan.encrypted else table.c[name]
        for name in read_names
    ]
    pk_key = tuple_(*pk) if len(pk) > 1 else pk[0]

    write_names = [*plan.encrypted, *(h.name for h in plan.hashed)]
    update = (
        table.update()
        .where(*(col == bindparam(f"pk_{i}") for i, col in enumerate(pk)))
        .values({name: bindparam(f"new_{name}", type_=Text) for name in write_names})
    )

    rows = reencrypted = rehashed = 0
    last: tuple[Any, ...] | None = None
    while True:
        query = select(*pk, *read_cols).order_by(*pk).limit(batch_size)
        if last is not None:
            query = query.where(pk_key > (tuple_(*last) if len(pk) > 1 else last[0]))
        batch = conn.execute(query).all()
        if not batch:
            break
        params: list[dict[str, Any]] = []
        for row in batch:
            mapping = row._mapping
            key_values = tuple(mapping[col.name] for col in pk)
            plain: dict[str, str | None] = {}
            for name in read_names:
                stored = mapping[name]
                if stored is None or name not in plan.encrypted:
                    plain[name] = None if stored is None else str(stored)
                    continue
                try:
                    plain[name] = decrypt_field(stored, context=plan.encrypted[name], keyring=ring)
                except CryptoError as exc:
                    raise KeyRotationError(f"{table.name}.{name} at {key_values}: {exc}") from None
            values: dict[str, Any] = {f"pk_{i}": v for i, v in enumerate(key_values)}
            for name, context in plan.encrypted.items():
                value = plain[name]
                values[f"new_{name}"] = (
                    None if value is None else encrypt_field(value, context=context, keyring=ring)
                )
                reencrypted += value is not None
            for hashed in plan.hashed:
                source = plain[hashed.source]
                if source is not None and hashed.normalise is not None:
                    source = hashed.normalise(source)
                values[f"new_{hashed.name}"] = (
                    None
                    if source is None
                    else keyed_hash(source, purpose=hashed.purpose, keyring=ring)
                )
                rehashed += source is not None
            params.append(values)
        conn.execute(update, params)
        rows += len(batch)
        on_batch(len(batch))
        last = tuple(batch[-1]._mapping[col.name] for col in pk)
    return rows, reencrypted, rehashed


def rotate_keys(
    session: Session,
    metadata: MetaData,
    *,
    progress: Callable[[int, int], None] | None = None,
    keyring: Keyring | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> RotationReport:
    """Re-encrypt and re-hash every protected column under new keys, inside the session.

    Nothing is committed or saved here. The order that loses nothing is commit_rotation's:
    save old+new keys, commit, then save report.keyring (new keys only). `metadata` must hold
    every table with an EncryptedText or keyed-hash column (SQLModel.metadata), because the
    retired keys are dropped afterwards. Run it with the service's writers stopped: a process
    that still encrypts under a retired key in the meantime writes values nobody can read.
    """
    # The working keyring holds the old keys (to decrypt) and the new ones (active).
    new = (keyring or get_keyring()).with_new_field_key().with_new_hmac_key()
    plans = _plan(metadata)
    # Pending ORM changes are written first (under the current key), so the scan sees them;
    # the work itself is core SQL on the session's connection, in the session's transaction.
    session.flush()
    conn = session.connection()
    _lock_tables(conn, plans)
    totals = [
        conn.execute(select(func.count()).select_from(plan.table)).scalar_one() for plan in plans
    ]
    total = sum(totals)
    done = 0

    def on_batch(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, total)

    if progress is not None:
        progress(0, total)
    rows = reencrypted = rehashed = 0
    for plan in plans:
        r, e, h = _rotate_table(conn, plan, new, batch_size, on_batch)
        rows, reencrypted, rehashed = rows + r, reencrypted + e, rehashed + h
    retired_field, retired_hmac = new.retired()
    return RotationReport(
        keyring=new.without_retired_keys(),
        new_field_kid=new.active_field_key,
        new_hmac_kid=new.active_hmac_key,
        retired_field_kids=retired_field,
        retired_hmac_kids=retired_hmac,
        tables=tuple(plan.table.name for plan in plans),
        rows=rows,
        values_reencrypted=reencrypted,
        hashes_recomputed=rehashed,
    )


def commit_rotation(
    session: Session, keyring: Keyring, path: Path | str | None = None
) -> Path | None:
    """Make a rotation durable without a window in which data and keys disagree.

    1. back the current file up to keys.json.bak-<timestamp>;
    2. save current + new keys (new ones active), so the new keys exist before any data
       depends on them and the old data stays readable if the commit fails;
    3. commit the session;
    4. save the new keyring alone, retiring the old keys.
    If step 4 fails the file still holds every key and the rotation can simply be re-run.
    Returns the backup path.
    """
    path = Path(path) if path is not None else get_settings().effective_key_file
    current = load_keyring(path)
    backup = backup_keyring(path)
    save_keyring(current.merged_with(keyring), path)
    reset_keyring_cache()
    session.commit()
    try:
        save_keyring(keyring, path)
    except OSError as exc:
        raise KeyringError(
            f"rotation committed, but retiring the old keys in {path} failed ({exc}); the file "
            "still holds old and new keys and works; re-run the rotation to retire them"
        ) from exc
    finally:
        reset_keyring_cache()
    log.info("key rotation committed; backup of the previous keyring at %s", backup)
    return backup
