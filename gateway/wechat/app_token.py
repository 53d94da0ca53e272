"""The one owner of each app's access token (WECHAT.md §6).

``stable_token`` answers the same token while it is valid, and ``cgi-bin/token`` would knock
out the tokens of every other holder, so the gateway keeps one cached token per appid, refreshes
it ahead of expiry under a lock (one refresh at a time), and on 40001/42001 refreshes once and
retries the call once. With Redis the cache and the lock are shared by every replica (the token
sealed at rest); without it, or while Redis is down, each process owns its own.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from gateway.config import AppConfig
from gateway.degraded import Degraded
from gateway.store.secretbox import SecretBox
from gateway.store.shared_state import redis_error
from gateway.wechat.client import WeChatClient
from gateway.wechat.errors import STALE_APP_TOKEN, WeChatError

if TYPE_CHECKING:
    from redis.asyncio import Redis

T = TypeVar("T")
_EARLY = 300.0  # refresh this many seconds before WeChat's expiry


@dataclass
class _Slot:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    value: str | None = None
    fresh_until: float = 0.0  # wall clock, comparable across processes


@dataclass(frozen=True)
class SharedTokens:
    redis: Redis
    box: SecretBox
    wait_seconds: float = 10.0
    poll: float = 0.05


class AppTokens:
    def __init__(
        self,
        wechat: WeChatClient,
        shared: SharedTokens | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._wechat = wechat
        self._shared = shared
        self._clock = clock
        self._slots: dict[str, _Slot] = {}
        self.health = Degraded("Redis (app access tokens)", "each process owns its tokens")

    def fresh_until(self, app: AppConfig) -> float | None:
        """Until when this process holds a fresh token of ``app`` (None: none yet): the
        console's apps page shows it as the token's health."""
        slot = self._slots.get(app.appid)
        return slot.fresh_until if slot is not None and slot.value else None

    async def get(self, app: AppConfig) -> str:
        slot = self._slots.setdefault(app.appid, _Slot())
        if slot.value and slot.fresh_until > self._clock():
            return slot.value
        async with slot.lock:
            if not (slot.value and slot.fresh_until > self._clock()):
                slot.value, slot.fresh_until = await self._obtain(app)
            return slot.value

    async def _obtain(self, app: AppConfig) -> tuple[str, float]:
        if self._shared is None:
            return await self._fetch(app)
        try:
            found = await self._shared_token(app, self._shared)
            self.health.ok()
            return found
        except redis_error() as exc:
            self.health.failed(exc)
            return await self._fetch(app)

    async def _fetch(self, app: AppConfig) -> tuple[str, float]:
        token = await self._wechat.stable_token(app)
        lifetime = max(token.expires_in - _EARLY, token.expires_in / 2)
        return token.value, self._clock() + lifetime

    async def _shared_token(self, app: AppConfig, shared: SharedTokens) -> tuple[str, float]:
        key, lock = f"gw:apptoken:{app.appid}", f"gw:apptoken-lock:{app.appid}"
        deadline = self._clock() + shared.wait_seconds
        while True:
            found = await self._cached(shared, key)
            if found is not None:
                return found
            if await shared.redis.set(lock, "1", nx=True, ex=int(shared.wait_seconds)):
                try:
                    # a holder that finished between our look and the lock left its token
                    found = await self._cached(shared, key)
                    if found is not None:
                        return found
                    value, fresh_until = await self._fetch(app)
                    sealed = shared.box.seal(
                        json.dumps({"value": value, "fresh_until": fresh_until}), key
                    )
                    ttl = max(1, int(fresh_until - self._clock()))
                    await shared.redis.set(key, sealed, ex=ttl)
                    return value, fresh_until
                finally:
                    await shared.redis.delete(lock)
            if self._clock() > deadline:
                return await self._fetch(app)
            await asyncio.sleep(shared.poll)

    async def _cached(self, shared: SharedTokens, key: str) -> tuple[str, float] | None:
        """The token another instance stored, while it is fresh."""
        cached = await shared.redis.get(key)
        if cached is None:
            return None
        data = json.loads(shared.box.open(_text(cached), key))
        if data["fresh_until"] <= self._clock():
            return None
        return data["value"], data["fresh_until"]

    async def forget(self, app: AppConfig, value: str) -> None:
        """Drop a token WeChat called stale, unless a newer one already replaced it."""
        slot = self._slots.get(app.appid)
        if slot and slot.value == value:
            slot.value = None
        if self._shared is None:
            return
        key = f"gw:apptoken:{app.appid}"
        try:
            cached = await self._shared.redis.get(key)
            if cached and json.loads(self._shared.box.open(_text(cached), key))["value"] == value:
                await self._shared.redis.delete(key)
        except redis_error() as exc:
            self.health.failed(exc)

    async def call(self, app: AppConfig, fn: Callable[[str], Awaitable[T]]) -> T:
        """Run ``fn(token)``; on a stale-token errcode refresh once and retry once."""
        token = await self.get(app)
        try:
            return await fn(token)
        except WeChatError as exc:
            if exc.errcode not in STALE_APP_TOKEN:
                raise
        await self.forget(app, token)
        return await fn(await self.get(app))


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw
