"""A request-body ceiling, enforced while the body streams in (not after buffering it), and a
deadline for the whole body, so a client that stalls mid-body is dropped with a 408."""

from __future__ import annotations

import asyncio

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    pass


class BodyTimeout(Exception):
    pass


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float = 10.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, receive, send)
            return
        seen = 0
        deadline = asyncio.get_running_loop().time() + self.timeout

        async def counting_receive() -> Message:
            nonlocal seen
            try:
                # a timeout scope, not wait_for: wait_for wraps every receive in a new task
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout from None
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise BodyTooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except BodyTooLarge:
            await self._reject(scope, receive, send)
        except BodyTimeout:
            slow = PlainTextResponse("Request body too slow.", 408, {"connection": "close"})
            await slow(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = PlainTextResponse(f"Request body over {self.max_bytes} bytes.", status_code=413)
        await response(scope, receive, send)
