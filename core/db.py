"""Database engine, naming convention, column types, get-or-NotFound, and the unit of work."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import DateTime, MetaData, String, event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Dialect, Engine, make_url
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable, Select
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, SQLModel, create_engine, select

from core.reasons import NotFound, Reason
from core.settings import Settings, get_settings

M = TypeVar("M", bound=SQLModel)

# Stable constraint names let alembic diff and drop constraints on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION
metadata: MetaData = SQLModel.metadata

SQLITE_BUSY_TIMEOUT_MS = 30_000

# Random hex ids (secrets.token_hex(16)) compared byte by byte on every backend. PostgreSQL would
# otherwise compare them under the database's locale (strcoll, no abbreviated sort keys), which
# made the sorts and merge joins of a population several times slower, and a locale could order
# them differently from Python, which hashes populations in id order. SQLite is bytewise already.
TOKEN_ID = String(32).with_variant(String(32, collation="C"), "postgresql")


class UtcDateTime(TypeDecorator[datetime]):
    """A moment stored in UTC and read back aware, in UTC, on SQLite and PostgreSQL alike.

    SQLite keeps no offset (it returns naive values) and PostgreSQL answers in the session's time
    zone; both come back as UTC here. A naive value is refused on write rather than taken as UTC:
    it is as likely Tokyo wall time, and guessing would shift it by nine hours without a trace.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} for a UTC column; "
                             "pass an aware value (core.clock.utcnow, as_utc)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself so that we can make it IMMEDIATE below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A deferred transaction that reads and then writes fails with SQLITE_BUSY when
        # another writer committed in between; IMMEDIATE waits for the write lock instead,
        # which keeps the audit chain from forking.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str | None = None, settings: Settings | None = None, **kwargs: Any) -> Engine:
    settings = settings or get_settings()
    url = url or settings.effective_database_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


_engine: Engine | None = None


def get_engine() -> Engine:
    global _engine
    if _engine is None:
        _engine = make_engine()
    return _engine


def set_engine(engine: Engine | None) -> None:
    """Point the process at another engine (tests, the CLI's --database option)."""
    global _engine
    _engine = engine


class TemporaryTableAs(Executable, ClauseElement):
    """`CREATE TEMPORARY TABLE name ON COMMIT DROP AS query` on PostgreSQL.

    A statement of its own rather than text, so that the query's values are bound and typed as
    in any other statement. PostgreSQL plans the query of a CREATE TABLE … AS in parallel,
    which it never does for the query of an INSERT … SELECT.
    """

    inherit_cache = False

    def __init__(self, name: str, query: Select[*tuple[Any, ...]]) -> None:
        self.name = name
        self.query = query


@compiles(TemporaryTableAs, "postgresql")
def _temporary_table_as(element: TemporaryTableAs, compiler: SQLCompiler, **kw: Any) -> str:
    name = compiler.preparer.quote(element.name)
    query = compiler.process(element.query, **kw)
    return f"CREATE TEMPORARY TABLE {name} ON COMMIT DROP AS {query}"


def is_postgres(session_or_engine: OrmSession | Engine) -> bool:
    bind = (
        session_or_engine.get_bind()
        if isinstance(session_or_engine, OrmSession)
        else (session_or_engine)
    )
    return bind.dialect.name == "postgresql"


def get_by(session: Session, model: type[M], code: str, /, *, field: str | None = None,
           params: Mapping[str, Any] | None = None, **where: Any) -> M:
    """The row of `model` whose columns equal `where`, or NotFound(Reason `code`).

    The message is given `params`, or else the values looked for (`key=...`). By the primary
    key alone the session answers from what it already holds, without a query.
    """
    primary = [column.key for column in sa_inspect(model).primary_key]
    if list(where) == primary and len(primary) == 1:
        found = session.get(model, where[primary[0]])
    else:
        found = session.exec(select(model).filter_by(**where)).first()
    if found is None:
        raise NotFound(Reason.of(code, field=field, **(where if params is None else params)))
    return found


@contextmanager
def unit_of_work(engine: Engine | None = None) -> Iterator[Session]:
    """One transaction: commit when the block ends normally, roll back when it raises."""
    with Session(engine or get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
