"""Webhooks from real `gateway serve` processes (issue 24): a gateway killed with SIGKILL right
after a mutation's commit, with another delivery in flight, delivers both after it restarts
(SQLite); two gateways on one PostgreSQL database send each event once per attempt, each
account's events in order."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from gateway import outbox
from gateway.store import migrate
from gateway.store.db import Database, create_engine
from tests.support.harness import APPS_TOML, PG_URL, skip_or_fail
from tests.support.processes import Cluster, cluster, free_port, own_database, wait_ready
from tests.support.webhooks import (
    SECRET,
    Arrival,
    Receiver,
    append,
    events_toml,
    hooked_toml,
    receiving,
    until,
)


@contextmanager
def emulator_env(database_url: str, tmp_path: Path, settings: str) -> Iterator[dict[str, str]]:
    """The environment of a gateway on ``database_url`` with ``settings`` appended to the test
    apps' configuration, and the WeChat emulator running for it."""
    config = tmp_path / "gateway.toml"
    config.write_text(APPS_TOML + settings, encoding="utf-8")
    wechat_port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env = base | {
        "TEST_CLUB_SECRET": "club-secret-0123456789",
        "TEST_WEBHOOK_SECRET": SECRET,
        "GATEWAY_CONFIG": str(config),
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_SECRET_KEY": "test-secret-key-0123456789-abcdefghijkl",
        "GATEWAY_SIGNING_KEYS": str(tmp_path / "keys.json"),
        "GATEWAY_WECHAT_API_BASE": f"http://127.0.0.1:{wechat_port}",
        "GATEWAY_LOG_LEVEL": "WARNING",
    }
    gateway = [sys.executable, "-m", "gateway"]
    subprocess.run([*gateway, "keys", "rotate"], env=env, check=True, capture_output=True)
    wechat = subprocess.Popen([*gateway, "sandbox", "--port", str(wechat_port)], env=env)
    try:
        wait_ready(f"http://127.0.0.1:{wechat_port}/sandbox/stats", wechat, "emulator")
        env["WECHAT"] = f"http://127.0.0.1:{wechat_port}"
        yield env
    finally:
        wechat.terminate()
        wechat.wait(timeout=30)


def serve(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "gateway", "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env)
    wait_ready(f"http://127.0.0.1:{port}/readyz", process, "gateway")
    return process


async def _account_ids(client: httpx.AsyncClient, gw: Cluster, user: str) -> uuid.UUID:
    """``user`` logs in (the mutation): the account's uuid, from its opaque id."""
    import base64

    login = await gw.login(client, 0, user)
    return uuid.UUID(base64.b64decode(login["account"]["id"]).decode().split(":", 1)[1])


async def test_a_gateway_killed_after_a_commit_delivers_after_its_restart(tmp_path: Path) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    migrate.upgrade(database)
    receiver = Receiver(hang=1)  # the first delivery is in flight when the process dies
    settings = events_toml(lease_seconds=1.5, timeout_seconds=1.0, retry_seconds=[0.05] * 5)
    port = free_port()
    db = Database(create_engine(database))
    async with receiving(receiver), httpx.AsyncClient(timeout=10) as client:
        with emulator_env(database, tmp_path, settings + hooked_toml(receiver.url)) as env:
            gw = Cluster([f"http://127.0.0.1:{port}"], env["WECHAT"], env)
            first = serve(env, port)
            try:
                alice = await _account_ids(client, gw, "alice")
                await until(lambda: bool(receiver.arrivals), "the first delivery in flight")
                bob = await _account_ids(client, gw, "bob")  # committed, then at once:
            finally:
                first.send_signal(signal.SIGKILL)
                first.wait(timeout=30)
            assert receiver.accepted == []
            second = serve(env, port)
            try:
                events = await outbox.read(db, account_ids=[alice, bob], limit=1000)
                assert {e.account_id for e in events} == {alice, bob}
                wanted = [str(e.id) for e in events]
                await until(lambda: set(receiver.ids()) == set(wanted), "every event after restart")
            finally:
                second.terminate()
                second.wait(timeout=30)
    await db.dispose()
    assert receiver.forged == []
    # at least once: a delivery whose answer came too late for the gateway (a loaded machine)
    # is delivered again, which a receiver drops by its webhook-id; in order, first arrivals
    delivered = list(dict.fromkeys(receiver.ids()))
    for account in (alice, bob):
        mine = [str(e.id) for e in events if e.account_id == account]
        assert [i for i in delivered if i in mine] == mine


@pytest.fixture
def pg_url() -> str:
    if not PG_URL:
        skip_or_fail("PostgreSQL")
    assert PG_URL
    return PG_URL


async def test_two_gateways_on_postgresql_send_each_event_once_per_attempt(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each event is answered 500 at its first arrival and 204 at its second: every event must
    arrive exactly twice, whichever process sent which attempt."""
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", SECRET)
    seen: Counter[str] = Counter()

    def first_fails(arrival: Arrival) -> int:
        seen[arrival.id] += 1
        return 500 if seen[arrival.id] == 1 else 204

    receiver = Receiver(answer=first_fails)
    settings = events_toml(retry_seconds=[0.05] * 3, poll_seconds=0.02) + hooked_toml(receiver.url)
    with own_database(pg_url) as database:
        db = Database(create_engine(database))
        async with receiving(receiver):
            with cluster(database, None, tmp_path, settings):
                accounts = [uuid.uuid4() for _ in range(8)]
                sent: dict[uuid.UUID, list[str]] = {a: [] for a in accounts}
                for _ in range(5):
                    appended = await asyncio.gather(*(append(db, a) for a in accounts))
                    for account, event in zip(accounts, appended, strict=True):
                        sent[account].append(str(event))
                await until(lambda: len(receiver.accepted) == 40, "all 40 events", 30.0)
        await db.dispose()
    assert receiver.forged == []
    assert Counter(a.id for a in receiver.arrivals) == {i: 2 for ids in sent.values() for i in ids}
    for ids in sent.values():
        assert [i for i in receiver.ids() if i in ids] == ids
