"""The hot paths' writes on the database driver itself.

A statement built once (a login, a refresh) is compiled once by SQLAlchemy, with its types'
bind and result processors, and then run directly on the driver's connection: on PostgreSQL
(``fetch``) a one-statement write (data-modifying CTEs, autocommitted) on a connection of
SQLAlchemy's own pool; on SQLite (``SyncDriver``) the statements of a unit of work on the
writer thread, inside the transaction SQLAlchemy began. Each run skips SQLAlchemy's
per-execution work (a ``Connection`` and its transaction, an execution context, a cursor
adapter, a ``Result``), which cost ~0.2 ms of CPU a statement on PostgreSQL: a third of a
refresh. What SQLAlchemy would do besides is done here too: values converted by the same
processors, driver errors raised as SQLAlchemy's (``IntegrityError``; a broken connection as
an invalidated ``OperationalError``, after taking the connection out of the pool), the
connection given back to the pool.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.expression import Executable

from gateway.compat.sqlalchemy import dbapi_error, invalidate_pool, positional

Processor = Callable[[Any], Any] | None


@functools.cache
def _broken() -> tuple[type[BaseException], ...]:
    """asyncpg's errors that mean the connection is unusable (SQLAlchemy's ``is_disconnect``):
    its socket failed or closed, the server ended the session (class 08, or 57: an
    administrator's or a crash's shutdown), it could not answer in time, or the driver lost
    track of the protocol's state (``InternalClientError``). Imported when first needed: a
    SQLite process never loads asyncpg (~1.6 MiB)."""
    import asyncpg

    return (
        asyncpg.PostgresConnectionError,
        asyncpg.InterfaceError,
        asyncpg.exceptions.OperatorInterventionError,
        asyncpg.exceptions.InternalClientError,
        OSError,
        TimeoutError,
    )


def unusable(error: BaseException | None) -> bool:
    """``error`` is (or was raised from) one of asyncpg's errors of an unusable connection.
    SQLAlchemy raises its own translation of asyncpg's error ``from`` it, so the driver's error
    is the ``__cause__``. False in a process that never loaded asyncpg."""
    if "asyncpg" not in sys.modules:
        return False
    return isinstance(error, _broken()) or isinstance(getattr(error, "__cause__", None), _broken())


class Plan(NamedTuple):
    """A statement compiled for the driver: its SQL, its parameters in order (with the value
    of those the statement itself holds) and the processors of values in and out."""

    sql: str
    names: tuple[str, ...]
    fixed: Mapping[str, Any]
    binds: tuple[Processor, ...]
    results: tuple[Processor, ...]

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        values = []
        for name, process in zip(self.names, self.binds, strict=True):
            value = params[name] if name in params else self.fixed[name]
            values.append(value if process is None else process(value))
        return values

    def rows(self, records: Sequence[Any]) -> list[tuple[Any, ...]]:
        results = self.results
        if not any(results):  # a statement without typed columns (``text``), or no processing
            return [tuple(record) for record in records]
        return [
            tuple(
                value if process is None else process(value)
                for value, process in zip(record, results, strict=True)
            )
            for record in records
        ]


def plan(statement: Executable, *, dialect: Dialect, keys: frozenset[str] = frozenset()) -> Plan:
    """Compile ``statement`` for ``dialect``'s driver; ``keys`` name the parameters an
    ``INSERT`` or ``UPDATE`` without its own values takes as columns. Statements whose SQL
    depends on the values (expanding ``IN`` lists, literal rendering), or that need defaults
    computed in Python, are refused: they have no one plan."""
    compiled = positional(statement, dialect, keys)
    fixed: dict[str, Any] = {}
    binds: list[Processor] = []
    for name, bind in zip(compiled.names, compiled.binds, strict=True):
        if not bind.required:
            fixed[name] = bind.effective_value
        # the dialect's own form of the type, as SQLAlchemy itself processes values with
        binds.append(bind.type.dialect_impl(dialect).bind_processor(dialect))
    columns = getattr(statement, "exported_columns", ())
    results = tuple(
        column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
    )
    return Plan(compiled.sql, compiled.names, fixed, tuple(binds), results)


class Executed(NamedTuple):
    """What a statement run on a ``SyncDriver`` answered (``Result``'s few parts in use)."""

    rows: list[tuple[Any, ...]]
    rowcount: int

    def all(self) -> list[tuple[Any, ...]]:
        return self.rows

    def first(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None


class SyncDriver:
    """A synchronous connection's driver connection, inside the transaction its caller holds
    (SQLite's units of work on the writer thread): statements built once run on it through
    their plans, as on PostgreSQL (``fetch``); a list of parameter sets is one executemany."""

    def __init__(
        self, dbapi: Any, dialect: Dialect, plans: Callable[[Executable, frozenset[str]], Plan]
    ) -> None:
        self._dbapi = dbapi
        self._errors: type[Exception] = dialect.loaded_dbapi.Error
        self._plans = plans

    def execute(
        self,
        statement: Executable,
        params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    ) -> Executed:
        if params is None or isinstance(params, Mapping):
            return self._run(statement, [params or {}], many=False)
        return self._run(statement, params, many=True)

    def _run(
        self, statement: Executable, sets: Sequence[Mapping[str, Any]], *, many: bool
    ) -> Executed:
        plan = self._plans(statement, frozenset(sets[0]))
        cursor = self._dbapi.cursor()
        try:
            if many:
                cursor.executemany(plan.sql, [plan.arguments(p) for p in sets])
                return Executed([], cursor.rowcount)
            cursor.execute(plan.sql, plan.arguments(sets[0]))
            rows = plan.rows(cursor.fetchall()) if cursor.description else []
            return Executed(rows, cursor.rowcount)
        except self._errors as error:
            # as SQLAlchemy raises it (``IntegrityError`` for a unique violation, ...)
            raise dbapi_error(plan.sql, error, self._errors) from error
        finally:
            cursor.close()


async def fetch(
    engine: AsyncEngine, plan: Plan, params: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """Run ``plan`` on a pooled connection, autocommitted (the driver begins no transaction
    of its own), and answer its rows."""
    arguments = plan.arguments(params)
    proxied = await engine.raw_connection()
    try:
        records = await proxied.driver_connection.fetch(plan.sql, *arguments)  # type: ignore[union-attr]
    except Exception as error:
        if isinstance(error, _broken()):
            # as SQLAlchemy does on a disconnect: every connection as old as this one is
            # suspect (a database restart broke them all), and is replaced at its next checkout
            invalidate_pool(engine, proxied, error)
        translated = _translated(error, plan.sql)
        if translated is None:
            raise
        raise translated from error
    except BaseException:
        # cancelled mid-statement: nobody knows what state the connection is in
        proxied.invalidate()
        raise
    finally:
        proxied.close()
    return plan.rows(records)


def _translated(error: Exception, sql: str) -> DBAPIError | None:
    """The driver's error as SQLAlchemy would raise it (parameters hidden: they may carry
    openids), so that callers see one kind of database error whichever way a statement ran;
    ``None`` for an error that is not the database's."""
    if isinstance(error, _broken()):
        return OperationalError(sql, None, error, hide_parameters=True, connection_invalidated=True)
    import asyncpg  # loaded already: the error came from it

    if isinstance(error, asyncpg.IntegrityConstraintViolationError):
        return IntegrityError(sql, None, error, hide_parameters=True)
    if isinstance(error, asyncpg.PostgresError):
        return DBAPIError(sql, None, error, hide_parameters=True)
    return None
