"""Single-flight across gateway processes, through Redis.

A client retry may reach another replica. The first process to take a short Redis lock for a
code calls WeChat and leaves the outcome in Redis for a short while; the others wait for that
outcome instead of calling WeChat (which would answer 40163). Outcomes that hold a session_key
are sealed before they reach Redis.

Redis down: each process exchanges on its own (the in-process single-flight still holds), so a
retry that lands elsewhere may get CODE_USED, and the account graph's unique index still keeps
one account per person. Logged once; recovers by itself.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from gateway.degraded import Degraded
from gateway.errors import GatewayError
from gateway.store.shared_state import redis_error
from gateway.wechat.errors import restored

if TYPE_CHECKING:
    from redis.asyncio import Redis

T = TypeVar("T")
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class SharedFlight(Generic[T]):
    def __init__(
        self,
        redis: Redis,
        *,
        ttl: float,
        encode: Callable[[str, T], str],
        decode: Callable[[str, str], T],
        lock_seconds: float = 15.0,
        poll: float = 0.02,
    ) -> None:
        self._redis = redis
        self._ttl = max(1, int(ttl))
        self._encode = encode
        self._decode = decode
        self._lock_ms = int(lock_seconds * 1000)
        self._poll = poll
        self._release = redis.register_script(_RELEASE)
        self.health = Degraded("Redis (code single-flight)", "exchanging codes per process")

    async def run(
        self, key: str, call: Callable[[], Awaitable[T]], remember: Callable[[Exception], bool]
    ) -> T:
        deadline = time.monotonic() + self._lock_ms / 1000
        while True:
            try:
                stored = await self._stored(key)
                self.health.ok()
                if stored is None:
                    token = secrets.token_hex(8)
                    if await self._redis.set(
                        f"gw:flight-lock:{key}", token, nx=True, px=self._lock_ms
                    ):
                        # a leader that just finished leaves its outcome: look once more
                        stored = await self._stored(key)
                        if stored is None:
                            return await self._lead(key, token, call, remember)
            except redis_error() as exc:
                self.health.failed(exc)
                return await call()
            if stored is not None:
                return self._outcome(key, stored)
            if time.monotonic() > deadline:
                return await call()  # the leader vanished: better one more call than none
            await asyncio.sleep(self._poll)

    async def _stored(self, key: str) -> str | None:
        raw = await self._redis.get(f"gw:flight:{key}")
        return raw.decode() if isinstance(raw, bytes) else raw

    async def _lead(
        self,
        key: str,
        token: str,
        call: Callable[[], Awaitable[T]],
        remember: Callable[[Exception], bool],
    ) -> T:
        """Call upstream. The lock is left to expire once an outcome is stored (followers read
        the outcome first); it is released only when there is nothing to share."""
        kept = False
        try:
            result = await call()
        except Exception as exc:
            if remember(exc) and isinstance(exc, GatewayError):
                kept = await self._keep(key, _encode_error(exc))
            raise
        else:
            kept = await self._keep(key, json.dumps({"ok": self._encode(key, result)}))
            return result
        finally:
            if not kept:
                try:
                    await self._release(keys=[f"gw:flight-lock:{key}"], args=[token])
                except redis_error() as exc:
                    self.health.failed(exc)

    async def _keep(self, key: str, value: str) -> bool:
        try:
            await self._redis.set(f"gw:flight:{key}", value, ex=self._ttl)
        except redis_error() as exc:
            self.health.failed(exc)
            return False
        return True

    def _outcome(self, key: str, stored: str) -> T:
        data = json.loads(stored)
        if "error" in data:
            err = data["error"]
            raise restored(
                err["code"],
                err.get("template", err["message"]),
                err.get("errcode"),
                err.get("params"),
            )
        return self._decode(key, data["ok"])


def _encode_error(exc: GatewayError) -> str:
    error = {
        "code": exc.code,
        "message": exc.message,
        "errcode": exc.errcode,
        "template": exc.template,
        "params": exc.params,
    }
    return json.dumps({"error": error})
