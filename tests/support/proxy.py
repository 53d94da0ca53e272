"""A TCP proxy the test cuts and restores: real connections really break, as in a restart of
the service behind it, without stopping the shared server. In front of PostgreSQL it can also
stand in for a server that refuses new sessions (``refuse``): each one is answered with the
FATAL error PostgreSQL sends while it starts, stops or recovers."""

from __future__ import annotations

import asyncio
import contextlib
import struct

_SSL_REQUEST, _GSS_REQUEST = 80877103, 80877104
NOT_ACCEPTING = ("57P03", "the database system is not currently accepting connections")


class Proxy:
    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.StreamWriter] = set()
        self._refusal: tuple[str, str] | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._refusal = None
        self._server.close()
        for writer in list(self._pipes):
            writer.close()
        await self._server.wait_closed()

    async def refuse(self, sqlstate: str, message: str) -> None:
        """Break every open connection; answer each new one, as PostgreSQL would, with a FATAL
        ``sqlstate`` error once its startup message is in."""
        await self.cut()
        self._refusal = (sqlstate, message)
        await self.start()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusal is not None:
            with contextlib.suppress(Exception):
                await _refuse(reader, writer, *self._refusal)
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        self._pipes |= {writer, up_writer}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))


async def _refuse(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sqlstate: str, message: str
) -> None:
    """Decline encryption requests, read the startup message, answer an ErrorResponse."""
    while True:
        (length,) = struct.unpack("!i", await reader.readexactly(4))
        body = await reader.readexactly(length - 4)
        if struct.unpack("!i", body[:4])[0] not in (_SSL_REQUEST, _GSS_REQUEST):
            break
        writer.write(b"N")
    fields = b"".join(
        kind + value.encode() + b"\0"
        for kind, value in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", sqlstate), (b"M", message))
    )
    writer.write(b"E" + struct.pack("!i", len(fields) + 5) + fields + b"\0")
    await writer.drain()
