"""The frame both cloud SMS adapters (``aliyun``, ``tencent``) stand in: their settings and
keys, the HTTP client they were given, the base URL, the clock they sign with, and one timeout
for every call (a client built without one still cannot hang a person waiting for a code).
What differs (signing, the request, reading the answer) is each adapter's own."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

import httpx

from gateway.sms import cloud


class _Timed(Protocol):
    @property
    def timeout_seconds(self) -> float: ...


S = TypeVar("S", bound=_Timed)


class CloudAdapter(Generic[S]):
    def __init__(
        self,
        settings: S,
        keys: cloud.KeyPair,
        client: httpx.AsyncClient,
        *,
        base_url: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._keys = keys
        self._client = client
        self._url = base_url.rstrip("/") + "/"
        self._clock = clock
        seconds = settings.timeout_seconds
        self._timeout = httpx.Timeout(seconds, connect=min(seconds, 2.0))

    async def aclose(self) -> None:
        """Close the client it was given (``provider`` gives it one of its own)."""
        await self._client.aclose()
