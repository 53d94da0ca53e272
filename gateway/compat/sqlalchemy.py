"""SQLAlchemy's internals the driver path relies on (checked against SQLAlchemy 2.1.9; the
same held on 2.0.x). Only ``gateway.store`` imports this module (an import-linter contract);
``tests/test_compat.py`` checks every assumption stated here against the installed
SQLAlchemy.

``gateway.store.driver`` runs statements built once directly on the driver's connection
(bench/RESULTS.md, "The hot writes run on the driver"). To do what SQLAlchemy would have done
it reads a compiled statement's parts (``SQLCompiler``, documented among SQLAlchemy's "Core
Internals", not its stable API), raises driver errors as SQLAlchemy would
(``DBAPIError.instance``) and, on a lost connection, invalidates the pool as SQLAlchemy does
on a disconnect
(``Pool._invalidate``). The public ``PoolProxiedConnection.invalidate()`` replaces only the
one connection; ``engine.dispose()`` replaces the pool (every warm connection, mid-request
ones included): neither is what SQLAlchemy does, so the private call stays, here.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import BindParameter, ClauseElement, Executable


class Positional(NamedTuple):
    """A statement compiled for a positional driver: its SQL and its parameters in order."""

    sql: str
    names: tuple[str, ...]
    binds: tuple[BindParameter[Any], ...]


def positional(statement: Executable, dialect: Dialect, keys: frozenset[str]) -> Positional:
    """Compile ``statement`` for ``dialect`` (a positional paramstyle) with ``keys`` as the
    columns of an ``INSERT`` or ``UPDATE`` without values of its own; ``ValueError`` when its
    SQL depends on the values or it needs defaults computed in Python (no one plan).

    Assumes (SQLAlchemy 2.0/2.1) that the ``SQLCompiler`` answered by ``compile`` has
    ``positiontup`` (the parameters' names in order), ``binds`` (name -> ``BindParameter``),
    ``escaped_bind_names`` (names rewritten for the driver: none here), ``insert_prefetch``
    and ``update_prefetch`` (columns whose Python defaults the execution context would
    compute), and that expanding parameters render as ``POSTCOMPILE`` in its ``string``."""
    if not isinstance(statement, ClauseElement):
        raise TypeError(f"not a statement: {statement!r}")
    compiled = statement.compile(dialect=dialect, column_keys=sorted(keys))
    if not isinstance(compiled, SQLCompiler):
        raise TypeError(f"not a SQL statement: {statement!r}")
    if (
        "POSTCOMPILE" in compiled.string
        or compiled.escaped_bind_names
        or compiled.insert_prefetch
        or compiled.update_prefetch
    ):
        raise ValueError(f"no plan for this statement: {compiled.string[:80]!r}")
    names = tuple(compiled.positiontup or ())
    return Positional(compiled.string, names, tuple(compiled.binds[name] for name in names))


def dbapi_error(sql: str, error: Exception, dbapi_base: type[Exception]) -> StatementError:
    """``error`` of the DB-API driver as SQLAlchemy raises it (``IntegrityError`` for a unique
    violation, ...), parameters hidden. Assumes (SQLAlchemy 2.0/2.1) the undocumented
    classmethod ``DBAPIError.instance(statement, params, orig, dbapi_base_err,
    hide_parameters)``, which SQLAlchemy's own execution uses to translate driver errors."""
    return DBAPIError.instance(sql, None, error, dbapi_base, True)


def invalidate_pool(
    engine: AsyncEngine, connection: PoolProxiedConnection, error: BaseException
) -> None:
    """As SQLAlchemy does on a disconnect: invalidate ``connection``, and every connection as
    old as it (a database restart broke them all) is replaced at its next checkout.

    Assumes (SQLAlchemy 2.0/2.1) the private ``Pool._invalidate(connection, exception)``,
    which sets the pool's invalidation time and invalidates the connection; SQLAlchemy's
    ``Connection._handle_dbapi_exception`` calls it so."""
    engine.sync_engine.pool._invalidate(connection, error)
