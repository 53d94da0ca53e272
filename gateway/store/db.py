"""The async engine and the unit of work.

Services own transactions (``await db.run_in_transaction(work)``, ``work`` taking the unit of
work); repositories never commit. A transaction the database rolls back as one side of a
conflict (a deadlock, a serialization failure) is run again, whole, by that one door, so no use
case answers a race between two of its own requests with an internal error: a ``work`` does
nothing outside the database (no WeChat call, no cache write, no wake-up) and keeps no state
across runs; what must follow the commit follows the call.

On SQLite a writing transaction starts with ``BEGIN IMMEDIATE`` so that two concurrent
find-or-create calls queue on the write lock instead of failing with a stale snapshot.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, event, text
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.sql import Executable

from gateway.store import driver
from gateway.store.broadcast import Broadcast, collected

_READONLY = "gateway_readonly"
T = TypeVar("T")
log = logging.getLogger(__name__)

UnitOfWork = AsyncSession
"""What ``Database.run_in_transaction`` passes its ``work``. Use cases pass it down to
``accounts`` and ``sessions`` so that one login's rows commit together, and never run SQL on it
themselves."""


# both SQLite engines (the pooled async one and the writer thread's): wait up to 30 s for the
# file's write lock; SQL errors carry no parameters (openids, sealed keys) into logs
_SQLITE_ENGINE: dict[str, Any] = {"connect_args": {"timeout": 30}, "hide_parameters": True}


def create_engine(url: str, pool_size: int = 20, max_overflow: int = 0) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # aiosqlite runs each connection on a thread of its own (with its malloc arena and page
        # cache); SQLite writes one at a time (most on the writer thread, ``write_in_thread``)
        # and reads are quick: the pool's five connections, no overflow threads under bursts
        engine = create_async_engine(url, **_SQLITE_ENGINE, pool_size=5, max_overflow=0)
        _configure_sqlite(engine, _POOLED_CACHE_KIB)
        return engine
    # hide_parameters: SQL errors must not carry openids or sealed keys into logs.
    # No pre-ping (a SELECT 1 per checkout): a dropped connection fails its one request with a
    # retryable UNAVAILABLE, and SQLAlchemy then invalidates the whole pool, so the next
    # requests reconnect by themselves.
    # A fixed pool by default: an overflow connection is closed on check-in, so under load
    # above the pool every request paid a new connection (TLS attempt, the dialect's set-up,
    # its statements prepared again): 20 + 10 connections under 32 busy clients cost a
    # refresh ~20% more CPU than 20 + 0, where the extra requests wait their turn for a warm
    # connection. The database gains nothing from more connections than it has cores to run.
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=1800,
        hide_parameters=True,
    )


def _sqlite_twin(engine: AsyncEngine) -> Engine:
    """A synchronous engine on the same SQLite file, for units of work run whole on a worker
    thread (``Database.write_in_thread``)."""
    url = engine.url.set(drivername="sqlite")
    twin = sa_create_engine(url, **_SQLITE_ENGINE)
    _configure_sqlite(twin)
    return twin


# The page cache of each pooled aiosqlite connection (a thread and a connection each; SQLite's
# default cache is 2 MiB). A connection drops its cache whenever another has written since, and
# the writer thread's connection writes most: the pool's caches mostly hold pages they will
# throw away, while the OS keeps the file's pages for all. The writer keeps the default.
_POOLED_CACHE_KIB = 256


def _configure_sqlite(engine: AsyncEngine | Engine, cache_kib: int | None = None) -> None:
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        if cache_kib is not None:
            cursor.execute(f"PRAGMA cache_size=-{cache_kib}")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        if not conn.get_execution_options().get(_READONLY, False):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        # readers run each SELECT in its own implicit transaction: no BEGIN/COMMIT hops


class Database:
    """One engine, two doors: ``run_in_transaction()`` for writes, ``reader()`` for reads.

    Readers autocommit each statement (no BEGIN/COMMIT round trips on the hot read path), so a
    reader that needs several statements to agree must use ``run_in_transaction()`` instead.
    """

    def __init__(self, engine: AsyncEngine, broadcast: Broadcast | None = None) -> None:
        self.engine = engine
        self.broadcast = broadcast or Broadcast()
        options: dict[str, Any] = {_READONLY: True}
        if engine.dialect.name != "sqlite":
            options["isolation_level"] = "AUTOCOMMIT"
        self._read_engine = engine.execution_options(**options)
        self._twin = _sqlite_twin(engine) if engine.dialect.name == "sqlite" else None
        # SQLite has one writer at a time: one thread does them all (more would only queue on
        # the file's lock, each keeping a malloc arena of its own)
        self._writer = ThreadPoolExecutor(1, "sqlite-writer") if self._twin is not None else None
        # each statement's compiled form for the driver, by its parameters' names: the hot
        # writes (PostgreSQL's one-statement ones, SQLite's units of work) are built once
        dialect = self._twin.dialect if self._twin is not None else engine.dialect
        self._plans: Callable[[Executable, frozenset[str]], driver.Plan] = functools.lru_cache(
            maxsize=128
        )(lambda statement, keys: driver.plan(statement, dialect=dialect, keys=keys))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def run_in_transaction(self, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        """``work`` in one transaction, committed when it returns (its answer), rolled back
        when it raises; run again, whole, in a new transaction when the database rolled it back
        as one side of a conflict (``retry_conflicts``). Every other error, and the typed
        errors a use case raises on purpose, leave after the one run."""

        async def once() -> T:
            async with self.transaction() as s:
                return await work(s)

        return await retry_conflicts(once)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One attempt at a unit of work, not run again on a conflict: for tests' set-up and
        ``run_in_transaction``; the gateway's own modules go through the latter
        (``tests/test_conflict_retry.py``). What it named as changed (``broadcast.changed``) is
        broadcast once it has committed (PostgreSQL's NOTIFY: inside it, delivered at the
        commit)."""
        async with AsyncSession(self.engine, expire_on_commit=False) as session:
            async with session.begin():
                yield session
                keys = collected(session)
                if keys:
                    await self.broadcast.before_commit(session, keys)
            if keys:
                await self.broadcast.after_commit(keys)

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        async with (
            AsyncSession(self._read_engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session

    async def read(
        self, statement: Executable, params: dict[str, Any] | None = None
    ) -> Sequence[Sequence[Any]]:
        """One Core read on a bare connection: the hot read paths skip the ORM session (and
        pass ``params`` to a statement built once, rather than building one per request)."""
        async with self._read_engine.connect() as conn:
            return (await conn.execute(statement, params)).all()

    async def write_once(
        self, statement: Executable, params: dict[str, Any]
    ) -> Sequence[Sequence[Any]]:
        """A write that is a whole unit of work in one statement (on PostgreSQL, data-modifying
        CTEs), atomic by itself: autocommitted, without the BEGIN and COMMIT round trips.
        ``LostRace`` when a concurrent writer got in the way: it wrote nothing. On PostgreSQL
        the statement, built once, runs on the driver (``gateway.store.driver``). Not for
        SQLite (``write_in_thread``)."""
        if self._twin is not None:
            raise RuntimeError("write_once is for PostgreSQL")
        plan = self._plans(statement, frozenset(params))
        try:
            return await driver.fetch(self.engine, plan, params)
        except DBAPIError as exc:
            if isinstance(exc, IntegrityError) or _sqlstate(exc) == _DEADLOCK:
                raise LostRace from exc
            raise

    async def write_in_thread(self, work: Callable[[driver.SyncDriver], T | None]) -> T | None:
        """SQLite: a unit of work run whole on a worker thread, on a synchronous connection to
        the same file, in one write transaction: one hand-off to a thread instead of one per
        statement (aiosqlite's), while the write lock is held; its statements, built once, run
        on the driver (``driver.SyncDriver``). ``work`` answering ``None`` rolls it back; a
        unique violation is ``LostRace``. Not for PostgreSQL (``write_once``)."""
        twin, writer, plans = self._twin, self._writer, self._plans
        if twin is None or writer is None:
            raise RuntimeError("write_in_thread is for SQLite")

        def run() -> T | None:
            with twin.connect() as conn, conn.begin() as transaction:
                done = work(
                    driver.SyncDriver(conn.connection.driver_connection, twin.dialect, plans)
                )
                if done is None:
                    transaction.rollback()
                return done

        try:
            return await asyncio.get_running_loop().run_in_executor(writer, run)
        except IntegrityError as exc:
            raise LostRace from exc

    async def ping(self) -> None:
        async with self._read_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._writer is not None:
            self._writer.shutdown()
        if self._twin is not None:
            self._twin.dispose()


async def execute_core(
    s: AsyncSession, statement: Executable, params: dict[str, Any] | list[dict[str, Any]]
) -> Any:
    """A prebuilt Core statement on the unit of work's own connection, in its transaction.
    The session's ``execute`` takes every statement through the ORM's machinery (~0.3 ms a
    statement on the hot paths); this skips it, flushing pending ORM changes first as the
    session's ``execute`` would, so a statement never reads around them. A list of parameter
    sets is one executemany (an INSERT of several rows in one statement)."""
    if s.new or s.dirty or s.deleted:
        await s.flush()
    return await (await s.connection()).execute(statement, params)


class LostRace(Exception):
    """A one-statement write met a concurrent writer (a unique key it wrote first, or a
    deadlock) and wrote nothing: the caller takes its transactional path, which reads what the
    other wrote."""


_DEADLOCK = "40P01"
_CONFLICTS = (_DEADLOCK, "40001")  # deadlock detected, serialization failure
CONFLICT_ATTEMPTS = 3


def is_conflict(error: BaseException) -> bool:
    """Two transactions met in an order the database could not serialize, and it rolled one of
    them back whole (PostgreSQL's deadlock detection, a serialization failure): nothing of it
    was written, and running that unit of work again is what the database asks for."""
    return isinstance(error, DBAPIError) and _sqlstate(error) in _CONFLICTS


async def retry_conflicts(work: Callable[[], Awaitable[T]]) -> T:
    """``work`` (one whole transaction, opened inside it) run again when the database rolled it
    back as one side of a conflict, up to ``CONFLICT_ATTEMPTS`` times; a client never sees a
    deadlock between two of its own requests (e.g. two logins of one person racing an
    erasure) as an internal error."""
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            return await work()
        except DBAPIError as error:
            if attempt == CONFLICT_ATTEMPTS or not is_conflict(error):
                raise
            log.info("transaction rolled back by a conflict (%s); again", _sqlstate(error))
    raise AssertionError("unreachable")


def _sqlstate(exc: DBAPIError) -> str | None:
    return _state(exc.orig)


def _state(error: BaseException | None) -> str | None:
    """The SQLSTATE of a driver's error (SQLAlchemy's adaptation of asyncpg's, or asyncpg's)."""
    code = getattr(error, "pgcode", None) or getattr(error, "sqlstate", None)
    return code if isinstance(code, str) else None


# SQLSTATE classes (and codes) of a server that cannot serve now: connection exceptions (08),
# insufficient resources (53: too many clients, out of memory, disk full) and an operator's
# intervention (57P01-57P05: shutdown, crash, "not currently accepting connections" while it
# starts or recovers, database dropped, idle session timeout)
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P")


def is_unavailable(error: BaseException | None) -> bool:
    """The database (or another backing service) cannot be reached right now: a retryable
    condition, not a bug. Recognised by SQLAlchemy's verdict (an invalidated connection, an
    operational or interface error), by the server's SQLSTATE (a plain ``DBAPIError``, or the
    driver's error itself where a pool checkout raised it unwrapped) or by the driver's own
    error of an unusable connection (``driver.unusable``)."""
    if isinstance(error, DBAPIError):
        if error.connection_invalidated or isinstance(error, OperationalError | InterfaceError):
            return True
        error = error.orig
    if isinstance(error, PoolTimeout | ConnectionError | TimeoutError | OSError):
        return True
    return (_state(error) or "").startswith(_UNAVAILABLE_SQLSTATES) or driver.unusable(error)


async def on_database(url: str, act: Callable[[Database], Awaitable[None]]) -> None:
    """Run ``act`` on a database of its own (an operator command's), disposed at the end."""
    db = Database(create_engine(url))
    try:
        await act(db)
    finally:
        await db.dispose()
