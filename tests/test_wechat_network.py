"""The WeChat client's network backend (``gateway.wechat.network``) keeps httpcore's pool
behaviour: an idle connection is reused while the server keeps it open, and one the server
closed is noticed (readable while idle) and replaced, without a failed call. A plain HTTP/1.1
server on loopback stands in for WeChat (the sandbox answers in-process, not over a socket)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpcore

from gateway.wechat.client import http_client
from gateway.wechat.network import PollingBackend, is_socket_readable

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class Server:
    """Answers every request with ``{}``; counts connections; can close the idle ones."""

    def __init__(self) -> None:
        self.connections = 0
        self.writers: list[asyncio.StreamWriter] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(ANSWER)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def close_all(self) -> None:
        for writer in self.writers:
            writer.close()
        self.writers.clear()


@asynccontextmanager
async def serving() -> AsyncIterator[tuple[Server, str]]:
    server = Server()
    listener = await asyncio.start_server(server.serve, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        await server.close_all()
        listener.close()


async def test_idle_connections_are_reused_and_a_closed_one_replaced() -> None:
    async with serving() as (server, base), http_client(base, 5) as client:
        for _ in range(3):
            assert (await client.get("/sns/jscode2session")).status_code == 200
        assert server.connections == 1  # kept alive and reused
        await server.close_all()
        await asyncio.sleep(0.05)  # the FIN reaches the client's socket
        assert (await client.get("/sns/jscode2session")).status_code == 200
        assert server.connections == 2  # the closed one was noticed before use


async def test_a_stream_knows_its_socket_and_its_state() -> None:
    async with serving() as (server, base):
        port = int(base.rsplit(":", 1)[1])
        stream = await PollingBackend().connect_tcp("127.0.0.1", port)
        assert stream.get_extra_info("socket") is not None
        assert stream.get_extra_info("is_readable") is False  # open, nothing sent
        await stream.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.sleep(0.05)
        assert stream.get_extra_info("is_readable") is True  # the answer waits
        assert await stream.read(4096) == ANSWER
        await server.close_all()
        await asyncio.sleep(0.05)
        assert stream.get_extra_info("is_readable") is True  # EOF waits
        await stream.aclose()
        assert stream.get_extra_info("is_readable") is True  # gone: as httpcore says
        assert is_socket_readable(None)


def test_the_backend_is_httpcores_interface() -> None:
    assert isinstance(PollingBackend(), httpcore.AsyncNetworkBackend)
