"""The test services under pytest-xdist (``-n N``, what .ci/run uses): each worker process has a
PostgreSQL database and a Redis database of its own, so that one worker's ``truncate`` or
``gw:*`` clean-up never runs under another worker's test.

- PostgreSQL: worker ``gwK`` uses ``<name>_gwK`` beside the configured database ``<name>``,
  created on first use (the ``pg_migrated`` fixture migrates it, as it does the configured one);
- Redis: worker ``gwK`` uses database number ``<n> + K`` (``<n>``: the configured one), so
  ``-n N`` needs the N databases from ``<n>`` on free for the tests.

Without xdist (the README's command, a single test file) the configured URLs are used as they
are.
"""

from __future__ import annotations

import asyncio
import os
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.engine import make_url

WORKER = os.environ.get("PYTEST_XDIST_WORKER")
"""``gw0``, ``gw1``... in a pytest-xdist worker; None in a plain pytest run."""

REDIS_DATABASES = 16  # redis.conf's default `databases`


def _index() -> int:
    assert WORKER is not None
    return int(WORKER.removeprefix("gw"))


def postgres_url(configured: str | None) -> str | None:
    """The worker's own database beside the configured one (the configured one without xdist)."""
    if not configured or WORKER is None:
        return configured
    url = make_url(configured)
    return url.set(database=f"{url.database}_{WORKER}").render_as_string(hide_password=False)


def redis_url(configured: str | None) -> str | None:
    """The worker's own Redis database: the configured number plus the worker's index."""
    if not configured or WORKER is None:
        return configured
    parts = urlsplit(configured)
    number = int(parts.path.strip("/") or 0) + _index()
    if number >= REDIS_DATABASES:
        raise RuntimeError(f"{configured}: no Redis database {number} for worker {WORKER}")
    return urlunsplit(parts._replace(path=f"/{number}"))


def create_postgres_database(url: str) -> None:
    """Create ``url``'s database when it does not exist yet (a worker's, on its first run)."""
    import asyncpg

    target = make_url(url)
    admin = target.set(drivername="postgresql", database="postgres")

    async def create() -> None:
        conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
        try:
            exists = await conn.fetchval(
                "SELECT 1 FROM pg_database WHERE datname = $1", target.database
            )
            if not exists:
                await conn.execute(f'CREATE DATABASE "{target.database}"')
        finally:
            await conn.close()

    asyncio.run(create())
