"""Redis, for what replicas share, imported only when it is configured.

The redis package costs a process ~8 MiB of memory, and most single-process deployments (and
the embedded default) never use it. Modules that talk to Redis name its types for the type
checker only, and catch its errors through :func:`redis_error`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis


def connect(url: str) -> Redis:
    """A client for ``url`` with short timeouts: a missing Redis must not stall a request."""
    from redis.asyncio import Redis

    return Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)


class _RedisNotLoaded(Exception):
    """Never raised: stands for ``RedisError`` while the redis package is not loaded."""


def redis_error() -> type[Exception]:
    """``RedisError``, for ``except redis_error() as exc``. An except clause is evaluated when
    an exception reaches it (a Throttled as well as a Redis failure); without redis loaded no
    Redis error can exist, so nothing is imported to answer."""
    module = sys.modules.get("redis.exceptions")
    return module.RedisError if module is not None else _RedisNotLoaded
