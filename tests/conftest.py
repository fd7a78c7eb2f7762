"""Test fixtures: migrated SQLite and PostgreSQL databases, one rolled-back transaction a test."""

from __future__ import annotations

import os
import secrets
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

_TMP = Path(tempfile.mkdtemp(prefix="kodomo-test-"))
os.environ.update(
    {
        "KODOMO_DEMO": "1",
        "KODOMO_DATA_DIR": str(_TMP),
        "KODOMO_KEY_FILE": str(_TMP / "keys.json"),
        "KODOMO_SECRET_KEY": secrets.token_urlsafe(48),
    }
)
os.environ.pop("KODOMO_DATABASE_URL", None)

import pytest  # noqa: E402
from alembic import command  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import Connection, Engine, make_url  # noqa: E402
from sqlmodel import Session  # noqa: E402

from core import demo as core_demo  # noqa: E402
from core.cli import alembic_config  # noqa: E402
from core.db import make_engine, set_engine, unit_of_work  # noqa: E402
from core.keys import ensure_keyring, reset_keyring_cache  # noqa: E402
from core.settings import get_settings  # noqa: E402
from core.startup import prepare  # noqa: E402
from main import DEMO_LOADERS, create_app  # noqa: E402

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = ["sqlite", "postgres"]


def postgres_admin_url() -> str:
    return os.environ.get("KODOMO_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def postgres_available() -> tuple[bool, str]:
    url = urlparse(postgres_admin_url().replace("postgresql+psycopg", "postgresql"))
    try:
        with socket.create_connection((url.hostname or "127.0.0.1", url.port or 5432), 2):
            return True, ""
    except OSError as error:
        return False, f"PostgreSQL at {url.hostname}:{url.port} does not answer ({error})"


def skip_or_fail_without_postgres() -> None:
    available, why = postgres_available()
    if available:
        return
    if os.environ.get("KODOMO_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required here: {why}")
    pytest.skip(f"PostgreSQL tests skipped: {why}")


def create_postgres_database() -> str:
    """A fresh, empty database; returns its URL."""
    admin = create_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    name = f"kodomo_test_{secrets.token_hex(6)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(postgres_admin_url()).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    admin = create_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def new_database_url(backend: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{_TMP / f'db-{secrets.token_hex(6)}.sqlite3'}"
    skip_or_fail_without_postgres()
    return create_postgres_database()


def migrate(url: str) -> Engine:
    command.upgrade(alembic_config(url), "head")
    return make_engine(url)


@pytest.fixture(scope="session", autouse=True)
def _prepared() -> Iterator[None]:
    get_settings.cache_clear()
    reset_keyring_cache()
    ensure_keyring(_TMP / "keys.json")
    prepare(get_settings())
    yield


@pytest.fixture(scope="session")
def _migrated() -> Iterator[dict[str, Engine]]:
    """One migrated database per backend with the demo city loaded, built when first asked."""
    engines: dict[str, Engine] = {}
    yield engines
    for backend, engine in engines.items():
        url = engine.url.render_as_string(hide_password=False)
        engine.dispose()
        if backend == "postgres":
            drop_postgres_database(url)


def _engine_for(backend: str, engines: dict[str, Engine]) -> Engine:
    if backend not in engines:
        url = new_database_url(backend)
        engine = migrate(url)
        with unit_of_work(engine) as session:
            for loader in DEMO_LOADERS:
                loader(session)
        engines[backend] = engine
    return engines[backend]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def engine(backend: str, _migrated: dict[str, Engine]) -> Engine:
    if backend == "postgres":
        skip_or_fail_without_postgres()
    return _engine_for(backend, _migrated)


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back after the test."""
    conn = engine.connect()
    outer = conn.begin()
    set_engine(engine)
    try:
        yield conn
    finally:
        outer.rollback()
        conn.close()
        set_engine(None)


def session_on(conn: Connection) -> Session:
    """A session whose commits only release a savepoint of the test's transaction."""
    return Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)


@pytest.fixture
def db(connection: Connection) -> Iterator[Session]:
    session = session_on(connection)
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def client(connection: Connection) -> Iterator[TestClient]:
    """The whole app (face "all") on the test's transaction."""
    app = create_app("all", session_factory=lambda: session_on(connection))
    with TestClient(app) as test_client:
        yield test_client


def api_token(client: TestClient, login: str, password: str | None = None) -> str:
    response = client.post(
        "/api/auth/token", json={"login": login, "password": password or core_demo.demo_password()}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def fresh_engine(backend: str) -> Iterator[Engine]:
    """A migrated database of its own that commits for real (concurrency, CLI tests)."""
    url = new_database_url(backend)
    engine = migrate(url)
    set_engine(engine)
    try:
        yield engine
    finally:
        set_engine(None)
        engine.dispose()
        if backend == "postgres":
            drop_postgres_database(url)
