"""The partner's webhook endpoint: a tiny HTTP/1.1 server on the soak's event loop that checks
each delivery's Standard Webhooks signature and remembers its ``webhook-id``."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac

from bench.loadgen import HOST

_NO_CONTENT = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"


class Receiver:
    def __init__(self, secret: str) -> None:
        self.key = base64.b64decode(secret.removeprefix("whsec_"))
        self.received: set[str] = set()
        self.deliveries = 0
        self.bad_signatures = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, HOST, 0)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, ValueError):
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                headers = {}
                for line in head.split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self._record(headers, body)
                writer.write(_NO_CONTENT)
                await writer.drain()
        writer.close()

    def _record(self, headers: dict[str, str], body: bytes) -> None:
        event_id = headers.get("webhook-id", "")
        signed = f"{event_id}.{headers.get('webhook-timestamp', '')}.".encode() + body
        expected = base64.b64encode(hmac.new(self.key, signed, hashlib.sha256).digest()).decode()
        given = [s.partition(",")[2] for s in headers.get("webhook-signature", "").split()]
        self.deliveries += 1
        if not any(hmac.compare_digest(expected, g) for g in given):
            self.bad_signatures += 1
            return
        self.received.add(event_id)
