"""The WeChat client's network backend (``gateway.wechat.network``) keeps httpcore's pool
behaviour: an idle connection is reused while the server keeps it open, and one the server
closed is noticed (readable while idle) and replaced, without a failed call. A plain HTTP/1.1
server on loopback stands in for WeChat (the sandbox answers in-process, not over a socket)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpcore
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

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
