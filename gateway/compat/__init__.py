"""Framework internals in one place: every private or undocumented API of a library the
gateway relies on lives in this package, one module per library, behind a small named
function or class whose docstring states the assumption and the version it was checked
against. The feature modules import from here only; ``tests/test_compat.py`` checks each
assumption against the installed library and fails naming it, so an upgrade that breaks one
fails loudly in CI instead of quietly changing behaviour or speed.

Layering: ``compat`` is the lowest layer (it imports library code only). Its strawberry and
graphql modules may be imported by ``gateway.api`` alone, its SQLAlchemy module by
``gateway.store`` alone (import-linter contracts in pyproject.toml): the rule "strawberry and
graphql only in api" still holds for every feature module.

No asyncpg module: the gateway uses only asyncpg's public API (its exception classes,
``Connection.fetch``, ``add_listener``), reached through SQLAlchemy's public
``driver_connection``.
"""
