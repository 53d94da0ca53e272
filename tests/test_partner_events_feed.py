"""The pull feed (issue 24): `partner { events(after, first) }` over HTTP with partner tokens
from /oauth/token. Events reach a partner by the rule of its lookups by id; pages follow one
order, and a cursor means the same in any process, after a restart, and after a retention
prune."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col

from gateway.config import GatewayConfig
from gateway.outbox import EventType
from gateway.rights.service import purge_periodically
from gateway.store.models import AccountEventRow, Partner, utcnow
from tests.support.accounts import oa_login, two_accounts_of_dave
from tests.support.cli import cli_for
from tests.support.events import FEED, can_look_up, emit, feed, whole_feed
from tests.support.harness import PG_URL, Harness, MakeConfig, running, skip_or_fail
from tests.support.partners import partner_config, partner_token, partners_toml, secret_of
from tests.support.processes import Cluster, cluster, own_database

ORDER = [
    EventType.ACCOUNT_DISABLED,
    EventType.ACCOUNT_ENABLED,
    EventType.DELETION_REQUESTED,
    EventType.DELETION_CANCELLED,
    EventType.ACCOUNT_DISABLED,
]


@pytest.fixture
def config(database_url: str, make_config: MakeConfig, tmp_path: Path) -> GatewayConfig:
    toml = partners_toml(["crm", "solo-crm"]) + "\n[events]\nretention_days = 30\n"
    return partner_config(make_config(database_url), tmp_path, toml)


@pytest.fixture
async def gw(config: GatewayConfig) -> AsyncIterator[Harness]:
    async with running(config) as harness:
        yield harness


async def test_a_partner_sees_events_only_of_accounts_it_can_look_up(gw: Harness) -> None:
    alice = (await gw.login("shop-mp", "alice"))["account"]["id"]
    carol = (await gw.login("solo-mp", "carol"))["account"]["id"]
    await emit(gw, EventType.ACCOUNT_CREATED, alice, apps=("shop-mp",))
    await emit(gw, EventType.ACCOUNT_CREATED, carol, apps=("solo-mp",))
    await emit(gw, EventType.PHONE_BOUND, carol, platforms=("test-platform",))
    crm, solo = await partner_token(gw, "crm"), await partner_token(gw, "solo-crm")

    seen = {}
    for name, token in (("crm", crm), ("solo-crm", solo)):
        edges = await whole_feed(gw, token)
        accounts = {e["node"]["accountId"] for e in edges}
        for account in accounts:  # the one rule: an event only of an account it can look up
            assert await can_look_up(gw, token, account), (name, account)
        assert all(e["node"]["data"]["accountId"] == e["node"]["accountId"] for e in edges)
        seen[name] = accounts
    assert alice in seen["crm"]
    assert carol not in seen["crm"]
    assert carol in seen["solo-crm"]
    assert alice not in seen["solo-crm"]
    assert not await can_look_up(gw, crm, carol)


async def test_a_merge_reaches_the_feeds_of_the_partners_of_its_account_only(gw: Harness) -> None:
    """Real changes, no planted event: dave's base-scope official-account login and his
    shop-mp login make two accounts; his userinfo login proves them one and merges them."""
    oa, shop = await two_accounts_of_dave(gw, oa_first=True)
    survivor = (await oa_login(gw, "dave", scope="snsapi_userinfo"))["account"]["id"]
    assert survivor == oa["account"]["id"]
    merged_away = shop["account"]["id"]
    crm, solo = await partner_token(gw, "crm"), await partner_token(gw, "solo-crm")

    edges = await whole_feed(gw, crm)
    (merge,) = [e["node"] for e in edges if e["node"]["type"] == "account.merged"]
    assert merge["accountId"] == merge["data"]["mergedId"] == merged_away
    assert merge["data"]["survivorId"] == survivor
    created = [e["node"] for e in edges if e["node"]["type"] == "account.created"]
    assert {c["accountId"] for c in created} == {survivor, merged_away}
    (shop_created,) = [c for c in created if c["accountId"] == merged_away]
    ids = await gw.wechat_ids("shop-mp", "dave")
    shown = {(i["kind"], i["openid"], i["unionid"]) for i in shop_created["data"]["identities"]}
    # crm's own app's openid; not the unionid of a platform it does not hold (no all-apps scope)
    assert shown == {("WECHAT_OPENID", ids["openid"], None)}
    assert await whole_feed(gw, solo) == []  # dave never came through solo-mp


async def test_pages_follow_one_order_and_cursors_survive_a_restart(
    config: GatewayConfig,
) -> None:
    async with running(config) as gw:
        alice = (await gw.login("shop-mp", "alice"))["account"]["id"]
        before = await whole_feed(gw, await partner_token(gw, "crm"))
        for type in ORDER:
            await emit(gw, type, alice, apps=("shop-mp",))
        token = await partner_token(gw, "crm")
        edges = await whole_feed(gw, token)
        assert [e["node"]["type"] for e in edges[len(before) :]] == [t.value for t in ORDER]
        assert await whole_feed(gw, token, first=2) == edges  # page by page: the same feed
        assert len({e["node"]["id"] for e in edges}) == len(edges)
        middle = edges[-4]["cursor"]
        assert (await feed(gw, token, middle, 2))["edges"] == edges[-3:-1]

        end = edges[-1]["cursor"]
        idle = await feed(gw, token, end)
        assert idle["edges"] == []
        assert idle["pageInfo"] == {"hasNextPage": False, "endCursor": end}
        await emit(gw, EventType.ACCOUNT_ENABLED, alice, apps=("shop-mp",))
        (new,) = (await feed(gw, token, end))["edges"]  # committed after the cursor: after it
        assert new["node"]["type"] == "account.enabled"

    async with running(config) as again:  # a new app: new engine, new services, same database
        token = await partner_token(again, "crm")
        assert (await feed(again, token, middle, 2))["edges"] == edges[-3:-1]
        assert (await feed(again, token, end))["edges"] == [new]


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"first": 0}, "first"),
        ({"first": 101}, "first"),
        ({"first": -5}, "first"),
        ({"after": "not a cursor"}, "after"),
        ({"after": base64.urlsafe_b64encode(b"pe:-1").decode()}, "after"),
        ({"after": base64.urlsafe_b64encode(b"o:5").decode()}, "after"),
    ],
)
async def test_first_and_after_are_bounded(
    gw: Harness, arguments: dict[str, object], field: str
) -> None:
    token = await partner_token(gw, "crm")
    answer = await feed(gw, token, **arguments)  # type: ignore[arg-type]
    assert (answer["__typename"], answer["code"], answer["field"]) == (
        "InvalidInputError",
        "INVALID_INPUT",
        field,
    )
    assert (await feed(gw, token, first=1))["__typename"] == "PartnerEventConnection"
    assert (await feed(gw, token, first=100))["__typename"] == "PartnerEventConnection"


async def test_the_feed_needs_a_partner_token(gw: Harness) -> None:
    alice = await gw.login("shop-mp", "alice")
    body = await gw.gql("{ partner { __typename ... on Error { code } } }")
    assert body["data"]["partner"] == {
        "__typename": "NotAuthenticatedError",
        "code": "NOT_LOGGED_IN",
    }
    body = await gw.gql(
        "{ partner { __typename ... on Error { code } } }", token=alice["accessToken"]
    )
    assert body["data"]["partner"]["code"] == "NOT_LOGGED_IN"


async def test_retention_prunes_old_events_pending_deliveries_included(
    gw: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = cli_for(gw, monkeypatch)  # the gateway's own file: [events] retention_days = 30
    db = gw.app.state.services.db
    async with db.transaction() as s:  # crm has a webhook: its rows wait for it (pending)
        await s.execute(
            update(Partner)
            .where(col(Partner.client_id) == "crm")
            .values(webhook_url="https://crm.example.com/hook")
        )
    alice = (await gw.login("shop-mp", "alice"))["account"]["id"]
    await emit(gw, EventType.ACCOUNT_DISABLED, alice, apps=("shop-mp",))
    await emit(gw, EventType.ACCOUNT_ENABLED, alice, apps=("shop-mp",))
    token = await partner_token(gw, "crm")
    edges = await whole_feed(gw, token)
    old = {uuid.UUID(e["node"]["id"]) for e in edges[:-1]}
    async with db.transaction() as s:
        await s.execute(
            update(AccountEventRow)
            .where(col(AccountEventRow.id).in_(old))
            .values(occurred_at=utcnow() - timedelta(days=31))
        )

    out = await cli.ok("audit", "prune")
    assert f"{len(old)} account event(s) older than 30 days removed" in out
    assert f"({len(old)} of their webhook deliveries still pending, given up)" in out
    assert await whole_feed(gw, token) == edges[-1:]
    gone = edges[0]["cursor"]  # a pruned event's cursor still reads on from where it was
    assert (await feed(gw, token, gone))["edges"] == edges[-1:]
    assert "0 account event(s)" in await cli.ok("audit", "prune")


async def test_the_maintenance_task_runs_its_chores_each_round() -> None:
    rounds: list[str] = []

    class Rights:
        async def carry_out_due(self) -> int:
            raise RuntimeError("database down")  # logged; the chores still run

    async def chore() -> int:
        rounds.append("chore")
        if len(rounds) == 1:
            raise RuntimeError("first round fails")  # logged; the next round runs it again
        return 0

    async def sleep(_: float) -> None:
        if len(rounds) == 3:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await purge_periodically(Rights(), 1.0, sleep, also=[chore])  # type: ignore[arg-type]
    assert rounds == ["chore"] * 3


async def test_cursors_mean_the_same_in_every_process_and_after_a_restart(
    tmp_path: Path,
) -> None:
    """Two real `gateway serve` processes on one PostgreSQL database, then two new ones."""
    if not PG_URL:
        skip_or_fail("PostgreSQL")
    assert PG_URL
    settings = "\n" + partners_toml(["crm"])
    with own_database(PG_URL) as url:
        async with httpx.AsyncClient(timeout=30) as client:
            with cluster(url, None, tmp_path, settings) as first:
                for user in ("ann", "bob"):
                    await first.login(client, 0, user)
                edges = await _cluster_feed(first, client, 1, None)  # the other process
                assert [e["node"]["type"] for e in edges] == ["account.created"] * 2
                assert await _cluster_feed(first, client, 0, None) == edges
                assert await _cluster_feed(first, client, 0, edges[0]["cursor"]) == edges[1:]
                await first.login(client, 1, "cat")
            with cluster(url, None, tmp_path, settings) as again:
                later = await _cluster_feed(again, client, 0, edges[-1]["cursor"])
                assert [e["node"]["type"] for e in later] == ["account.created"]
                assert later[0]["node"]["accountId"] not in {e["node"]["accountId"] for e in edges}
                assert await _cluster_feed(again, client, 1, None) == edges + later


async def _cluster_feed(
    c: Cluster, client: httpx.AsyncClient, index: int, after: str | None
) -> list[dict[str, Any]]:
    """One page of crm's feed through gateway ``index``, with a token of that process."""
    answer = await client.post(
        f"{c.gateways[index]}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=("crm", secret_of("crm")),
    )
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    body = await c.gql(client, index, FEED, {"after": after}, token=token)
    page = body["data"]["partner"]["events"]
    assert page["pageInfo"]["hasNextPage"] is False, page
    edges: list[dict[str, Any]] = page["edges"]
    return edges
