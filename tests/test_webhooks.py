"""Account events' webhooks (issue 24), on SQLite and PostgreSQL: a real receiver on a loopback
port verifies every delivery with the ``standardwebhooks`` library; the gateway runs whole
(lifespan, delivery worker) with retries in tens of milliseconds. Retries until the fourth
attempt, failure after the last and redelivery, a receiver down then up getting everything in
order, and the operator's commands (``events list``, ``events redeliver``) on what happened."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from gateway.events.render import opaque_id
from gateway.outbox import EventType
from tests.support.accounts import UnionIdWithheld, bind_unionid, open_data
from tests.support.events import whole_feed
from tests.support.harness import Harness, MakeConfig, metric, running, sandbox_for
from tests.support.partners import partner_config, partner_token
from tests.support.webhooks import (
    SECRET,
    Receiver,
    Start,
    append,
    db_of,
    events_toml,
    hooked_toml,
    listed,
    receiving,
    run_cli,
    until,
)


async def _metrics(gw: Harness) -> dict[str, float]:
    text = (await gw.client.get("/metrics")).text
    return {
        "retry": metric(text, "gateway_event_attempts_total", result="retry"),
        "delivered": metric(text, "gateway_events_delivered_total"),
        "latency": metric(text, "gateway_event_delivery_seconds_count"),
    }


async def test_a_receiver_answering_500_three_times_gets_the_event_on_the_fourth_attempt(
    gateway: Start,
) -> None:
    receiver = Receiver(answers=[500, 500, 500])
    async with receiving(receiver), gateway(events_toml() + hooked_toml(receiver.url)) as gw:
        before = await _metrics(gw)
        account = uuid.uuid4()
        event = await append(db_of(gw), account)
        await until(lambda: bool(receiver.accepted), "the fourth attempt")

        async def recorded() -> bool:
            after = await _metrics(gw)
            return after["delivered"] - before["delivered"] == 1

        await until(recorded, "the delivery recorded")
        (line,) = await listed(partner="hooked")
        after = await _metrics(gw)
    assert after["retry"] - before["retry"] == 3
    assert after["latency"] - before["latency"] == 1
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
        assert len(receiver.arrivals) == 6, [a.id for a in receiver.arrivals]

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

        async def all_delivered() -> bool:  # the worker records an answer after it arrives
            return {e["status"] for e in await listed()} == {"delivered"}

        await until(all_delivered, "both marked delivered")
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
            tried = [e["attempts"] >= 2 for e in await listed()]
            return tried[:2] == [True, True]

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


async def test_a_merge_through_two_miniprograms_of_one_platform_arrives_as_account_merged(
    database_url: str, make_config: MakeConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WeChat withholds the unionid at login (as ``test_bind_unionid``'s ``late`` gateway):
    carl gets an account in each mini-program until his open data in the second proves them
    one person, and the partner of both apps hears of the merge with both ids."""
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", SECRET)
    receiver = Receiver()
    partner = hooked_toml(receiver.url, apps='["shop-mp", "club-mp"]')
    config = partner_config(make_config(database_url), tmp_path, events_toml() + partner)
    sandbox = sandbox_for(config)
    late = UnionIdWithheld(sandbox)
    async with receiving(receiver), running(config, upstream_app=sandbox, transport=late) as gw:
        shop = await gw.login("shop-mp", "carl")
        club = await gw.login("club-mp", "carl")
        assert (
            await bind_unionid(gw, shop["accessToken"], await open_data(gw, "shop-mp", "carl"))
        )["merged"] is False
        result = await bind_unionid(gw, club["accessToken"], await open_data(gw, "club-mp", "carl"))
        assert result["merged"] is True

        def of(type: str) -> list[dict[str, str]]:
            return [a.data for a in receiver.accepted if a.type == type]

        await until(lambda: bool(of("account.merged")), "account.merged")
        await until(lambda: len(of("account.created")) == 2, "both accounts' account.created")
    (data,) = of("account.merged")
    assert (data["survivorId"], data["mergedId"]) == (shop["account"]["id"], club["account"]["id"])
    assert receiver.forged == []
    created = sorted(d["accountId"] for d in of("account.created"))
    assert created == sorted([shop["account"]["id"], club["account"]["id"]])


async def test_the_pull_feed_holds_the_same_events_as_the_webhook(gateway: Start) -> None:
    """One id everywhere (``webhook-id`` = the feed node's ``id``), the same bodies, the same
    order per account: a partner may switch from one to the other without a gap or a twin."""
    receiver = Receiver()
    async with receiving(receiver), gateway(events_toml() + hooked_toml(receiver.url)) as gw:
        for user in ("ivy", "jon"):
            await gw.login("shop-mp", user)
            await gw.login("club-mp", user)  # another app, an account the partner knows
        token = await partner_token(gw, "hooked", "hooked-secret-0123456789")
        edges = await whole_feed(gw, token)
        await until(lambda: len(receiver.accepted) == len(edges), "every event by webhook")
    fed = [(e["node"]["id"], e["node"]["type"], e["node"]["data"]) for e in edges]
    hooked = [(a.id, a.type, a.data) for a in receiver.accepted]
    assert sorted(fed, key=str) == sorted(hooked, key=str)
    assert [t for _, t, _ in fed] == ["account.created", "identity.linked"] * 2
    for account in {d["accountId"] for _, _, d in fed}:
        assert [i for i, _, d in fed if d["accountId"] == account] == [
            i for i, _, d in hooked if d["accountId"] == account
        ]
    assert receiver.forged == []
