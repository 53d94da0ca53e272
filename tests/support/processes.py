"""Real `gateway` processes: a free port to start one on, waiting until it answers, and a
cluster of them (two `gateway serve` on one PostgreSQL database of their own, with or without
Redis, and the WeChat emulator as its own `gateway sandbox` process)."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from gateway.store import migrate
from tests.support.harness import APPS_TOML, LOGIN, metric

VIEWER = "{ viewer { id } }"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # waiting for a process to come up, not timing a behaviour
    raise RuntimeError(f"{what} did not become ready")


@dataclass
class Cluster:
    gateways: list[str]
    wechat: str
    env: dict[str, str] = field(default_factory=dict)

    async def gql(
        self,
        client: httpx.AsyncClient,
        index: int,
        query: str,
        variables: dict[str, Any] | None = None,
        token: str | None = None,
    ) -> dict[str, Any]:
        url = self.gateways[index % len(self.gateways)]
        headers = {"authorization": f"Bearer {token}"} if token else {}
        response = await client.post(
            f"{url}/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        return body

    async def mint(self, client: httpx.AsyncClient, appid: str, user: str, **extra: Any) -> str:
        answer = await client.post(
            f"{self.wechat}/sandbox/codes", json={"appid": appid, "user": user, **extra}
        )
        return str(answer.json()["code"])

    async def calls(self, client: httpx.AsyncClient, path: str) -> int:
        stats = (await client.get(f"{self.wechat}/sandbox/stats")).json()
        return int(stats["calls"].get(path, 0))

    async def login(self, client: httpx.AsyncClient, index: int, user: str) -> dict[str, Any]:
        """``user`` logs in to shop-mp through gateway ``index``: the LoginSuccess."""
        code = await self.mint(client, "wxtestshop000001", user)
        variables = {"app": "shop-mp", "code": code, "client": {"platform": "ios"}}
        result: dict[str, Any] = (await self.gql(client, index, LOGIN, variables))["data"][
            "loginByCode"
        ]
        assert result["__typename"] == "LoginSuccess", result
        return result


@contextmanager
def own_database(pg_url: str) -> Iterator[str]:
    """A migrated PostgreSQL database of its own beside ``pg_url``'s, dropped afterwards, so
    that nothing else truncates tables under the processes using it."""
    url = make_url(pg_url)
    name = f"gateway_processes_{secrets.token_hex(4)}"
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(False)
    subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {name}"], check=True)
    try:
        own = url.set(database=name).render_as_string(False)
        migrate.upgrade(own)
        yield own
    finally:
        subprocess.run(["psql", admin, "-qc", f"DROP DATABASE {name} WITH (FORCE)"], check=True)


@contextmanager
def cluster(
    database_url: str, redis_url: str | None, tmp_path: Path, settings: str = "", count: int = 2
) -> Iterator[Cluster]:
    """``count`` `gateway serve` (two: several replicas; one: SQLite's topology) on
    ``database_url`` (and Redis, when given) and the emulator; ``settings``: TOML tables
    appended to the test apps' configuration."""
    config = tmp_path / "gateway.toml"
    config.write_text(APPS_TOML + settings, encoding="utf-8")
    wechat_port, ports = free_port(), [free_port() for _ in range(count)]
    base = {k: v for k, v in os.environ.items() if k != "GATEWAY_REDIS_URL"}
    env = {
        **base,
        "TEST_CLUB_SECRET": "club-secret-0123456789",
        "GATEWAY_CONFIG": str(config),
        "GATEWAY_DATABASE_URL": database_url,
        **({"GATEWAY_REDIS_URL": redis_url} if redis_url else {}),
        "GATEWAY_SECRET_KEY": "test-secret-key-0123456789-abcdefghijkl",
        "GATEWAY_SIGNING_KEYS": str(tmp_path / "keys.json"),
        "GATEWAY_WECHAT_API_BASE": f"http://127.0.0.1:{wechat_port}",
        "GATEWAY_LOG_LEVEL": "WARNING",
    }
    gateway = [sys.executable, "-m", "gateway"]
    subprocess.run([*gateway, "keys", "rotate"], env=env, check=True, capture_output=True)
    procs = [subprocess.Popen([*gateway, "sandbox", "--port", str(wechat_port)], env=env)]
    try:
        wait_ready(f"http://127.0.0.1:{wechat_port}/sandbox/stats", procs[0], "emulator")
        for port in ports:
            procs.append(subprocess.Popen([*gateway, "serve", "--port", str(port)], env=env))
        for port, proc in zip(ports, procs[1:], strict=True):
            wait_ready(f"http://127.0.0.1:{port}/readyz", proc, "gateway")
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        yield Cluster(urls, f"http://127.0.0.1:{wechat_port}", env)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


async def _cache_hits(client: httpx.AsyncClient, gateway: str) -> float:
    text = (await client.get(f"{gateway}/metrics")).text
    return metric(text, "gateway_token_checks_total", source="cache")


async def cached_on(client: httpx.AsyncClient, gateway: str, token: str) -> None:
    """Ask ``viewer`` until the token check was answered from the process's cache."""
    bearer = {"authorization": f"Bearer {token}"}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        before = await _cache_hits(client, gateway)
        answer = await client.post(f"{gateway}/graphql", json={"query": VIEWER}, headers=bearer)
        assert answer.status_code == 200, answer.text
        if await _cache_hits(client, gateway) > before:
            return
        assert loop.time() < deadline, "the process never cached the token"
        await asyncio.sleep(0.05)  # a pause between attempts, not a timing assumption


async def refused_within(
    client: httpx.AsyncClient, gateway: str, token: str, seconds: float
) -> float:
    """Poll ``viewer`` with ``token`` (no sleeping for timing): the process must refuse it
    (401, INVALID_TOKEN) within ``seconds``; how long it took."""
    bearer = {"authorization": f"Bearer {token}"}
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        answer = await client.post(f"{gateway}/graphql", json={"query": VIEWER}, headers=bearer)
        took = loop.time() - start
        if answer.status_code == 401:
            assert answer.json()["errors"][0]["extensions"]["code"] == "INVALID_TOKEN"
            assert took <= seconds, f"refused only after {took:.2f} s"
            return took
        assert answer.status_code == 200, answer.text
        assert took <= seconds, f"{gateway} still accepts the token after {took:.2f} s"


async def viewer_becomes(
    client: httpx.AsyncClient, gateway: str, token: str, seconds: float, **expected: str
) -> float:
    """Poll ``viewer`` with ``token``: within ``seconds`` its fields must be ``expected``
    (e.g. ``id=``, ``nickname=``); how long it took."""
    bearer = {"authorization": f"Bearer {token}"}
    query = f"{{ viewer {{ {' '.join(expected)} }} }}"
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        answer = await client.post(f"{gateway}/graphql", json={"query": query}, headers=bearer)
        took = loop.time() - start
        assert answer.status_code == 200, answer.text
        seen = answer.json()["data"]["viewer"]
        if seen == expected:
            assert took <= seconds, f"the viewer changed only after {took:.2f} s"
            return took
        assert took <= seconds, f"{gateway} still shows {seen} after {took:.2f} s"
