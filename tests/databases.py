"""Test databases: PostgreSQL when it answers, fresh migrated databases on either backend, and
sessions inside a test's transaction.

A plain module (neither a test module nor a conftest): fixtures and tests import it. It imports
the product's database code, so import it only after tests/conftest.py has set the environment
(as pytest does: the root conftest is loaded before any test module).
"""

from __future__ import annotations

import os
import secrets
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import pytest
from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlmodel import Session

from core.cli import alembic_config
from core.db import make_engine

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
_SQLITE_DIR = Path(tempfile.mkdtemp(prefix="kodomo-test-db-"))


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
    """The URL of a new, empty database: a SQLite file, or a PostgreSQL database (skips or
    fails, as skip_or_fail_without_postgres says, when PostgreSQL does not answer)."""
    if backend == "sqlite":
        return f"sqlite:///{_SQLITE_DIR / f'db-{secrets.token_hex(6)}.sqlite3'}"
    skip_or_fail_without_postgres()
    return create_postgres_database()


def migrate(url: str) -> Engine:
    command.upgrade(alembic_config(url), "head")
    return make_engine(url)


def session_on(conn: Connection) -> Session:
    """A session whose commits only release a savepoint of the test's transaction."""
    return Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
