"""Test fixtures: migrated SQLite and PostgreSQL databases, one rolled-back transaction a test.

Fixtures only: the plain helpers that tests call live in tests/databases.py (databases,
sessions), tests/web.py (sign-in, tokens, CSRF, cookies) and tests/factories.py (test data).
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

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
from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import settings  # noqa: E402
from sqlalchemy.engine import Connection, Engine  # noqa: E402
from sqlmodel import Session  # noqa: E402

from core.db import set_engine, unit_of_work  # noqa: E402
from core.keys import ensure_keyring, reset_keyring_cache  # noqa: E402
from core.settings import get_settings  # noqa: E402
from core.startup import prepare  # noqa: E402
from main import DEMO_LOADERS  # noqa: E402
from tests.databases import (  # noqa: E402
    drop_postgres_database,
    migrate,
    new_database_url,
    session_on,
    skip_or_fail_without_postgres,
)
from tests.web import app_client  # noqa: E402

BACKENDS = ["sqlite", "postgres"]

# No timed assertions: a property test's example may be slow on a busy machine (CI shares one).
settings.register_profile("kodomo", deadline=None)
settings.load_profile("kodomo")


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
    with app_client(connection) as test_client:
        yield test_client


@pytest.fixture
def public_client(connection: Connection) -> Iterator[TestClient]:
    """The public face alone (face "public") on the test's transaction."""
    with app_client(connection, "public") as test_client:
        yield test_client


@pytest.fixture
def staff_client(connection: Connection) -> Iterator[TestClient]:
    """The staff face alone (face "staff", the LGWAN side) on the test's transaction."""
    with app_client(connection, "staff") as test_client:
        yield test_client


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


@pytest.fixture(autouse=True)
def _own_witness(tmp_path: Path) -> Iterator[Path]:
    """Every test writes its checkpoints to a witness of its own (the default one is shared by
    every database of the run)."""
    from core import witness

    path = tmp_path / "audit-witness" / "checkpoints.jsonl"
    witness.use(witness.FileWitness(path))
    try:
        yield path
    finally:
        witness.use(None)
