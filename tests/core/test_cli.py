"""The `kodomo` commands a clerk or operator runs: demo load, users create, keys, audit."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from core.auth import authenticate
from core.keys import load_keyring, reset_keyring_cache
from core.models import AuditEvent, RoleGrant, StaffAccount
from core.settings import get_settings
from main import cli

runner = CliRunner()


@pytest.fixture
def own_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the test keyring that a command may rotate without touching the others."""
    path = tmp_path / "keys.json"
    shutil.copy(get_settings().effective_key_file, path)
    monkeypatch.setenv("KODOMO_KEY_FILE", str(path))
    get_settings.cache_clear()
    reset_keyring_cache()
    yield path
    monkeypatch.undo()
    get_settings.cache_clear()
    reset_keyring_cache()


def test_demo_load_is_idempotent(fresh_engine: Engine) -> None:
    first = runner.invoke(cli, ["demo", "load"])
    assert first.exit_code == 0, first.output
    assert "privacy_officer" in first.output
    second = runner.invoke(cli, ["demo", "load"])
    assert second.exit_code == 0
    with Session(fresh_engine) as session:
        assert len(session.exec(select(StaffAccount)).all()) == 8


def test_users_create_with_roles(fresh_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    assert runner.invoke(cli, ["demo", "load"]).exit_code == 0
    monkeypatch.setenv("KODOMO_PASSWORD", "a-long-enough-password")
    result = runner.invoke(
        cli,
        [
            "users",
            "create",
            "tanaka",
            "--name",
            "田中 一",
            "--role",
            "analyst@mayor/digital",
            "--role",
            "support_worker@mayor",
        ],
    )
    assert result.exit_code == 0, result.output
    with Session(fresh_engine) as session:
        account = authenticate(session, "tanaka", "a-long-enough-password")
        grants = session.exec(select(RoleGrant).where(RoleGrant.account_id == account.id)).all()
        assert sorted(g.role for g in grants) == ["analyst", "support_worker"]


def test_users_create_refuses_unknown_organ_and_writes_nothing(
    fresh_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runner.invoke(cli, ["demo", "load"]).exit_code == 0
    monkeypatch.setenv("KODOMO_PASSWORD", "a-long-enough-password")
    result = runner.invoke(
        cli, ["users", "create", "suzuki", "--name", "鈴木", "--role", "analyst@no_such_organ"]
    )
    assert result.exit_code == 2
    assert "core.unknown_organ" in result.output
    with Session(fresh_engine) as session:
        assert (
            session.exec(select(StaffAccount).where(StaffAccount.login == "suzuki")).first() is None
        )


def test_short_password_is_refused_with_its_field(
    fresh_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KODOMO_PASSWORD", "short")
    result = runner.invoke(
        cli, ["users", "create", "sato", "--name", "佐藤", "--role", "analyst@mayor"]
    )
    assert result.exit_code == 2
    assert "[password] core.password_too_short" in result.output


def test_keys_rotate_retires_old_keys_and_is_audited(
    fresh_engine: Engine, own_keyring: Path
) -> None:
    before = load_keyring(own_keyring)
    result = runner.invoke(cli, ["keys", "rotate"])
    assert result.exit_code == 0, result.output
    after = load_keyring(own_keyring)
    assert before.active_field_key not in after.field_keys
    assert before.active_hmac_key not in after.hmac_keys
    with Session(fresh_engine) as session:
        event = session.exec(
            select(AuditEvent).where(AuditEvent.action == "core.keys_rotated")
        ).one()
        assert json.loads(event.details)["new_field_key"] == after.active_field_key
    verify = runner.invoke(cli, ["audit", "verify"])
    assert verify.exit_code == 0, verify.output


def test_keys_init_refuses_to_overwrite(own_keyring: Path) -> None:
    result = runner.invoke(cli, ["keys", "init"])
    assert result.exit_code == 2
    assert "refusing to overwrite" in result.output


def test_a_missing_secret_stops_the_cli_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KODOMO_DEMO", "0")
    monkeypatch.delenv("KODOMO_SECRET_KEY")
    get_settings.cache_clear()
    try:
        result = runner.invoke(cli, ["audit", "verify"])
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "KODOMO_SECRET_KEY" in result.output
