"""The keyring: field, keyed-hash and signing keys, kept in a JSON file outside the database."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from core.settings import SettingsError, get_settings

log = logging.getLogger(__name__)

KEY_FILE_VARIABLE = "KODOMO_KEY_FILE"
FORMAT_VERSION = 1
FIELD_KEY_BYTES = 32  # AES-256
HMAC_KEY_BYTES = 32  # as long as the SHA-256 output; longer adds nothing
# Key ids end up inside every stored ciphertext and keyed hash, where "." separates the
# parts, so they are kept short and free of separators.
KID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Other processes notice a rotated keyring file within this many seconds.
RECHECK_SECONDS = 1.0


class KeyringError(SettingsError):
    """The keyring file is missing or wrong; the message names KODOMO_KEY_FILE and the problem."""

    def __init__(self, problem: str) -> None:
        super().__init__(KEY_FILE_VARIABLE, problem)


class UnknownKeyId(KeyringError):
    """A stored value names a key id that the keyring does not hold."""

    def __init__(self, kind: str, kid: str) -> None:
        self.kind = kind
        self.kid = kid
        super().__init__(f"no {kind} key with id {kid!r} in the keyring")


def new_kid(prefix: str) -> str:
    """A fresh key id: prefix, UTC date, random suffix (dates make the file readable)."""
    return f"{prefix}-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(4)}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True, repr=False)
class Keyring:
    """Every key the service holds; immutable, so a rotation builds a new one."""

    field_keys: Mapping[str, bytes]
    active_field_key: str
    hmac_keys: Mapping[str, bytes]
    active_hmac_key: str
    audit_signing_kid: str
    audit_signing_key: bytes
    receipt_signing_kid: str
    receipt_signing_pem: str
    # The audit chain's HMAC keys (never dropped: every keyed event names its key) and the
    # active one; None in a keyring made before the chain was keyed (`keys rotate --audit`).
    audit_chain_keys: Mapping[str, bytes] = field(default_factory=dict)
    active_audit_chain_key: str | None = None
    # Public keys of retired signing keys, kept so that old checkpoints and receipts verify:
    # raw 32-byte Ed25519 public keys, and SubjectPublicKeyInfo PEM (P-256) respectively.
    audit_signing_retired: Mapping[str, bytes] = field(default_factory=dict)
    receipt_signing_retired: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Copies behind read-only views, so a caller's dict cannot change a frozen keyring.
        for name in (
            "field_keys",
            "hmac_keys",
            "audit_chain_keys",
            "audit_signing_retired",
            "receipt_signing_retired",
        ):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        problems = _problems(self)
        if problems:
            raise KeyringError("; ".join(problems))

    def __repr__(self) -> str:
        # Key ids only: a keyring must be safe to log or show in a traceback.
        return (
            f"Keyring(field_keys={sorted(self.field_keys)}, "
            f"active_field_key={self.active_field_key!r}, "
            f"hmac_keys={sorted(self.hmac_keys)}, active_hmac_key={self.active_hmac_key!r}, "
            f"audit_signing_kid={self.audit_signing_kid!r}, "
            f"receipt_signing_kid={self.receipt_signing_kid!r}, "
            f"audit_chain_keys={sorted(self.audit_chain_keys)}, "
            f"active_audit_chain_key={self.active_audit_chain_key!r}, "
            f"audit_signing_retired={sorted(self.audit_signing_retired)}, "
            f"receipt_signing_retired={sorted(self.receipt_signing_retired)})"
        )

    __str__ = __repr__

    # -- symmetric keys ------------------------------------------------------------------

    def field_key(self, kid: str) -> bytes:
        try:
            return self.field_keys[kid]
        except KeyError:
            raise UnknownKeyId("field", kid) from None

    def active_field(self) -> tuple[str, bytes]:
        return self.active_field_key, self.field_keys[self.active_field_key]

    def hmac_key(self, kid: str) -> bytes:
        try:
            return self.hmac_keys[kid]
        except KeyError:
            raise UnknownKeyId("hmac", kid) from None

    def active_hmac(self) -> tuple[str, bytes]:
        return self.active_hmac_key, self.hmac_keys[self.active_hmac_key]

    # -- signing keys --------------------------------------------------------------------

    def audit_private_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.audit_signing_key)

    def audit_public_key(self) -> Ed25519PublicKey:
        return self.audit_private_key().public_key()

    def receipt_private_key(self) -> ec.EllipticCurvePrivateKey:
        key = serialization.load_pem_private_key(self.receipt_signing_pem.encode(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)  # checked in __post_init__
        return key

    def receipt_public_key(self) -> ec.EllipticCurvePublicKey:
        return self.receipt_private_key().public_key()

    def audit_public_keys(self) -> dict[str, Ed25519PublicKey]:
        """Every checkpoint verification key by id: the active one and the retired ones."""
        keys = {
            kid: Ed25519PublicKey.from_public_bytes(raw)
            for kid, raw in self.audit_signing_retired.items()
        }
        keys[self.audit_signing_kid] = self.audit_public_key()
        return keys

    def receipt_public_pems(self) -> dict[str, str]:
        """Every receipt verification key by id (PEM): the active one and the retired ones."""
        keys = dict(self.receipt_signing_retired)
        keys[self.receipt_signing_kid] = _public_pem(self.receipt_public_key())
        return keys

    def audit_chain_key(self, kid: str) -> bytes:
        try:
            return self.audit_chain_keys[kid]
        except KeyError:
            raise UnknownKeyId("audit chain", kid) from None

    # -- rotation ------------------------------------------------------------------------

    def with_new_field_key(self) -> Keyring:
        """A copy holding a fresh field key, made active; the old ones stay for decryption."""
        kid = new_kid("fk")
        keys = {**self.field_keys, kid: secrets.token_bytes(FIELD_KEY_BYTES)}
        return replace(self, field_keys=keys, active_field_key=kid)

    def with_new_hmac_key(self) -> Keyring:
        kid = new_kid("hk")
        keys = {**self.hmac_keys, kid: secrets.token_bytes(HMAC_KEY_BYTES)}
        return replace(self, hmac_keys=keys, active_hmac_key=kid)

    def with_new_audit_keys(self) -> Keyring:
        """A fresh chain key and signing key, made active; the old chain keys stay (old events
        are verified with them, never re-hashed) and the old signing key's public half is kept
        for the checkpoints it signed."""
        chain_kid = new_kid("ck")
        retired = {
            **self.audit_signing_retired,
            self.audit_signing_kid: _raw_public(self.audit_public_key()),
        }
        return replace(
            self,
            audit_chain_keys={**self.audit_chain_keys, chain_kid: secrets.token_bytes(32)},
            active_audit_chain_key=chain_kid,
            audit_signing_kid=new_kid("ak"),
            audit_signing_key=_new_ed25519(),
            audit_signing_retired=retired,
        )

    def with_new_receipt_key(self) -> Keyring:
        """A fresh receipt key, made active; the old public key stays in JWKS and verification."""
        retired = {
            **self.receipt_signing_retired,
            self.receipt_signing_kid: _public_pem(self.receipt_public_key()),
        }
        return replace(
            self,
            receipt_signing_kid=new_kid("rk"),
            receipt_signing_pem=_new_p256_pem(),
            receipt_signing_retired=retired,
        )

    def retired(self) -> tuple[frozenset[str], frozenset[str]]:
        """The field and HMAC key ids that are held but not active."""
        return (
            frozenset(self.field_keys) - {self.active_field_key},
            frozenset(self.hmac_keys) - {self.active_hmac_key},
        )

    def without_retired_keys(self) -> Keyring:
        return replace(
            self,
            field_keys={self.active_field_key: self.field_keys[self.active_field_key]},
            hmac_keys={self.active_hmac_key: self.hmac_keys[self.active_hmac_key]},
        )

    def merged_with(self, newer: Keyring) -> Keyring:
        """Every symmetric key of both, with newer's active keys and signing keys."""
        return replace(
            newer,
            field_keys={**self.field_keys, **newer.field_keys},
            hmac_keys={**self.hmac_keys, **newer.hmac_keys},
            audit_chain_keys={**self.audit_chain_keys, **newer.audit_chain_keys},
            audit_signing_retired={**self.audit_signing_retired, **newer.audit_signing_retired},
            receipt_signing_retired={
                **self.receipt_signing_retired,
                **newer.receipt_signing_retired,
            },
        )

    # -- file form -----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        data = self._to_json_base()
        # Written only when present, so a keyring from before the keyed chain reads the same.
        if self.audit_chain_keys:
            data["audit_chain"] = {
                "keys": {kid: _b64(key) for kid, key in sorted(self.audit_chain_keys.items())},
                "active": self.active_audit_chain_key,
            }
        if self.audit_signing_retired:
            data["audit_signing"]["retired_public_keys"] = {
                kid: _b64(key) for kid, key in sorted(self.audit_signing_retired.items())
            }
        if self.receipt_signing_retired:
            data["receipt_signing"]["retired_public_keys_pem"] = dict(
                sorted(self.receipt_signing_retired.items())
            )
        return data

    def _to_json_base(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "field_keys": {kid: _b64(key) for kid, key in sorted(self.field_keys.items())},
            "active_field_key": self.active_field_key,
            "hmac_keys": {kid: _b64(key) for kid, key in sorted(self.hmac_keys.items())},
            "active_hmac_key": self.active_hmac_key,
            "audit_signing": {
                "kid": self.audit_signing_kid,
                "private_key": _b64(self.audit_signing_key),
            },
            "receipt_signing": {
                "kid": self.receipt_signing_kid,
                "private_key_pem": self.receipt_signing_pem,
            },
        }

    @classmethod
    def from_json(cls, data: Any) -> Keyring:
        if not isinstance(data, dict):
            raise KeyringError("the keyring must be a JSON object")
        version = data.get("version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise KeyringError(f"unsupported keyring version {version!r}")
        audit = _section(data, "audit_signing")
        receipt = _section(data, "receipt_signing")
        pem = receipt.get("private_key_pem")
        if not isinstance(pem, str):
            raise KeyringError("receipt_signing.private_key_pem must be a PEM string")
        chain_keys: dict[str, bytes] = {}
        active_chain: str | None = None
        if "audit_chain" in data:
            chain = _section(data, "audit_chain")
            chain_keys = _key_map(chain, "keys", "audit_chain.keys")
            active_chain = _text(chain, "active", "audit_chain.active")
        audit_retired = audit.get("retired_public_keys", {})
        receipt_retired = receipt.get("retired_public_keys_pem", {})
        if not isinstance(audit_retired, dict):
            raise KeyringError("audit_signing.retired_public_keys must be an object")
        if not isinstance(receipt_retired, dict) or not all(
            isinstance(v, str) for v in receipt_retired.values()
        ):
            raise KeyringError("receipt_signing.retired_public_keys_pem must map ids to PEM")
        return cls(
            audit_chain_keys=chain_keys,
            active_audit_chain_key=active_chain,
            audit_signing_retired={
                str(kid): _decode(key, f"audit_signing.retired_public_keys.{kid}")
                for kid, key in audit_retired.items()
            },
            receipt_signing_retired={str(k): v for k, v in receipt_retired.items()},
            field_keys=_key_map(data, "field_keys"),
            active_field_key=_text(data, "active_field_key"),
            hmac_keys=_key_map(data, "hmac_keys"),
            active_hmac_key=_text(data, "active_hmac_key"),
            audit_signing_kid=_text(audit, "kid", "audit_signing.kid"),
            audit_signing_key=_decode(audit.get("private_key"), "audit_signing.private_key"),
            receipt_signing_kid=_text(receipt, "kid", "receipt_signing.kid"),
            receipt_signing_pem=pem,
        )


def _section(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name)
    if not isinstance(value, dict):
        raise KeyringError(f"{name} is missing or not an object")
    return value


def _text(data: Mapping[str, Any], name: str, label: str | None = None) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise KeyringError(f"{label or name} is missing or not a string")
    return value


def _decode(value: Any, label: str) -> bytes:
    if not isinstance(value, str):
        raise KeyringError(f"{label} is missing or not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KeyringError(f"{label} is not valid base64") from None


def _key_map(data: Mapping[str, Any], name: str, label: str | None = None) -> dict[str, bytes]:
    label = label or name
    value = data.get(name)
    if not isinstance(value, dict) or not value:
        raise KeyringError(f"{label} is missing or empty")
    return {str(kid): _decode(key, f"{label}.{kid}") for kid, key in value.items()}


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _public_pem(key: ec.EllipticCurvePublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def _new_ed25519() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )


def _new_p256_pem() -> str:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode("ascii")
    )


def _problems(ring: Keyring) -> list[str]:
    problems: list[str] = []
    for label, keys, active, size in (
        ("field_keys", ring.field_keys, ring.active_field_key, FIELD_KEY_BYTES),
        ("hmac_keys", ring.hmac_keys, ring.active_hmac_key, HMAC_KEY_BYTES),
    ):
        if not keys:
            problems.append(f"{label} is empty")
        for kid, key in keys.items():
            if not KID_PATTERN.match(kid):
                problems.append(f"{label}: key id {kid!r} must be 1-64 of A-Z a-z 0-9 _ -")
            if len(key) != size:
                problems.append(f"{label}.{kid} must be {size} bytes, not {len(key)}")
        if active not in keys:
            problems.append(f"active key {active!r} is not in {label}")
    for label, kid in (
        ("audit_signing.kid", ring.audit_signing_kid),
        ("receipt_signing.kid", ring.receipt_signing_kid),
    ):
        if not KID_PATTERN.match(kid):
            problems.append(f"{label} {kid!r} must be 1-64 of A-Z a-z 0-9 _ -")
    for kid, key in ring.audit_chain_keys.items():
        if not KID_PATTERN.match(kid):
            problems.append(f"audit_chain.keys: key id {kid!r} must be 1-64 of A-Z a-z 0-9 _ -")
        if len(key) != HMAC_KEY_BYTES:
            problems.append(
                f"audit_chain.keys.{kid} must be {HMAC_KEY_BYTES} bytes, not {len(key)}"
            )
    if ring.audit_chain_keys and ring.active_audit_chain_key not in ring.audit_chain_keys:
        problems.append(
            f"active key {ring.active_audit_chain_key!r} is not in audit_chain.keys"
        )
    if not ring.audit_chain_keys and ring.active_audit_chain_key is not None:
        problems.append("audit_chain.active names a key but audit_chain.keys is empty")
    for kid, raw in ring.audit_signing_retired.items():
        if not KID_PATTERN.match(kid) or len(raw) != 32:
            problems.append(f"audit_signing.retired_public_keys.{kid} must be a raw 32-byte key")
    for kid, pem in ring.receipt_signing_retired.items():
        try:
            public = serialization.load_pem_public_key(pem.encode())
        except (ValueError, TypeError):
            public = None
        if not KID_PATTERN.match(kid) or not isinstance(public, ec.EllipticCurvePublicKey):
            problems.append(f"receipt_signing.retired_public_keys_pem.{kid} must be a P-256 PEM")
    if len(ring.audit_signing_key) != 32:
        problems.append("audit_signing.private_key must be a raw 32-byte Ed25519 key")
    try:
        receipt = serialization.load_pem_private_key(ring.receipt_signing_pem.encode(), None)
    except (ValueError, TypeError):
        problems.append("receipt_signing.private_key_pem is not an unencrypted PEM private key")
    else:
        if not (
            isinstance(receipt, ec.EllipticCurvePrivateKey) and receipt.curve.name == "secp256r1"
        ):
            problems.append("receipt_signing.private_key_pem must be a P-256 (ES256) key")
    return problems


def generate_keyring() -> Keyring:
    """A keyring with one fresh key of every kind."""
    audit = _new_ed25519()
    receipt_pem = _new_p256_pem()
    field_kid, hmac_kid, chain_kid = new_kid("fk"), new_kid("hk"), new_kid("ck")
    return Keyring(
        field_keys={field_kid: secrets.token_bytes(FIELD_KEY_BYTES)},
        active_field_key=field_kid,
        hmac_keys={hmac_kid: secrets.token_bytes(HMAC_KEY_BYTES)},
        active_hmac_key=hmac_kid,
        audit_signing_kid=new_kid("ak"),
        audit_signing_key=audit,
        receipt_signing_kid=new_kid("rk"),
        receipt_signing_pem=receipt_pem,
        audit_chain_keys={chain_kid: secrets.token_bytes(HMAC_KEY_BYTES)},
        active_audit_chain_key=chain_kid,
    )


# -- the file ---------------------------------------------------------------------------


def _configured_path() -> Path:
    """The keyring path from the settings; in demo mode the file is made on first use."""
    settings = get_settings()
    path = settings.effective_key_file
    if settings.demo and not path.exists():
        ensure_keyring(path)
    return path


def load_keyring(path: Path | str | None = None) -> Keyring:
    """Read and check the keyring file (by default the configured one)."""
    path = Path(path) if path is not None else _configured_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise KeyringError(
            f"file {path} does not exist (create one with `kodomo keys init`)"
        ) from None
    except OSError as exc:
        raise KeyringError(f"file {path} cannot be read: {exc.strerror}") from None
    mode = path.stat().st_mode
    if mode & 0o077:
        log.warning("keyring file %s is readable by other users (mode %o)", path, mode & 0o777)
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        # The message names the position only; the text around it may be key material.
        where = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise KeyringError(f"file {path} is not valid JSON{where}") from None
    try:
        return Keyring.from_json(data)
    except KeyringError as exc:
        raise KeyringError(f"file {path}: {exc.problem}") from None


def _write_private(path: Path, payload: bytes, *, overwrite: bool) -> None:
    """Write a 0600 file atomically: a complete file appears under the name, or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp makes the file 0600 from the start, so the keys are never readable by others.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            # link() refuses an existing name, so two first uses cannot overwrite each other.
            os.link(tmp, path)
            tmp.unlink()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    # The rename is only durable once the directory entry is on disk.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _serialise(keyring: Keyring) -> bytes:
    return (json.dumps(keyring.to_json(), indent=2, sort_keys=True) + "\n").encode("utf-8")


def save_keyring(keyring: Keyring, path: Path | str) -> None:
    """Replace the keyring file atomically (temp file, fsync, os.replace), mode 0600."""
    _write_private(Path(path), _serialise(keyring), overwrite=True)


def ensure_keyring(path: Path | str) -> Keyring:
    """Load the keyring at path, creating a fresh one first if there is none."""
    path = Path(path)
    if not path.exists():
        try:
            _write_private(path, _serialise(generate_keyring()), overwrite=False)
            log.info("created a new keyring at %s", path)
        except FileExistsError:
            pass  # another process made it first; use theirs
    return load_keyring(path)


def backup_keyring(path: Path | str) -> Path | None:
    """Copy the keyring file to <name>.bak-<UTC timestamp> (0600); None when there is none."""
    path = Path(path)
    try:
        payload = path.read_bytes()
    except FileNotFoundError:
        return None
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    for attempt in range(100):
        suffix = "" if attempt == 0 else f"-{attempt}"
        target = path.with_name(f"{path.name}.bak-{stamp}{suffix}")
        try:
            _write_private(target, payload, overwrite=False)
        except FileExistsError:
            continue
        return target
    raise KeyringError(f"could not find a free backup name beside {path}")


# -- the process-wide keyring ---------------------------------------------------------------

_lock = threading.Lock()
_cached: Keyring | None = None
_cached_stamp: tuple[str, int, int, int] | None = None
_checked_at = 0.0


def get_keyring() -> Keyring:
    """The configured keyring, cached; a replaced file (a rotation elsewhere) is reloaded."""
    global _cached, _cached_stamp, _checked_at
    with _lock:
        now = time.monotonic()
        if _cached is not None and now - _checked_at < RECHECK_SECONDS:
            return _cached
        path = _configured_path()
        try:
            st = path.stat()
        except FileNotFoundError:
            raise KeyringError(
                f"file {path} does not exist (create one with `kodomo keys init`)"
            ) from None
        stamp = (str(path.resolve()), st.st_ino, st.st_mtime_ns, st.st_size)
        if _cached is None or stamp != _cached_stamp:
            _cached = load_keyring(path)
            _cached_stamp = stamp
        _checked_at = now
        return _cached


def reset_keyring_cache() -> None:
    """Forget the cached keyring (after a rotation in this process, or in tests)."""
    global _cached, _cached_stamp, _checked_at
    with _lock:
        _cached = None
        _cached_stamp = None
        _checked_at = 0.0


def key_ids(keyring: Keyring) -> dict[str, list[str]]:
    """The key ids held, by kind, for `kodomo keys show` and logs."""
    return {
        "field": sorted(keyring.field_keys),
        "hmac": sorted(keyring.hmac_keys),
        "audit_signing": [keyring.audit_signing_kid],
        "receipt_signing": [keyring.receipt_signing_kid],
        "audit_chain": sorted(keyring.audit_chain_keys),
        "audit_signing_retired": sorted(keyring.audit_signing_retired),
        "receipt_signing_retired": sorted(keyring.receipt_signing_retired),
    }
