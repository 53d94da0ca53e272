"""Every change of the account graph writes its account event in the change's own transaction
(issue 24): a change without its event, or an event without its change, cannot commit. The
changes are made through the public surface (GraphQL, the operators' use cases); the outbox is
read as the dispatcher reads it.

Delivery (webhooks) and the pull feed read these rows; their own tests are beside them.
"""

from __future__ import annotations

import uuid

import pytest

from gateway.events import render
from gateway.outbox import IDENTIFIER, AccountEvent, EventType, read
from gateway.partners import scopes
from gateway.partners.entitlements import Entitlements
from gateway.partners.registry import PartnerView
from gateway.rights.service import Operator
from tests.support.accounts import account_uuid
from tests.support.accounts import wechat_login as login
from tests.support.harness import Configure, Harness, running

UNLINK = """
mutation($id: ID!) {
  unlinkIdentity(id: $id, client: {platform: "web"}) { __typename ... on Error { code } }
}
"""
IDENTITIES = "{ viewer { identities { id kind app { key } } } }"
DELETE = """
mutation {
  deleteAccount(input: {client: {platform: "web"}}) { __typename ... on Error { code } }
}
"""


async def events(gw: Harness, *account_ids: uuid.UUID) -> list[AccountEvent]:
    return await read(gw.app.state.services.db, account_ids=account_ids, limit=1000)


def types(found: list[AccountEvent]) -> list[str]:
    return [e.type.value for e in found]


async def test_a_new_users_login_announces_the_account_with_its_identities(gw: Harness) -> None:
    first = await login(gw, "shop-mp", "wx-ann")
    account_id = account_uuid(first["account"]["id"])
    (created,) = await events(gw, account_id)
    assert created.type == EventType.ACCOUNT_CREATED
    identities = created.data["identities"]
    assert sorted(i["kind"] for i in identities) == ["wechat_openid", "wechat_unionid"]
    ids = await gw.wechat_ids("shop-mp", "wx-ann")
    assert {i[IDENTIFIER] for i in identities} == {ids["openid"], ids["unionid"]}
    assert created.audience.appids == {gw.appid("shop-mp")}
    assert len(created.audience.platforms) == 1

    await login(gw, "shop-mp", "wx-ann")  # a returning user changes nothing: no event
    await login(gw, "club-mp", "wx-ann")  # a new door of the same person: linked
    found = await events(gw, account_id)
    assert types(found) == ["account.created", "identity.linked"]
    linked = found[1]
    assert linked.data["identity"]["kind"] == "wechat_openid"
    assert linked.data["identity"]["app_key"] == "club-mp"
    assert linked.audience.appids == {gw.appid("shop-mp"), gw.appid("club-mp")}


@pytest.mark.parametrize("fast", [True, False])
async def test_both_login_paths_announce_a_new_account_alike(
    database_url: str, configure: Configure, fast: bool
) -> None:
    """The one-statement login (the fast path) and the transactional one write the same
    event: the fast path is held equal to the reference here too."""
    config = configure(database_url, performance={"fast_paths": fast})
    assert config.performance.fast_paths is fast
    async with running(config) as gw:
        first = await login(gw, "shop-mp", f"wx-path-{fast}")
        (created,) = await events(gw, account_uuid(first["account"]["id"]))
    assert created.type == EventType.ACCOUNT_CREATED
    assert sorted(i["app_key"] for i in created.data["identities"]) == ["shop-mp", "shop-mp"]


async def test_a_merge_announces_the_merged_away_account_with_its_survivor(gw: Harness) -> None:
    older = await login(gw, "news-oa", "wx-mia", "snsapi_base")
    newer = await login(gw, "shop-mp", "wx-mia")
    merging = await login(gw, "news-oa", "wx-mia", "snsapi_userinfo")
    assert merging["account"]["id"] == older["account"]["id"]
    survivor, merged = account_uuid(older["account"]["id"]), account_uuid(newer["account"]["id"])
    (event,) = [e for e in await events(gw, merged) if e.type == EventType.ACCOUNT_MERGED]
    assert event.data == {"survivor_id": str(survivor), "merged_id": str(merged)}
    assert event.audience.appids == {gw.appid("news-oa"), gw.appid("shop-mp")}
    assert not [e for e in await events(gw, survivor) if e.type == EventType.ACCOUNT_MERGED]


async def test_a_refused_merge_writes_no_event(gw: Harness) -> None:
    """The transaction that fails takes its events with it: nothing merged, nothing linked."""
    older = await login(gw, "news-oa", "wx-ned", "snsapi_base")
    newer = await login(gw, "shop-mp", "wx-ned")
    rights = gw.app.state.api.rights
    await rights.set_disabled(account_uuid(newer["account"]["id"]), True, Operator("ops", "fraud"))
    ids = account_uuid(older["account"]["id"]), account_uuid(newer["account"]["id"])
    before = types(await events(gw, *ids))
    refused = await login(gw, "news-oa", "wx-ned", "snsapi_userinfo")
    assert refused["code"] == "ACCOUNT_DISABLED"
    assert types(await events(gw, *ids)) == before
    assert before.count("account.disabled") == 1


async def test_disable_enable_and_unlink_are_announced(gw: Harness) -> None:
    first = await login(gw, "shop-mp", "wx-ola")
    await login(gw, "club-mp", "wx-ola")
    account_id = account_uuid(first["account"]["id"])
    rights = gw.app.state.api.rights
    await rights.set_disabled(account_id, True, Operator("ops", "fraud"))
    await rights.set_disabled(account_id, False, Operator("ops", "cleared"))
    token = (await login(gw, "shop-mp", "wx-ola"))["accessToken"]
    mine = (await gw.gql(IDENTITIES, token=token))["data"]["viewer"]["identities"]
    (club,) = [i for i in mine if i["app"] and i["app"]["key"] == "club-mp"]
    result = (await gw.gql(UNLINK, {"id": club["id"]}, token=token))["data"]["unlinkIdentity"]
    assert result["__typename"] == "AccountResult", result
    found = await events(gw, account_id)
    assert types(found)[2:] == ["account.disabled", "account.enabled", "identity.unlinked"]
    unlinked = found[-1]
    assert unlinked.data["identity"]["app_key"] == "club-mp"
    assert gw.appid("club-mp") in unlinked.audience.appids  # its partners still hear of it


async def test_deletion_is_announced_and_the_erasure_leaves_no_identifier(gw: Harness) -> None:
    first = await login(gw, "shop-mp", "wx-pia")
    account_id = account_uuid(first["account"]["id"])
    answer = (await gw.gql(DELETE, token=first["accessToken"]))["data"]["deleteAccount"]
    assert answer["__typename"] == "DeleteAccountSuccess", answer
    await login(gw, "shop-mp", "wx-pia")  # a login in the cooling-off cancels the deletion
    assert types(await events(gw, account_id))[1:] == [
        "account.deletion_requested",
        "account.deletion_cancelled",
    ]
    operator = Operator("ops", "asked by the person")
    await gw.app.state.api.rights.delete_now(account_id, operator)
    found = await events(gw, account_id)
    assert found[-1].type == EventType.ACCOUNT_DELETED
    assert found[-1].data == {}
    assert gw.appid("shop-mp") in found[-1].audience.appids  # who may hear of it: as before
    assert IDENTIFIER not in repr([e.data for e in found])


def _partner(apps: frozenset[str], scopes: frozenset[str]) -> PartnerView:
    return PartnerView("crm", apps, frozenset(), scopes, 600, "cli", False)


async def test_a_partner_sees_an_event_as_it_sees_a_lookup(gw: Harness) -> None:
    """Ids as the API writes them; identifiers only for the partner's own apps with the
    identifiers scope; an app it is not entitled to does not receive the event at all."""
    first = await login(gw, "shop-mp", "wx-rue")
    (created,) = await events(gw, account_uuid(first["account"]["id"]))
    rules = Entitlements(gw.config.apps)
    shop = _partner(frozenset({"shop-mp"}), frozenset({scopes.LOOKUP, scopes.IDENTIFIERS}))
    body = render.body(created, shop, rules)
    assert body["type"] == "account.created"
    assert body["data"]["accountId"] == first["account"]["id"]
    (identity,) = body["data"]["identities"]  # the unionid: not of its platforms
    assert identity["openid"] == (await gw.wechat_ids("shop-mp", "wx-rue"))["openid"]
    blind = _partner(frozenset({"shop-mp"}), frozenset({scopes.LOOKUP}))
    assert [i["openid"] for i in render.body(created, blind, rules)["data"]["identities"]] == [None]
    assert rules.sees(shop, created.audience)
    assert not rules.sees(_partner(frozenset({"club-mp"}), shop.scopes), created.audience)
