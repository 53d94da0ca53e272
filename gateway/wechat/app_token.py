"""The one owner of each app's access token inside this process (WECHAT.md §6).

``stable_token`` answers the same token while it is valid, and ``cgi-bin/token`` would knock
out the tokens of every other holder, so the gateway keeps one cached token per appid, refreshes
it ahead of expiry under a lock (one refresh at a time), and on 40001/42001 refreshes once and
retries the call once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from gateway.config import AppConfig
from gateway.wechat.client import WeChatClient
from gateway.wechat.errors import STALE_APP_TOKEN, WeChatError

T = TypeVar("T")
_EARLY = 300.0  # refresh this many seconds before WeChat's expiry


@dataclass
class _Slot:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    value: str | None = None
    fresh_until: float = 0.0


class AppTokens:
    def __init__(self, wechat: WeChatClient, clock: Callable[[], float] = time.monotonic) -> None:
        self._wechat = wechat
        self._clock = clock
        self._slots: dict[str, _Slot] = {}

    async def get(self, app: AppConfig) -> str:
        slot = self._slots.setdefault(app.appid, _Slot())
        if slot.value and slot.fresh_until > self._clock():
            return slot.value
        async with slot.lock:
            if slot.value and slot.fresh_until > self._clock():
                return slot.value  # another task refreshed while we waited
            token = await self._wechat.stable_token(app)
            slot.value = token.value
            slot.fresh_until = self._clock() + max(token.expires_in - _EARLY, token.expires_in / 2)
            return slot.value

    def forget(self, app: AppConfig, value: str) -> None:
        """Drop a token WeChat called stale, unless a newer one already replaced it."""
        slot = self._slots.get(app.appid)
        if slot and slot.value == value:
            slot.value = None

    async def call(self, app: AppConfig, fn: Callable[[str], Awaitable[T]]) -> T:
        """Run ``fn(token)``; on a stale-token errcode refresh once and retry once."""
        token = await self.get(app)
        try:
            return await fn(token)
        except WeChatError as exc:
            if exc.errcode not in STALE_APP_TOKEN:
                raise
        self.forget(app, token)
        return await fn(await self.get(app))
