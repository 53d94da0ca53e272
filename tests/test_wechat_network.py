"""The WeChat client's network (``gateway.wechat.network``) keeps httpcore's pool behaviour:
an idle connection is reused while the server keeps it open, and one the server closed is
noticed (readable while idle) and replaced, without a failed call; concurrent calls each have a
connection, at most ``max_connections`` at once, ``max_keepalive`` kept; a call that fails or is
cancelled half-way closes its connection and frees its slot. A plain HTTP/1.1 server on loopback
stands in for WeChat (the sandbox answers in-process, not over a socket)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpcore
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.compat.httpx import transport_on
from gateway.wechat.network import IdlePool, PollingBackend, http_client, is_socket_readable

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class Server:
    """Answers every request with ``{}``; counts connections; can close the idle ones."""

    def __init__(self) -> None:
        self.connections = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.held = 0  # requests read and not answered yet
        self.go = asyncio.Event()  # answers wait for it while ``hold`` is set
        self.go.set()
        self.broken = False  # answer half a response, then close

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                self.held += 1
                await self.go.wait()
                self.held -= 1
                if self.broken:
                    writer.write(ANSWER[:-1])
                    await writer.drain()
                    break
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


def _self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a fresh certificate for 127.0.0.1, and a client context trusting it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wechat.test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("wechat.test")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


async def test_a_tls_stream_knows_its_socket_too(tmp_path: Path) -> None:
    """WeChat is HTTPS: httpcore upgrades the TCP stream (``start_tls``); the TLS stream keeps
    the cheap check on the same socket and passes httpcore's other questions through."""
    server_context, client_context = _self_signed(tmp_path)
    server = Server()
    listener = await asyncio.start_server(server.serve, "127.0.0.1", 0, ssl=server_context)
    port = listener.sockets[0].getsockname()[1]
    try:
        plain = await PollingBackend().connect_tcp("127.0.0.1", port)
        stream = await plain.start_tls(client_context, "wechat.test", timeout=5)
        assert stream.get_extra_info("socket") is plain.get_extra_info("socket")
        assert stream.get_extra_info("ssl_object") is not None
        assert stream.get_extra_info("is_readable") is False
        await stream.write(b"GET / HTTP/1.1\r\nHost: wechat.test\r\n\r\n")
        assert await stream.read(4096) == ANSWER
        await server.close_all()
        await asyncio.sleep(0.05)
        assert stream.get_extra_info("is_readable") is True  # the close waits
        await stream.aclose()
    finally:
        await server.close_all()
        listener.close()


def _pool(max_connections: int = 10, max_keepalive: int = 10, expiry: float = 60) -> IdlePool:
    return IdlePool(
        PollingBackend(),
        ssl_context=None,
        max_connections=max_connections,
        max_keepalive=max_keepalive,
        keepalive_expiry=expiry,
    )


@asynccontextmanager
async def client_on(pool: IdlePool, base: str) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client whose requests go through ``pool``, as the WeChat client's do."""
    transport = transport_on(lambda _: pool)
    async with httpx.AsyncClient(base_url=base, transport=transport, timeout=5) as client:
        yield client


async def _until(condition: Callable[[], bool]) -> None:
    """Let the loop run until ``condition`` holds (the server has read what was sent)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("never happened")


async def test_concurrent_calls_each_take_a_connection_and_come_back_last_in_first_out() -> None:
    pool = _pool(max_keepalive=3)
    async with serving() as (server, base), client_on(pool, base) as client:
        server.go.clear()
        calls = [asyncio.create_task(client.get("/a")) for _ in range(5)]
        await _until(lambda: server.held == 5)
        assert server.connections == 5
        server.go.set()
        assert [(await call).status_code for call in calls] == [200] * 5
        assert len(pool.connections) == 3  # the others closed: max_keepalive
        last = pool.connections[-1]
        assert (await client.get("/b")).status_code == 200
        assert pool.connections[-1] is last  # the one used last went out and came back
        assert server.connections == 5


async def test_no_more_than_max_connections_on_the_wire() -> None:
    pool = _pool(max_connections=2)
    async with serving() as (server, base), client_on(pool, base) as client:
        server.go.clear()
        calls = [asyncio.create_task(client.get("/a")) for _ in range(3)]
        await _until(lambda: server.held == 2)
        for _ in range(20):  # the third is not sent while two are on the wire
            await asyncio.sleep(0)
        assert server.held == 2
        assert not any(call.done() for call in calls)
        assert server.connections == 2
        server.go.set()
        assert [(await call).status_code for call in calls] == [200] * 3
        assert server.connections == 2  # the third took a connection that came back


async def test_a_call_waits_for_a_slot_at_most_its_pool_timeout() -> None:
    pool = _pool(max_connections=1)
    async with serving() as (server, base), client_on(pool, base) as client:
        server.go.clear()
        first = asyncio.create_task(client.get("/a"))
        await _until(lambda: server.held == 1)
        with pytest.raises(httpx.PoolTimeout):
            await client.get("/b", timeout=httpx.Timeout(5, pool=0.01))
        server.go.set()
        assert (await first).status_code == 200
        assert (await client.get("/c")).status_code == 200  # the slot is free again


async def test_a_broken_answer_closes_its_connection_and_frees_its_slot() -> None:
    pool = _pool(max_connections=1)
    async with serving() as (server, base), client_on(pool, base) as client:
        server.broken = True
        with pytest.raises(httpx.TransportError):
            await client.get("/a")
        assert pool.connections == []
        server.broken = False
        assert (await client.get("/b")).status_code == 200
        assert server.connections == 2


async def test_a_cancelled_call_closes_its_connection_and_frees_its_slot() -> None:
    pool = _pool(max_connections=1)
    async with serving() as (server, base), client_on(pool, base) as client:
        server.go.clear()
        call = asyncio.create_task(client.get("/a"))
        await _until(lambda: server.held == 1)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert pool.connections == []  # half-way: closed, never reused
        server.go.set()
        assert (await client.get("/b")).status_code == 200
        assert server.connections == 2


async def test_an_expired_connection_is_closed_not_used() -> None:
    pool = _pool(expiry=0)
    async with serving() as (server, base), client_on(pool, base) as client:
        assert (await client.get("/a")).status_code == 200
        assert (await client.get("/b")).status_code == 200
        assert server.connections == 2  # none reused: each expired when it came back
        assert pool.connections == []


async def test_closing_the_pool_closes_every_connection() -> None:
    pool = _pool()
    async with serving() as (server, base):
        async with client_on(pool, base) as client:
            server.go.clear()
            calls = [asyncio.create_task(client.get("/a")) for _ in range(2)]
            await _until(lambda: server.held == 2)
            server.go.set()
            await asyncio.gather(*calls)
            assert len(pool.connections) == 2
        assert pool.connections == []


async def test_the_wechat_client_keeps_as_many_connections_as_its_concurrency() -> None:
    """``http_client(concurrency=n)``: n idle connections are kept for the next calls, so a
    steady load of n calls on the wire reopens none."""
    async with serving() as (server, base), http_client(base, 5, concurrency=3) as client:
        for _ in range(2):
            server.go.clear()
            calls = [asyncio.create_task(client.get("/a")) for _ in range(4)]
            await _until(lambda: server.held == 4)
            server.go.set()
            assert [(await call).status_code for call in calls] == [200] * 4
        assert server.connections == 5  # 4, then the 3 kept and one more
