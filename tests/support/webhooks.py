"""A partner's webhook receiver for real: an HTTP server on a loopback port (uvicorn, in the
test's event loop) that verifies every delivery's signature with the ``standardwebhooks``
library, answers as the test scripts it, can go down and come back on the same port; and the
helpers around it (a partner's TOML, an event appended to the outbox, waiting on a condition
with a deadline)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import outbox
from gateway.cli import main
from gateway.outbox import Audience, EventType
from gateway.store.db import Database
from tests.support.harness import Harness, MakeConfig, running
from tests.support.partners import partner_config
from tests.support.processes import free_port

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
SHOP_APPID = "wxtestshop000001"


@dataclass
class Arrival:
    id: str
    type: str
    data: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Receiver:
    """``answers``: the status codes of the next arrivals, in order (then 200)."""

    secret: str = SECRET
    port: int = field(default_factory=free_port)
    answers: list[int] = field(default_factory=list)
    arrivals: list[Arrival] = field(default_factory=list)  # verified, whatever was answered
    accepted: list[Arrival] = field(default_factory=list)  # answered 2xx
    forged: list[str] = field(default_factory=list)
    answer: Callable[[Arrival], int] | None = None
    hang: int = 0  # this many arrivals get no answer until the receiver stops
    _released: asyncio.Event = field(default_factory=asyncio.Event)
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _hook(self, request: Request) -> Response:
        raw = await request.body()
        try:
            payload = Webhook(self.secret).verify(raw, dict(request.headers))
        except WebhookVerificationError as exc:
            self.forged.append(str(exc))
            return Response(status_code=400)
        arrival = Arrival(request.headers["webhook-id"], payload["type"], payload["data"], {})
        arrival.headers = dict(request.headers)
        self.arrivals.append(arrival)
        if self.hang > 0:
            self.hang -= 1
            await self._released.wait()
            return Response(status_code=503)
        status = self._status(arrival)
        if 200 <= status < 300:
            self.accepted.append(arrival)
        return Response(status_code=status)

    def _status(self, arrival: Arrival) -> int:
        if self.answers:
            return self.answers.pop(0)
        return self.answer(arrival) if self.answer else 204

    async def start(self) -> None:
        app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        await until(lambda: _started(self._server), "the receiver to start")

    async def stop(self) -> None:
        self._released.set()
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self._server, self._task = None, None
        self._released = asyncio.Event()

    def ids(self) -> list[str]:
        return [a.id for a in self.accepted]


def _started(server: uvicorn.Server | None) -> bool:
    return server is not None and server.started


@contextlib.asynccontextmanager
async def receiving(receiver: Receiver | None = None) -> Any:
    receiver = receiver or Receiver()
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()


async def until(
    condition: Callable[[], bool | Awaitable[bool]], what: str, seconds: float = 15.0
) -> None:
    """Wait for ``condition`` with a deadline (checked every 20 ms, never a timing assumption)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        done = condition()
        if not isinstance(done, bool):
            done = await done
        if done:
            return
        assert loop.time() < deadline, f"waited {seconds:g} s for {what}"
        await asyncio.sleep(0.02)


def events_toml(**settings: Any) -> str:
    """An ``[events]`` table: loopback receivers allowed, quick polls and retries."""
    values = {
        "allow_http_loopback": True,
        "poll_seconds": 0.05,
        "timeout_seconds": 5.0,
        "lease_seconds": 15.0,  # never reached here: a busy machine's stall is no crash
        "retry_seconds": [0.05, 0.05, 0.05],
        **settings,
    }
    lines = [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    return "\n[events]\n" + "\n".join(lines) + "\n"


def hooked_toml(url: str, client_id: str = "hooked", apps: str = '["shop-mp"]') -> str:
    """A config partner of ``apps`` with a webhook (its secret in ``TEST_WEBHOOK_SECRET``,
    which the ``gateway`` fixture sets)."""
    return (
        f'\n[[partners]]\nclient_id = "{client_id}"\nsecret = "{client_id}-secret-0123456789"\n'
        f'apps = {apps}\nscopes = ["accounts:lookup"]\nwebhook_url = "{url}"\n'
        'webhook_secret_env = "TEST_WEBHOOK_SECRET"\n'
    )


async def append(
    db: Database, account: uuid.UUID, type: EventType = EventType.ACCOUNT_CREATED
) -> uuid.UUID:
    """An event of a shop-mp account, committed as a change would commit it; its id."""
    async with db.transaction() as s:
        await outbox.append(s, type, account, Audience(frozenset({SHOP_APPID})))
    events = await outbox.read(db, account_ids=[account], type=type, limit=1_000)
    return events[-1].id


def cli(*args: str) -> tuple[int, str, str]:
    """``gateway ...`` in this process (the environment names the database and config)."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
    return code, out.getvalue(), err.getvalue()


async def run_cli(*args: str) -> tuple[int, str, str]:
    return await asyncio.to_thread(cli, *args)


async def listed(**filters: str) -> list[dict[str, Any]]:
    """``gateway events list`` with ``--name value`` filters: its JSON lines."""
    flags = [part for name, value in filters.items() for part in (f"--{name}", value)]
    code, out, err = await run_cli("events", "list", *flags)
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


Start = Callable[[str], AbstractAsyncContextManager[Harness]]
"""What the ``gateway`` fixture returns: ``gateway(toml)``, the running gateway with these
``[[partners]]`` and ``[events]``; the CLI's environment (``run_cli``) names its database and
configuration."""


@asynccontextmanager
async def started(
    database_url: str, make_config: MakeConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    toml: str,
) -> AsyncIterator[Harness]:  # fmt: skip
    config = partner_config(make_config(database_url), tmp_path, toml)
    settings = config.settings
    monkeypatch.setenv("GATEWAY_DATABASE_URL", config.database_url)
    monkeypatch.setenv("GATEWAY_CONFIG", str(settings.config))
    monkeypatch.setenv("GATEWAY_SECRET_KEY", "test-secret-key-0123456789-abcdefghijkl")
    monkeypatch.setenv("GATEWAY_SIGNING_KEYS", str(settings.signing_keys))
    monkeypatch.delenv("GATEWAY_REDIS_URL", raising=False)
    async with running(config) as gw:
        yield gw


def db_of(gw: Harness) -> Database:
    db: Database = gw.app.state.services.db
    return db
