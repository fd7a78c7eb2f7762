"""Database engine, naming convention, column types, get-or-NotFound, and the unit of work."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy import DateTime, MetaData, String, event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Dialect, Engine, make_url
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import ORMExecuteState, UOWTransaction
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
# A pooled PostgreSQL connection idle longer than this is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 10.0

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


# A unit of work is a read or a write, said when it is opened (`open_session`, `unit_of_work`).
# A read is opened on the engine with this execution option; a write on the engine itself.
_READ_OPTION = "kodomo_read_only"
# Session.info keys: whether the unit of work writes, and the writes a read left for after it.
WRITES = "kodomo.writes"
AFTER_READ = "kodomo.after_read"


class ReadOnlyUnitOfWork(RuntimeError):
    """A unit of work opened as a read tried to write: open it as a write (a programming error)."""


class WriteTurns:
    """This process's writers to one SQLite database, served first come, first served.

    SQLite lets a writer that finds the write lock taken sleep and retry (busy_timeout), in
    growing naps of up to 100 ms, so under load a writer that has waited long keeps losing
    the lock to newcomers (a request waited 12 s). Here each writer of the process queues for
    its turn and is woken the moment the one before it has committed; SQLite's own wait
    remains for writers in other processes (the CLI, the worker).
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._queue: deque[tuple[threading.Lock, Any]] = deque()
        self._holder: Any = None  # the DB-API connection whose turn it is
        self._holder_thread: int | None = None

    def acquire(self, dbapi_connection: Any, timeout: float) -> bool:
        with self._mutex:
            if self._holder is dbapi_connection:
                return True
            if self._holder_thread == threading.get_ident():
                # This thread already writes through another connection: queueing behind
                # itself would never end, so leave the wait to SQLite (as before).
                return True
            if self._holder is None:
                self._holder, self._holder_thread = dbapi_connection, threading.get_ident()
                return True
            turn = threading.Lock()
            turn.acquire()
            self._queue.append((turn, dbapi_connection))
        if turn.acquire(timeout=timeout):
            return True
        with self._mutex:
            try:
                self._queue.remove((turn, dbapi_connection))
            except ValueError:  # handed the turn just as the wait ran out: take it
                return True
        return False

    def release(self, dbapi_connection: Any) -> None:
        with self._mutex:
            if self._holder is not dbapi_connection:
                return
            if self._queue:
                turn, self._holder = self._queue.popleft()
                self._holder_thread = None  # set by the woken writer's thread below
                turn.release()
            else:
                self._holder, self._holder_thread = None, None

    def mark_thread(self, dbapi_connection: Any) -> None:
        with self._mutex:
            if self._holder is dbapi_connection:
                self._holder_thread = threading.get_ident()


def _take_write_turn(writers: WriteTurns, dbapi_connection: Any) -> None:
    if not writers.acquire(dbapi_connection, SQLITE_BUSY_TIMEOUT_MS / 1000):
        raise OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError(
            "database is locked (waited for this process's writers)"))
    writers.mark_thread(dbapi_connection)


def _configure_sqlite(engine: Engine) -> None:
    writers = WriteTurns()

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself so that we can choose DEFERRED or IMMEDIATE below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A read begins DEFERRED: in WAL mode it reads a snapshot and never takes the write
        # lock, so readers never wait for a writer nor hold one up. The connection is also
        # made query_only for it, so a read that tried to write fails at once and loudly
        # rather than upgrading its stale snapshot (SQLITE_BUSY_SNAPSHOT) under load.
        # A write begins IMMEDIATE: a deferred transaction that reads and then writes fails
        # with SQLITE_BUSY when another writer committed in between; IMMEDIATE waits for the
        # write lock instead (busy_timeout), which keeps the audit chain from forking.
        read = bool(connection.get_execution_options().get(_READ_OPTION))
        if connection.info.get(_READ_OPTION) != read:
            connection.exec_driver_sql(f"PRAGMA query_only={'ON' if read else 'OFF'}")
            connection.info[_READ_OPTION] = read
        if not read:
            _take_write_turn(writers, connection.connection.dbapi_connection)
        connection.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")

    # The write turn is given up once the transaction has ended (its COMMIT written), or when
    # the connection goes back to the pool, is invalidated or closed without ending it.
    dialect = engine.dialect
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_connection: Any) -> None:
        try:
            commit(dbapi_connection)
        finally:
            writers.release(dbapi_connection)

    def do_rollback(dbapi_connection: Any) -> None:
        try:
            rollback(dbapi_connection)
        finally:
            writers.release(dbapi_connection)

    dialect.do_commit = do_commit  # type: ignore[method-assign]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign]
    for name in ("checkin", "invalidate", "close", "detach"):
        event.listen(engine, name, lambda dbapi_connection, *_: writers.release(dbapi_connection))


def _configure_postgres(engine: Engine, settings: Settings) -> None:
    timeouts = {
        "lock_timeout": settings.db_lock_timeout_ms,
        "statement_timeout": settings.db_statement_timeout_ms,
    }

    @event.listens_for(engine, "connect", insert=True)
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # A waiting lock (the audit chain's advisory lock, a row lock) or a runaway statement
        # fails after its timeout instead of holding a connection and a worker thread forever.
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        cursor = dbapi_connection.cursor()
        for name, milliseconds in timeouts.items():
            cursor.execute(f"SET {name} = {int(milliseconds)}")
        cursor.close()
        dbapi_connection.autocommit = autocommit


def make_engine(url: str | None = None, settings: Settings | None = None, **kwargs: Any) -> Engine:
    settings = settings or get_settings()
    url = url or settings.effective_database_url
    parsed = make_url(url)
    if parsed.database != ":memory:" and parsed.database and "poolclass" not in kwargs:
        # A pool that is exhausted answers quickly (the web app turns it into a 503).
        kwargs.setdefault("pool_size", settings.db_pool_size)
        kwargs.setdefault("max_overflow", settings.db_pool_overflow)
        kwargs.setdefault("pool_timeout", settings.db_pool_timeout_seconds)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        _configure_sqlite(engine)
        return engine
    engine = create_engine(url, **kwargs)
    if parsed.get_backend_name() == "postgresql":
        _configure_postgres(engine, settings)
        _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only when it sat idle for a while.

    What pool_pre_ping does on every checkout, a round trip that was a sixth of a short write
    transaction's. A connection used a moment ago is alive or died with the server just now;
    then the statement fails once, SQLAlchemy sees the disconnect and invalidates the pool.
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["kodomo.idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("kodomo.idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise DisconnectionError("a pooled connection did not answer its ping") from error
        if not alive:
            raise DisconnectionError("a pooled connection did not answer its ping")


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


_read_engines: WeakKeyDictionary[Engine, Engine] = WeakKeyDictionary()


def _read_engine(engine: Engine) -> Engine:
    """The engine with the read option (shares the pool; cached, building one is not free)."""
    found = _read_engines.get(engine)
    if found is None:
        found = _read_engines[engine] = engine.execution_options(**{_READ_OPTION: True})
    return found


def open_session(engine: Engine | None = None, *, writes: bool) -> Session:
    """A session for one unit of work that reads only, or that writes.

    On SQLite a read begins DEFERRED (a WAL snapshot, never the write lock) and a write begins
    IMMEDIATE (core.db's begin hook). A read that writes through the ORM raises
    ReadOnlyUnitOfWork on every backend; a read that appends to the audit chain has the event
    written after it, in a short write transaction of its own (`after_read`).
    """
    bound = engine or get_engine()
    session = Session(bound if writes else _read_engine(bound), expire_on_commit=False)
    mark_session(session, writes=writes)
    return session


def mark_session(session: Session, *, writes: bool) -> None:
    """Say whether a session's unit of work writes (for sessions made elsewhere, e.g. tests)."""
    session.info[WRITES] = writes


def session_writes(session: OrmSession) -> bool:
    """Whether the session's unit of work may write (sessions not marked may: the default)."""
    return session.info.get(WRITES) is not False


def after_read(session: OrmSession, write: Callable[[Session], None]) -> None:
    """Leave `write` for a short write transaction of its own once the read has ended."""
    session.info.setdefault(AFTER_READ, []).append(write)


def run_after_read(session: OrmSession, open_write: Callable[[], Session]) -> None:
    """Run what a read left for afterwards in one short write transaction (none when empty).

    Called when the read has ended well and before its answer leaves, so nothing a read shows
    goes unrecorded; the read's own transaction is over, so the write lock is taken briefly.
    """
    pending: list[Callable[[Session], None]] = session.info.pop(AFTER_READ, [])
    if not pending:
        return
    with open_write() as writer:
        try:
            for write in pending:
                write(writer)
            writer.commit()
        except BaseException:
            writer.rollback()
            raise


def discard_after_read(session: OrmSession) -> None:
    """A read that failed showed nothing: what it left for afterwards is dropped."""
    session.info.pop(AFTER_READ, None)


@event.listens_for(OrmSession, "before_flush")
def _refuse_flush_in_read(session: OrmSession, _context: UOWTransaction, _instances: Any) -> None:
    if session_writes(session):
        return
    changed = bool(session.new or session.deleted) or any(
        session.is_modified(instance) for instance in session.dirty
    )
    if changed:
        raise ReadOnlyUnitOfWork(
            "a unit of work opened as a read tried to write; open it as a write")


@event.listens_for(OrmSession, "do_orm_execute")
def _refuse_dml_in_read(state: ORMExecuteState) -> None:
    if not session_writes(state.session) and (state.is_insert or state.is_update
                                              or state.is_delete):
        raise ReadOnlyUnitOfWork(
            "a unit of work opened as a read tried to write; open it as a write")


@contextmanager
def unit_of_work(engine: Engine | None = None, *, writes: bool = True) -> Iterator[Session]:
    """One transaction: commit when the block ends normally, roll back when it raises.

    A write by default (the CLI's commands); `writes=False` for one that only reads.
    """
    bound = engine or get_engine()
    with open_session(bound, writes=writes) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            discard_after_read(session)
            raise
        run_after_read(session, lambda: open_session(bound, writes=True))
