"""Account events' webhooks (issue 24), on SQLite and PostgreSQL: a real receiver on a loopback
port verifies every delivery with the ``standardwebhooks`` library; the gateway runs whole
(lifespan, delivery worker) with retries in tens of milliseconds. Retries until the fourth
attempt, failure after the last and redelivery, a receiver down then up getting everything in
order, and the operator's commands (``events list``, ``events redeliver``) on what happened."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from gateway.events.render import opaque_id
from gateway.outbox import EventType
from gateway.store.db import Database
from tests.support.harness import Harness, MakeConfig, running
from tests.support.partners import partner_config
from tests.support.webhooks import (
    SECRET,
    Receiver,
    append,
    events_toml,
    hooked_toml,
    listed,
    receiving,
    run_cli,
    until,
)

Start = Callable[[str], AbstractAsyncContextManager[Harness]]


@asynccontextmanager
async def _gateway(
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


@pytest.fixture
def gateway(
    database_url: str, make_config: MakeConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Start:
    """``gateway(toml)``: the running gateway with these partners and ``[events]``; the
    CLI's environment (``run_cli``) names its database and configuration."""
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", SECRET)

    def start(toml: str) -> AbstractAsyncContextManager[Harness]:
        return _gateway(database_url, make_config, tmp_path, monkeypatch, toml)

    return start


def db_of(gw: Harness) -> Database:
    db: Database = gw.app.state.services.db
    return db


async def test_a_receiver_answering_500_three_times_gets_the_event_on_the_fourth_attempt(
    gateway: Start,
) -> None:
    receiver = Receiver(answers=[500, 500, 500])
    async with receiving(receiver), gateway(events_toml() + hooked_toml(receiver.url)) as gw:
        account = uuid.uuid4()
        event = await append(db_of(gw), account)
        await until(lambda: bool(receiver.accepted), "the fourth attempt")
        (line,) = await listed(partner="hooked")
    assert [a.id for a in receiver.arrivals] == [str(event)] * 4  # one id: idempotent receivers
    assert receiver.forged == []
    (arrival,) = receiver.accepted
    assert arrival.type == "account.created"
    assert arrival.data == {"accountId": opaque_id("Account", account)}
    assert arrival.headers["webhook-signature"].startswith("v1,")
    assert arrival.headers["content-type"] == "application/json"
    assert line | {"deliveredAt": None} == {
        "event": str(event),
        "type": "account.created",
        "partner": "hooked",
        "status": "delivered",
        "attempts": 4,
        "lastStatusCode": 204,
        "lastError": None,
        "nextAttemptAt": None,
        "deliveredAt": None,
    }


async def test_failed_after_the_last_retry_and_redelivered_by_the_operator(
    gateway: Start,
) -> None:
    receiver = Receiver(answer=lambda _: 500)
    toml = events_toml(retry_seconds=[0.05, 0.05]) + hooked_toml(receiver.url)
    async with receiving(receiver), gateway(toml) as gw:
        first = await append(db_of(gw), uuid.uuid4())
        second = await append(db_of(gw), uuid.uuid4())

        async def both_failed() -> bool:
            return [e["status"] for e in await listed(status="failed")] == ["failed"] * 2

        await until(both_failed, "both events to fail for good")
        failed = await listed(partner="hooked", status="failed")
        assert [(e["event"], e["attempts"], e["lastStatusCode"]) for e in failed] == [
            (str(first), 3, 500),
            (str(second), 3, 500),
        ]
        assert failed[0]["lastError"] == "HTTP 500"
        assert len(receiver.arrivals) == 6

        receiver.answer = None  # the receiver is fixed: the operator sends them again
        code, out, _ = await run_cli("events", "redeliver", str(first))
        assert (code, out.strip()) == (0, "1 delivery pending again")
        await until(lambda: receiver.ids() == [str(first)], "the redelivery")
        code, out, _ = await run_cli(
            "events", "redeliver", "--partner", "hooked", "--since", "2020-01-01"
        )
        assert (code, out.strip()) == (0, "2 deliveries pending again")
        await until(lambda: len(receiver.accepted) == 3, "both again")
        assert sorted(receiver.ids()) == sorted([str(first), str(first), str(second)])
        assert {e["status"] for e in await listed()} == {"delivered"}
    code, _, err = await run_cli("events", "redeliver", str(uuid.uuid4()))
    assert code == 1
    code, _, err = await run_cli("events", "redeliver", "--since", "2020-01-01")
    assert (code, "--partner" in err) == (1, True)


async def test_a_receiver_down_then_up_gets_everything_in_order(gateway: Start) -> None:
    receiver = Receiver()  # not started: connections refused
    toml = events_toml(retry_seconds=[0.1] * 30) + hooked_toml(receiver.url)
    async with gateway(toml) as gw:
        alice, bob = uuid.uuid4(), uuid.uuid4()
        kinds = [EventType.ACCOUNT_CREATED, EventType.IDENTITY_LINKED, EventType.PHONE_BOUND]
        sent: dict[uuid.UUID, list[str]] = {alice: [], bob: []}
        for kind in kinds:
            for account in (alice, bob):
                sent[account].append(str(await append(db_of(gw), account, kind)))

        async def retried_while_down() -> bool:
            return all(e["attempts"] >= 2 for e in (await listed())[:2])

        await until(retried_while_down, "attempts while the receiver is down")
        waiting = await listed(status="pending")
        assert len(waiting) == 6
        # only each account's first event was tried: the later ones wait their turn
        assert [e["attempts"] > 0 for e in waiting] == [True, True] + [False] * 4
        assert all(e["lastError"].startswith("connection:") for e in waiting[:2])

        async with receiving(receiver):
            await until(lambda: len(receiver.accepted) == 6, "every event after the outage")
    assert receiver.forged == []
    by_account = {
        account: [a.id for a in receiver.accepted if a.id in ids] for account, ids in sent.items()
    }
    assert by_account == sent
    assert [a.type for a in receiver.accepted if a.id in sent[alice]] == [k.value for k in kinds]
