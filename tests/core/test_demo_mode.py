"""Issue 12, item 3: the demo only in demo mode. `kodomo demo load` refuses in production
mode; demo accounts and a database made in demo mode are marked, and the service refuses to
start on such a database outside demo mode, saying what to do."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, delete, select
from typer.testing import CliRunner

from core.models import DemoMarker, StaffAccount
from core.settings import SettingsError, get_settings
from main import cli, create_app

runner = CliRunner()


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Production mode: a real secret and key file (from the test set-up), no KODOMO_DEMO."""
    monkeypatch.setenv("KODOMO_DEMO", "0")
    get_settings.cache_clear()
    assert not get_settings().demo and get_settings().key_file is not None
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def _accounts(engine: Engine) -> list[StaffAccount]:
    with Session(engine) as session:
        return list(session.exec(select(StaffAccount)).all())


def test_demo_load_refuses_in_production_mode(fresh_engine: Engine, production: None) -> None:
    result = runner.invoke(cli, ["demo", "load"])
    assert result.exit_code == 2, result.output
    assert "KODOMO_DEMO=1" in result.output and "デモモード" in result.output
    assert _accounts(fresh_engine) == []
    with Session(fresh_engine) as session:
        assert session.exec(select(DemoMarker)).first() is None


def test_demo_accounts_and_database_are_marked(fresh_engine: Engine) -> None:
    assert runner.invoke(cli, ["demo", "load"]).exit_code == 0
    accounts = _accounts(fresh_engine)
    assert len(accounts) == 8 and all(a.is_demo for a in accounts)
    with Session(fresh_engine) as session:
        assert session.exec(select(DemoMarker)).one().how == "demo load"


def _refused(engine: Engine) -> SettingsError:
    with pytest.raises(SettingsError) as caught:
        create_app(session_factory=lambda: Session(engine))
    return caught.value


def test_service_refuses_to_start_on_a_demo_database(
    fresh_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runner.invoke(cli, ["demo", "load"]).exit_code == 0
    monkeypatch.setenv("KODOMO_DEMO", "0")
    get_settings.cache_clear()
    try:
        error = _refused(fresh_engine)
        assert error.variable == "KODOMO_DEMO"
        assert "kodomo db upgrade" in error.problem and "admin" in error.problem
        assert "デモ用" in error.problem
        # Without the marker the demo accounts alone still refuse.
        with Session(fresh_engine) as session:
            session.exec(delete(DemoMarker))
            session.commit()
        assert "demo accounts" in _refused(fresh_engine).problem
        worker = runner.invoke(cli, ["worker", "--once"])
        assert worker.exit_code == 2 and "KODOMO_DEMO" in worker.output
        # Without demo accounts but with the marker: still refused.
        with Session(fresh_engine) as session:
            for account in session.exec(select(StaffAccount)).all():
                account.is_demo = False
                session.add(account)
            session.add(DemoMarker(how="db upgrade"))
            session.commit()
        assert "demo marker" in _refused(fresh_engine).problem
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_service_starts_in_production_on_a_clean_database(
    fresh_engine: Engine, production: None
) -> None:
    assert create_app(session_factory=lambda: Session(fresh_engine)) is not None


def test_db_upgrade_in_demo_mode_marks_the_database(
    fresh_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KODOMO_DATABASE_URL",
                       fresh_engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    try:
        result = runner.invoke(cli, ["db", "upgrade"])
        assert result.exit_code == 0, result.output
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    with Session(fresh_engine) as session:
        assert session.exec(select(DemoMarker)).one().how == "db upgrade"
