"""The keyring file: creation, checks, atomic saves, the process cache and secrecy."""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from core import keys
from core.keys import (
    Keyring,
    KeyringError,
    UnknownKeyId,
    backup_keyring,
    ensure_keyring,
    generate_keyring,
    get_keyring,
    load_keyring,
    reset_keyring_cache,
    save_keyring,
)
from core.settings import SettingsError, get_settings


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("KODOMO_KEY_FILE", "KODOMO_DEMO", "KODOMO_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    reset_keyring_cache()
    yield
    get_settings.cache_clear()
    reset_keyring_cache()


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data), encoding="utf-8")


def test_save_and_load_roundtrip(tmp_path: Path) -> None:
    ring = generate_keyring()
    path = tmp_path / "keys.json"
    save_keyring(ring, path)
    assert mode_of(path) == 0o600
    loaded = load_keyring(path)
    assert loaded == ring
    assert loaded.field_key(ring.active_field_key) == ring.active_field()[1]
    assert len(loaded.active_hmac()[1]) == 32
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["active_field_key"] in data["field_keys"]
    assert len(base64.b64decode(data["audit_signing"]["private_key"])) == 32
    assert data["receipt_signing"]["private_key_pem"].startswith("-----BEGIN PRIVATE KEY-----")
    assert [p.name for p in tmp_path.iterdir()] == ["keys.json"]  # no temp file left behind


def test_signing_keys_work() -> None:
    ring = generate_keyring()
    signature = ring.audit_private_key().sign(b"checkpoint")
    ring.audit_public_key().verify(signature, b"checkpoint")
    receipt = ring.receipt_private_key()
    assert receipt.curve.name == "secp256r1"
    der = receipt.sign(b"receipt", ec.ECDSA(hashes.SHA256()))
    ring.receipt_public_key().verify(der, b"receipt", ec.ECDSA(hashes.SHA256()))


def test_repr_shows_key_ids_never_key_material() -> None:
    ring = generate_keyring()
    shown = repr(ring) + str(ring)
    assert ring.active_field_key in shown
    secrets_ = [
        *(base64.b64encode(k).decode() for k in ring.field_keys.values()),
        *(base64.b64encode(k).decode() for k in ring.hmac_keys.values()),
        base64.b64encode(ring.audit_signing_key).decode(),
        "PRIVATE KEY",
    ]
    for secret in secrets_:
        assert secret not in shown
    for key in (*ring.field_keys.values(), ring.audit_signing_key):
        assert repr(key) not in shown


def test_keyring_is_immutable() -> None:
    ring = generate_keyring()
    with pytest.raises(TypeError):
        ring.field_keys["x"] = b"0" * 32  # type: ignore[index]


def test_unknown_kid_is_named() -> None:
    ring = generate_keyring()
    with pytest.raises(UnknownKeyId, match="fk-nope"):
        ring.field_key("fk-nope")


def test_missing_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(KeyringError) as caught:
        load_keyring(tmp_path / "absent.json")
    assert caught.value.variable == "KODOMO_KEY_FILE"
    assert "absent.json" in str(caught.value)
    assert "does not exist" in str(caught.value)


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda d: d.update(active_field_key="fk-gone"), "active key 'fk-gone'"),
        (lambda d: d.update(field_keys={}), "field_keys is missing or empty"),
        (
            lambda d: d["hmac_keys"].update({d["active_hmac_key"]: "c2hvcnQ="}),
            "must be 32 bytes, not 5",
        ),
        (
            lambda d: d["field_keys"].update({"bad.kid": d["field_keys"][d["active_field_key"]]}),
            "key id 'bad.kid'",
        ),
        (lambda d: d["audit_signing"].update(private_key="***"), "not valid base64"),
        (lambda d: d.pop("receipt_signing"), "receipt_signing is missing"),
        (lambda d: d["receipt_signing"].update(private_key_pem="nope"), "not an unencrypted PEM"),
        (lambda d: d.update(version=2), "unsupported keyring version"),
    ],
)
def test_bad_contents_are_named(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], object], problem: str
) -> None:
    data = generate_keyring().to_json()
    mutate(data)
    path = tmp_path / "keys.json"
    write_json(path, data)
    with pytest.raises(KeyringError, match="KODOMO_KEY_FILE") as caught:
        load_keyring(path)
    assert problem in str(caught.value)
    assert str(path) in str(caught.value)


def test_errors_do_not_echo_key_material(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    text = json.dumps(generate_keyring().to_json())
    path.write_text(text[:-40], encoding="utf-8")  # truncated JSON
    with pytest.raises(KeyringError) as caught:
        load_keyring(path)
    assert "not valid JSON" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is not None
    data = json.loads(text)
    for value in data["field_keys"].values():
        assert value not in str(caught.value)


def test_ensure_creates_once_and_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "keys.json"
    first = ensure_keyring(path)
    assert mode_of(path) == 0o600
    second = ensure_keyring(path)
    assert second == first


def test_save_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    ring = ensure_keyring(path)
    rotated = ring.with_new_field_key()
    save_keyring(rotated, path)
    assert load_keyring(path) == rotated
    assert mode_of(path) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.json"]


def test_backup_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    ring = ensure_keyring(path)
    first = backup_keyring(path)
    second = backup_keyring(path)
    assert first is not None and second is not None and first != second
    assert first.name.startswith("keys.json.bak-")
    assert mode_of(first) == 0o600
    assert load_keyring(first) == ring
    assert backup_keyring(tmp_path / "none.json") is None


def test_rotation_helpers_keep_and_retire() -> None:
    ring = generate_keyring()
    newer = ring.with_new_field_key().with_new_hmac_key()
    assert set(ring.field_keys) < set(newer.field_keys)
    assert newer.active_field_key not in ring.field_keys
    assert newer.retired() == (frozenset(ring.field_keys), frozenset(ring.hmac_keys))
    slim = newer.without_retired_keys()
    assert set(slim.field_keys) == {newer.active_field_key}
    assert set(slim.hmac_keys) == {newer.active_hmac_key}
    merged = ring.merged_with(slim)
    assert set(merged.field_keys) == set(newer.field_keys)
    assert merged.active_field_key == newer.active_field_key


def test_outside_demo_mode_the_file_must_be_configured() -> None:
    with pytest.raises(SettingsError, match="KODOMO_KEY_FILE"):
        get_keyring()


def test_demo_mode_makes_the_file_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KODOMO_DEMO", "1")
    monkeypatch.setenv("KODOMO_DATA_DIR", str(tmp_path / "var"))
    ring = get_keyring()
    path = tmp_path / "var" / "keys.json"
    assert path.is_file() and mode_of(path) == 0o600
    assert get_keyring() is ring
    assert load_keyring() == ring


def test_cache_notices_a_replaced_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "keys.json"
    monkeypatch.setenv("KODOMO_KEY_FILE", str(path))
    monkeypatch.setattr(keys, "RECHECK_SECONDS", 0.0)
    ring = ensure_keyring(path)
    assert get_keyring() == ring
    assert get_keyring() is get_keyring()
    rotated = ring.with_new_field_key()
    save_keyring(rotated, path)
    assert get_keyring() == rotated


def test_reset_cache_forgets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "keys.json"
    monkeypatch.setenv("KODOMO_KEY_FILE", str(path))
    ensure_keyring(path)
    first = get_keyring()
    reset_keyring_cache()
    assert get_keyring() is not first
    assert isinstance(first, Keyring)
