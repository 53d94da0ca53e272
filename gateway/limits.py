"""A request-body ceiling, enforced while the body streams in (not after buffering it), and a
deadline for the whole body, so a client that stalls mid-body is dropped with a 408; and a
ceiling on the GraphQL requests in progress at once, the rest waiting their turn."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.metrics import REQUESTS_WAITING


class BodyTooLarge(Exception):
    pass


class BodyTimeout(Exception):
    pass


class BodySizeLimit:
    """The deadline is kept by one sweeper for every request receiving a body, not a timer
    per receive: ``asyncio.timeout`` schedules and cancels a timer handle on every call
    (~8 us a request), and almost every body has arrived before the app asks for it. A stalled
    body is cut within a sweep interval after its deadline."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        timeout: float = 10.0,
        larger: Mapping[str, tuple[int, Callable[[], Response]]] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # paths that take bigger bodies (an avatar upload), each with its own refusal (made
        # when first needed: its message's catalogue is not loaded for a refusal never sent)
        self.larger = dict(larger or {})
        self.timeout = timeout
        self._sweep_every = min(1.0, timeout / 4)
        self._receiving: dict[asyncio.Task[Any], float] = {}  # waiting for body, by deadline
        self._expired: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self._sweeping_on: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes, _ = self.larger.get(scope["path"], (self.max_bytes, None))
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            await self._reject(scope, receive, send)
            return
        seen = 0
        loop = asyncio.get_running_loop()  # once: on Python 3.11 each call is a getpid()
        task = asyncio.current_task(loop)
        assert task is not None
        deadline = loop.time() + self.timeout

        async def counting_receive() -> Message:
            nonlocal seen
            message = await self._receive_by(task, deadline, receive, loop)
            seen += len(message.get("body", b""))
            if seen > max_bytes:
                raise BodyTooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except BodyTooLarge:
            await self._reject(scope, receive, send)
        except BodyTimeout:
            slow = PlainTextResponse("Request body too slow.", 408, {"connection": "close"})
            await slow(scope, receive, send)

    async def _receive_by(
        self,
        task: asyncio.Task[Any],
        deadline: float,
        receive: Receive,
        loop: asyncio.AbstractEventLoop,
    ) -> Message:
        self._receiving[task] = deadline
        if self._sweeper is None or self._sweeping_on is not loop:  # (an app outlives a loop)
            self._sweeping_on = loop
            self._sweeper = loop.call_later(self._sweep_every, self._sweep)
        try:
            return await receive()
        except asyncio.CancelledError:
            if task not in self._expired:
                raise
            self._expired.discard(task)
            task.uncancel()
            raise BodyTimeout from None
        finally:
            self._receiving.pop(task, None)

    def _sweep(self) -> None:
        """Cancel the receive of every request past its deadline (it is waiting in it: only
        such requests are listed), then come back while any request is receiving."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        for task, deadline in list(self._receiving.items()):
            if deadline <= now and task not in self._expired:
                self._expired.add(task)
                task.cancel()
        self._sweeper = loop.call_later(self._sweep_every, self._sweep) if self._receiving else None

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        _, refusal = self.larger.get(scope["path"], (0, None))
        response = (
            refusal()
            if refusal
            else PlainTextResponse(f"Request body over {self.max_bytes} bytes.", status_code=413)
        )
        await response(scope, receive, send)


class _Slots:
    """Counted slots handed over first come, first served, except that a request coming back
    from a wait on WeChat goes before the ones not yet started: what is under way finishes
    first, so the latency of the requests let in stays short."""

    def __init__(self, limit: int) -> None:
        self._free = limit
        self._returning: deque[asyncio.Future[None]] = deque()
        self._arriving: deque[asyncio.Future[None]] = deque()

    async def take(self, returning: bool = False) -> None:
        if self._free:  # nobody waits while a slot is free (``give`` hands slots to waiters)
            self._free -= 1
            return
        handed = asyncio.get_running_loop().create_future()
        (self._returning if returning else self._arriving).append(handed)
        REQUESTS_WAITING.inc()
        try:
            await handed
        except asyncio.CancelledError:
            if handed.done() and not handed.cancelled():
                self.give()  # handed over as the waiter was cancelled: pass it on
            raise
        finally:
            REQUESTS_WAITING.dec()

    def give(self) -> None:
        for waiting in (self._returning, self._arriving):
            while waiting:
                handed = waiting.popleft()
                if not handed.done():  # (a cancelled waiter's future is done)
                    handed.set_result(None)
                    return
        self._free += 1


@dataclass(slots=True)
class _Slot:
    """The slot one request holds, and the task that holds it."""

    slots: _Slots
    task: asyncio.Task[Any] | None
    held: bool = True


_SLOT: ContextVar[_Slot | None] = ContextVar("gateway_in_progress_slot", default=None)


class InProgressLimit:
    """At most ``limit`` requests at work at once in this process; the others wait, in the
    order they came, before any of their work starts.

    Without it a burst beyond what the CPU serves slows every request in flight at once: each
    await waits for a round of every other request's steps, so a WeChat call's timeout (its
    connection-pool wait included) ran out inside the gateway's own event loop, and the
    retries added load (500 clients on a machine serving ~130 logins/s: half the logins
    failed as UPSTREAM_UNAVAILABLE). Waiting at the door holds no timer, no connection and no
    CPU, and the requests let in run at full speed: clients see the queue as latency.

    A slot is taken once the request's body has arrived (a slow client holds a connection,
    not a slot), and a request waiting on WeChat lends it meanwhile (``waiting_upstream``): a
    slow or unreachable WeChat must not hold every slot and stall token checks and refreshes
    behind logins that cannot succeed. The connections a worker accepts at all are bounded by
    ``GATEWAY_LIMIT_CONCURRENCY``."""

    def __init__(self, limit: int) -> None:
        self._slots = _Slots(limit)

    def slot(self) -> _Held:
        """``async with limit.slot():`` the request's work, in a slot."""
        return _Held(self._slots)


class _Held:
    """One request's ``slot()``: a plain class rather than an ``asynccontextmanager`` (a
    generator and its wrapper per request); the slot is given back however the work ends."""

    __slots__ = ("_slot", "_slots", "_token")

    def __init__(self, slots: _Slots) -> None:
        self._slots = slots

    async def __aenter__(self) -> None:
        slots = self._slots
        await slots.take()
        self._slot = _Slot(slots, asyncio.current_task())
        self._token = _SLOT.set(self._slot)

    async def __aexit__(self, *exc: object) -> None:
        _SLOT.reset(self._token)
        if self._slot.held:
            self._slots.give()


@asynccontextmanager
async def waiting_upstream() -> AsyncIterator[None]:
    """Around a wait on another service: the request's slot goes to the next one waiting, and
    is taken back (ahead of requests not yet started) when the wait is over. Nothing happens
    outside a limited request, or in a task the request started (its slot stays with it)."""
    slot = _SLOT.get()
    if slot is None or not slot.held or slot.task is not asyncio.current_task():
        yield
        return
    slot.held = False
    slot.slots.give()
    try:
        yield
    finally:
        await slot.slots.take(returning=True)  # cancelled while waiting: not held, not given
        slot.held = True
