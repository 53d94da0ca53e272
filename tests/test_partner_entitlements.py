"""What a partner may see (issue 6): no query shape (nesting, aliases, fragments, ``node``,
``viewer``) lets a partner extract an openid of an app, or a unionid of a platform, it is not
entitled to; lookups guarded by scope; merged accounts; batches at a constant SQL cost;
pagination; one audit event per read. (Tokens themselves: test_partner_admin.py.)

The leak checks take every raw openid and unionid the emulator gave the test users and look
for the forbidden ones in every response body as text (a value the request itself sent, echoed
as a lookup's `key`, does not count), and in every `openid`/`unionid` field whatever was sent;
so a leak through any field or alias is caught.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from gateway.accounts.tables import Account, Identity
from gateway.partners import scopes
from gateway.store.models import AuditEvent
from tests.support.harness import Harness, MakeConfig, running
from tests.support.partners import (
    FRAGMENTS,
    LOOK,
    LOOKUP_BY_ID,
    PLATFORM,
    Probe,
    World,
    global_id,
    items_of,
    oa_login,
    oauth,
    partner_config,
    partners_toml,
    probe,
)


@pytest.fixture
async def gw(database_url: str, tmp_path: Path, make_config: MakeConfig) -> AsyncIterator[Harness]:
    config = partner_config(make_config(database_url), tmp_path, partners_toml())
    async with running(config) as harness:
        yield harness


# -- GraphQL documents -------------------------------------------------------------------------


BY_OPENID = (
    """query($app: String!, $openid: String!) { partner { ... on PartnerQuery {
  accountByOpenid(app: $app, openid: $openid) { ...Result } } } }"""
    + FRAGMENTS
)
BY_UNIONID = (
    """query($platform: String!, $unionid: String!) { partner { ... on PartnerQuery {
  accountByUnionid(platform: $platform, unionid: $unionid) { ...Result } } } }"""
    + FRAGMENTS
)
BY_USERNAME = (
    """query($username: String!) { partner { ... on PartnerQuery {
  accountByUsername(username: $username) { ...Result } } } }"""
    + FRAGMENTS
)
BY_PHONE = (
    """query($phone: String!) { partner { ... on PartnerQuery {
  accountByPhone(phone: $phone) { ...Result } } } }"""
    + FRAGMENTS
)
BATCH = (
    """query($app: String!, $openids: [String!]!) { partner { ... on PartnerQuery {
  accountsByOpenids(app: $app, openids: $openids) {
    __typename ... on BatchLookup { items { ...Look } }
    ... on Error { code message } ... on InvalidInputError { field } } } } }"""
    + LOOK
)
INLINE = """query($id: ID!) { partner { ... on PartnerQuery { ... on PartnerQuery {
  account(id: $id) { ... on AccountLookup { account { ... on PartnerAccount {
    identities { items { ... on PartnerIdentity { kind openid unionid } } }
  } } } }
} } } }"""
NODE = """query($id: ID!) { node(id: $id) { __typename id
  ... on Account { status identities { id kind label app { key } } }
  ... on Identity { kind label } } }"""


# -- entitlement in every query shape ----------------------------------------------------------


async def test_nested_fields_and_fragments_show_only_entitled_identifiers(
    gw: Harness, world: World
) -> None:
    crm = await probe(gw, "crm")
    data = await crm.partner(
        BY_OPENID, {"app": "shop-mp", "openid": world.openid("alice", "shop-mp")}
    )
    items = items_of(data["accountByOpenid"])
    # crm has no identities:all-apps: only its own apps' identities are listed, with openids
    shown = [
        ("WECHAT_OPENID", "news-oa", world.openid("alice", "news-oa"), None),
        ("WECHAT_OPENID", "shop-mp", world.openid("alice", "shop-mp"), None),
    ]
    assert sorted((i["kind"], i["app"]["key"], i["openid"], i["unionid"]) for i in items) == shown
    # the same through named fragments (LOOKUP_BY_ID) and nested inline fragments
    named = await crm.partner(LOOKUP_BY_ID, {"id": world.accounts["alice"]})
    inline = await crm(INLINE, {"id": world.accounts["alice"]})
    named_ids = {i["openid"] for i in items_of(named["account"])}
    inline_ids = {
        i["openid"] for i in inline["partner"]["account"]["account"]["identities"]["items"]
    }
    assert named_ids == inline_ids == {i[2] for i in shown}
    crm.assert_never_shows(world.forbidden("crm"))


async def test_foreign_identities_are_listed_without_identifiers(gw: Harness, world: World) -> None:
    """Introspection-free probing: asking for openid/unionid of a foreign identity gives null."""
    pusher = await probe(gw, "pusher")
    data = await pusher.partner(
        BY_UNIONID, {"platform": PLATFORM, "unionid": world.unionid("alice")}
    )
    items = items_of(data["accountByUnionid"])
    shown = {(i["kind"], (i["app"] or {}).get("key")): (i["openid"], i["unionid"]) for i in items}
    assert shown == {
        ("WECHAT_OPENID", "shop-mp"): (None, None),
        ("WECHAT_OPENID", "club-mp"): (None, None),
        ("WECHAT_OPENID", "solo-mp"): (None, None),
        ("WECHAT_OPENID", "news-oa"): (world.openid("alice", "news-oa"), None),
        ("WECHAT_UNIONID", None): (None, world.unionid("alice")),
    }
    aliased_fields = await pusher.partner(
        """query($id: ID!) { partner { ... on PartnerQuery { account(id: $id) {
          ... on AccountLookup { account { identities { items {
            kind a: openid b: unionid c: openid
            app { key } } } } } } } } }""",
        {"id": world.accounts["alice"]},
    )
    renamed = aliased_fields["account"]["account"]["identities"]["items"]
    assert {(i["a"], i["b"], i["c"]) for i in renamed} == {
        (None, None, None),
        (world.openid("alice", "news-oa"), None, world.openid("alice", "news-oa")),
        (None, world.unionid("alice"), None),
    }
    solo = await probe(gw, "solo-crm")
    data = await solo.partner(
        BY_OPENID, {"app": "solo-mp", "openid": world.openid("alice", "solo-mp")}
    )
    revealed = {i["openid"] or i["unionid"] for i in items_of(data["accountByOpenid"])} - {None}
    assert revealed == {world.openid("alice", "solo-mp")}
    pusher.assert_never_shows(world.forbidden("pusher"))
    solo.assert_never_shows(world.forbidden("solo-crm"))


async def test_many_aliased_lookups_in_one_request(gw: Harness, world: World) -> None:
    crm = await probe(gw, "crm")
    probes = [  # (app, whose openid in which app, expected: found / not found / error code)
        ("shop-mp", ("alice", "shop-mp"), True),
        ("news-oa", ("alice", "news-oa"), True),
        ("news-oa", ("eve", "news-oa"), True),
        ("shop-mp", ("alice", "club-mp"), False),  # another app's openid: no such key here
        ("shop-mp", ("bob", "club-mp"), False),
        ("news-oa", ("carol", "solo-mp"), False),
        ("club-mp", ("alice", "club-mp"), "NOT_ENTITLED"),
        ("solo-mp", ("carol", "solo-mp"), "NOT_ENTITLED"),
    ]
    lookups = [
        f'o{n}: accountByOpenid(app: "{app}", openid: "{world.openid(*whose)}") {{ ...Result }}'
        for n, (app, whose, _) in enumerate(probes)
    ]
    lookups += [
        f'u{n}: accountByUnionid(platform: "{PLATFORM}", unionid: "{world.unionid(u)}") '
        "{ ...Result }"
        for n, u in enumerate(["alice", "bob"])
    ]
    lookups += [
        f'a{n}: account(id: "{world.accounts[u]}") {{ ...Result }}'
        for n, u in enumerate(["alice", "bob", "carol", "eve"])
    ]
    assert len(lookups) == 14  # with `p:` below: 15, the configured alias limit
    query = "{ p: partner { ... on PartnerQuery { " + " ".join(lookups) + " } } }" + FRAGMENTS
    data = (await crm(query))["p"]
    answers = [data[f"o{n}"].get("code", data[f"o{n}"].get("found")) for n in range(len(probes))]
    assert answers == [expected for _, _, expected in probes]
    assert [data[f"a{n}"]["found"] for n in range(4)] == [True, False, False, True]
    assert [data[f"u{n}"]["code"] for n in range(2)] == ["NOT_ENTITLED"] * 2
    shown = {world.openid("alice", "shop-mp"), world.openid("alice", "news-oa")}
    shown.add(world.openid("eve", "news-oa"))
    assert crm.revealed() == shown
    crm.assert_never_shows(world.forbidden("crm"))

    too_many = "{ p: partner { ... on PartnerQuery { " + " ".join(lookups) + " x: clientId } } }"
    refused = await crm.raw(too_many + FRAGMENTS)
    assert refused.get("data") is None
    assert "alias" in refused["errors"][0]["message"].lower()


async def test_node_and_viewer_resolve_nothing_for_a_partner_token(
    gw: Harness, world: World
) -> None:
    pusher = await probe(gw, "pusher")
    data = await pusher.partner(LOOKUP_BY_ID, {"id": world.accounts["alice"]})
    identity_ids = [i["id"] for i in items_of(data["account"])]
    assert len(identity_ids) == 5
    for node_id in [*world.accounts.values(), *identity_ids]:
        assert (await pusher(NODE, {"id": node_id}))["node"] is None
    assert (await pusher("{ viewer { id identities { kind } } }"))["viewer"] is None
    assert (await pusher("{ checkSession { valid } }"))["checkSession"] == {"valid": False}
    # the owner's own frontend token does resolve them: the ids are right, the token is not
    alice = Probe(gw, world.tokens["alice"])
    assert (await alice(NODE, {"id": world.accounts["alice"]}))["node"]["id"] == world.accounts[
        "alice"
    ]
    pusher.assert_never_shows(world.forbidden("pusher"))


NODE_FIELDS = "... on Account { identities { kind app { key } } } ... on Identity { kind label }"


async def aliased(p: Probe, fields: list[str]) -> dict[str, Any]:
    """Many lookups, as many aliases a request as the schema allows (15)."""
    answers: dict[str, Any] = {}
    for start in range(0, len(fields), 15):
        body = " ".join(f"f{start + n}: {f}" for n, f in enumerate(fields[start : start + 15]))
        fragments = FRAGMENTS if "...Result" in body else LOOK
        answers |= await p.partner(
            "{ partner { ... on PartnerQuery { " + body + " } } }" + fragments
        )
    return answers


async def test_no_query_shape_extracts_a_foreign_identifier(gw: Harness, world: World) -> None:
    """Every identifier through every entry point, cross-app probing included, many aliases a
    request: the forbidden identifiers never appear, and exactly the entitled stored ones do."""
    for client_id in ("crm", "pusher", "solo-crm"):
        await sweep(await probe(gw, client_id), world, client_id)


async def sweep(p: Probe, world: World, client_id: str) -> None:
    openids = json.dumps([i.value for i in world.ids if i.kind == "openid"])
    apps = ("shop-mp", "club-mp", "news-oa", "solo-mp", "no-such-app")
    fields = [
        f'accountsByOpenids(app: "{app}", openids: {openids}) {{ __typename '
        "... on BatchLookup { items { ...Look } } ... on Error { code } }"
        for app in apps
    ]
    fields += [
        f'accountByOpenid(app: "{app}", openid: "{i.value}") {{ ...Result }}'
        for app in apps
        for i in world.ids
        if i.kind == "openid"
    ]
    fields += [
        f'accountByUnionid(platform: "{platform}", unionid: "{i.value}") {{ ...Result }}'
        for platform in (PLATFORM, "other-platform")
        for i in world.ids
    ]
    fields += [f'account(id: "{a}") {{ ...Result }}' for a in world.accounts.values()]
    answers = await aliased(p, fields)
    assert {a["__typename"] for a in answers.values()} <= {
        "BatchLookup",
        "AccountLookup",
        "NotEntitledError",
    }
    identity_ids = {
        i["id"]
        for a in answers.values()
        for lookup in a.get("items", [a])
        if lookup.get("account")
        for i in lookup["account"]["identities"]["items"]
    }
    nodes = [*world.accounts.values(), *identity_ids]
    assert len(nodes) <= 14
    query = (
        "{ viewer { id } "
        + " ".join(
            f'n{n}: node(id: "{node}") {{ __typename id {NODE_FIELDS} }}'
            for n, node in enumerate(nodes)
        )
        + " }"
    )
    assert set((await p(query)).values()) == {None}
    p.assert_never_shows(world.forbidden(client_id))
    stored = {i.value for i in world.ids if i.stored}
    assert p.revealed() == world.allowed(client_id) & stored


# -- lookups and scopes -------------------------------------------------------------------------

REGISTER = """mutation($u: String!) {
  registerWithPassword(input: {username: $u, password: "correct horse battery staple",
                               app: "shop-mp", client: {platform: "web"}}) {
    __typename ... on LoginSuccess { account { id } } ... on Error { code } } }"""
BIND_PHONE = """mutation($code: String!) {
  bindPhoneNumber(input: {code: $code}) {
    __typename ... on BindPhoneNumberSuccess { linked } ... on Error { code } } }"""


async def test_lookup_by_id(gw: Harness, world: World) -> None:
    crm = await probe(gw, "crm")
    answers = await aliased(
        crm,
        [
            *(f'account(id: "{world.accounts[u]}") {{ ...Result }}' for u in world.accounts),
            f'account(id: "{global_id("Account", uuid.uuid4())}") {{ ...Result }}',
            'account(id: "not-a-global-id") { ...Result }',
            f'account(id: "{global_id("Identity", uuid.uuid4())}") {{ ...Result }}',
        ],
    )
    found = [
        (a["__typename"], a.get("found"), a.get("code"), a.get("field")) for a in answers.values()
    ]
    assert found == [
        ("AccountLookup", True, None, None),  # alice: shop-mp and news-oa
        ("AccountLookup", False, None, None),  # bob: club-mp only, not crm's: no error, no hint
        ("AccountLookup", False, None, None),  # carol: solo-mp only
        ("AccountLookup", True, None, None),  # eve: news-oa
        ("AccountLookup", False, None, None),  # no such account
        ("InvalidInputError", None, "INVALID_INPUT", "id"),
        ("InvalidInputError", None, "INVALID_INPUT", "id"),
    ]
    assert answers["f0"]["account"]["id"] == world.accounts["alice"]
    assert answers["f0"]["key"] == world.accounts["alice"]
    assert answers["f1"]["account"] is None
    crm.assert_never_shows(world.forbidden("crm"))


async def test_lookup_by_openid_and_unionid(gw: Harness, world: World) -> None:
    crm = await probe(gw, "crm")
    alice_shop = world.openid("alice", "shop-mp")
    answers = await aliased(
        crm,
        [
            f'accountByOpenid(app: "shop-mp", openid: "{alice_shop}") {{ ...Result }}',
            'accountByOpenid(app: "shop-mp", openid: "o-nobody") { ...Result }',
            f'accountByOpenid(app: "nope-mp", openid: "{alice_shop}") {{ ...Result }}',
            'accountByOpenid(app: "shop-mp", openid: "") { ...Result }',
            f'accountByOpenid(app: "shop-mp", openid: "{"o" * 129}") {{ ...Result }}',
            f'accountByUnionid(platform: "{PLATFORM}", unionid: "{world.unionid("alice")}") '
            "{ ...Result }",
        ],
    )
    summary = [(a["__typename"], a.get("found"), a.get("code")) for a in answers.values()]
    assert summary == [
        ("AccountLookup", True, None),
        ("AccountLookup", False, None),
        ("NotEntitledError", None, "NOT_ENTITLED"),  # an unknown app is just not yours
        ("InvalidInputError", None, "INVALID_INPUT"),
        ("InvalidInputError", None, "INVALID_INPUT"),
        ("NotEntitledError", None, "NOT_ENTITLED"),  # crm has no platform
    ]
    assert answers["f0"]["key"] == alice_shop
    assert (answers["f0"]["account"]["id"], answers["f0"]["merged"]) == (
        world.accounts["alice"],
        False,
    )
    pusher = await probe(gw, "pusher")
    by_union = await aliased(
        pusher,
        [
            f'accountByUnionid(platform: "{PLATFORM}", unionid: "{world.unionid("bob")}") '
            "{ ...Result }",
            f'accountByUnionid(platform: "other-platform", unionid: "{world.unionid("bob")}") '
            "{ ...Result }",
        ],
    )
    assert by_union["f0"]["account"]["id"] == world.accounts["bob"]
    assert by_union["f1"]["code"] == "NOT_ENTITLED"
    crm.assert_never_shows(world.forbidden("crm"))
    pusher.assert_never_shows(world.forbidden("pusher"))


async def test_username_and_phone_lookups_and_narrower_tokens(gw: Harness, world: World) -> None:
    frank = await gw.gql(REGISTER, {"u": "frank.w"})
    assert frank["data"]["registerWithPassword"]["__typename"] == "LoginSuccess", frank
    frank_id = frank["data"]["registerWithPassword"]["account"]["id"]
    code = (
        await gw.upstream.post(
            "/sandbox/phone-codes",
            json={"appid": gw.appid("shop-mp"), "user": "alice", "phone": "13800138000"},
        )
    ).json()["code"]
    shop = await gw.login("shop-mp", "alice")  # a mini-program session for getPhoneNumber
    bound = await gw.gql(BIND_PHONE, {"code": code}, token=shop["accessToken"])
    assert bound["data"]["bindPhoneNumber"] == {
        "__typename": "BindPhoneNumberSuccess",
        "linked": True,
    }
    lookups = [
        'accountByUsername(username: "frank.w") { ...Result }',
        'accountByUsername(username: "FRANK.W") { ...Result }',
        'accountByUsername(username: "nobody") { ...Result }',
        'accountByPhone(phone: "+8613800138000") { ...Result }',
        'accountByPhone(phone: "+86 138-0013-8000") { ...Result }',
        'accountByPhone(phone: "not a phone") { ...Result }',
    ]
    crm = await aliased(await probe(gw, "crm"), lookups)
    assert [a.get("code") for a in crm.values()] == ["NOT_ENTITLED"] * 5 + ["INVALID_INPUT"]

    support = await probe(gw, "support")
    answers = await aliased(support, lookups)
    summary = [(a["__typename"], a.get("found"), a.get("code")) for a in answers.values()]
    assert summary == [
        ("AccountLookup", True, None),
        ("AccountLookup", True, None),  # usernames are case-insensitive
        ("AccountLookup", False, None),
        ("AccountLookup", True, None),
        ("AccountLookup", True, None),  # one number however it is spelled (gateway.phones)
        ("InvalidInputError", None, "INVALID_INPUT"),  # not a number
    ]
    assert answers["f4"]["account"]["id"] == answers["f3"]["account"]["id"]
    assert answers["f0"]["account"]["id"] == frank_id
    assert answers["f0"]["account"]["identities"]["items"] == []  # a username is no app of its
    assert answers["f3"]["account"]["id"] == world.accounts["alice"]
    assert [(i["kind"], i["openid"]) for i in items_of(answers["f3"])] == [
        ("WECHAT_OPENID", world.openid("alice", "shop-mp"))
    ]
    support.assert_never_shows(world.forbidden("support"))

    # a token asked with a narrower scope cannot use the wider one
    narrow = await probe(gw, "support", scope=scopes.LOOKUP)
    me = await narrow.partner("{ partner { ... on PartnerQuery { clientId scopes } } }")
    assert me == {"clientId": "support", "scopes": [scopes.LOOKUP]}
    answers = await aliased(
        narrow,
        [
            f'accountByOpenid(app: "shop-mp", openid: "{world.openid("alice", "shop-mp")}") '
            "{ ...Result }",
            'accountByUsername(username: "frank.w") { ...Result }',
            'accountByPhone(phone: "+8613800138000") { ...Result }',
        ],
    )
    assert answers["f0"]["found"] is True
    # found, but without identities:identifiers in the token even its own app's openid is hidden
    assert [(i["kind"], i["openid"]) for i in items_of(answers["f0"])] == [("WECHAT_OPENID", None)]
    assert (answers["f1"]["code"], answers["f2"]["code"]) == ("NOT_ENTITLED", "NOT_ENTITLED")
    narrow.assert_never_shows(world.everything())
    # and no token wider than the partner's own grant is issued at all
    wider = await oauth(gw, "support", scope=f"{scopes.LOOKUP} {scopes.ALL_APPS}")
    assert (wider.status_code, wider.json()["error"]) == (400, "invalid_scope")


async def test_every_lookup_needs_the_lookup_scope(gw: Harness, world: World) -> None:
    blind = await probe(gw, "blind")
    openid = world.openid("alice", "shop-mp")
    answers = await aliased(
        blind,
        [
            f'account(id: "{world.accounts["alice"]}") {{ ...Result }}',
            f'accountByOpenid(app: "shop-mp", openid: "{openid}") {{ ...Result }}',
            f'accountByUnionid(platform: "{PLATFORM}", unionid: "{world.unionid("alice")}") '
            "{ ...Result }",
            f'accountsByOpenids(app: "shop-mp", openids: ["{openid}"]) {{ __typename '
            "... on Error { code } }",
            'accountByUsername(username: "alice") { ...Result }',
        ],
    )
    assert [a["__typename"] for a in answers.values()] == ["NotEntitledError"] * 5
    assert {a["code"] for a in answers.values()} == {"NOT_ENTITLED"}
    blind.assert_never_shows(world.everything())


# -- merged accounts ----------------------------------------------------------------------------


async def test_a_merged_account_id_answers_the_survivor(gw: Harness) -> None:
    older = await oa_login(gw, "dave", "snsapi_base")  # openid only: the unionid is unseen
    newer = await gw.login("shop-mp", "dave")  # openid + unionid: a second account
    assert older["account"]["id"] != newer["account"]["id"]
    proof = await oa_login(gw, "dave", "snsapi_userinfo")  # the OA openid with the unionid
    assert proof["account"]["id"] == older["account"]["id"]  # merged into the older
    dave_shop = (await gw.wechat_ids("shop-mp", "dave"))["openid"]
    for client_id in ("crm", "pusher"):
        p = await probe(gw, client_id)
        answers = await aliased(
            p,
            [
                f'account(id: "{newer["account"]["id"]}") {{ ...Result }}',
                f'account(id: "{older["account"]["id"]}") {{ ...Result }}',
            ],
        )
        absorbed, survivor = answers["f0"], answers["f1"]
        assert (absorbed["found"], absorbed["merged"]) == (True, True)
        assert absorbed["key"] == newer["account"]["id"]
        assert absorbed["account"]["id"] == older["account"]["id"]
        assert absorbed["account"]["status"] == "active"
        assert (survivor["found"], survivor["merged"]) == (True, False)
        assert absorbed["account"] == survivor["account"]
    crm = await probe(gw, "crm")
    data = await crm.partner(BY_OPENID, {"app": "shop-mp", "openid": dave_shop})
    moved = data["accountByOpenid"]
    assert (moved["found"], moved["merged"]) == (True, False)  # the identity itself moved
    assert moved["account"]["id"] == older["account"]["id"]
    assert {i["app"]["key"] for i in items_of(moved)} == {"shop-mp", "news-oa"}
    solo = await probe(gw, "solo-crm")  # the survivor has nothing of solo-mp
    gone = await solo.partner(LOOKUP_BY_ID, {"id": newer["account"]["id"]})
    assert (gone["account"]["found"], gone["account"]["merged"]) == (False, False)


# -- batches ------------------------------------------------------------------------------------


async def seed_shop_accounts(gw: Harness, openids: list[str]) -> None:
    """Accounts with a shop-mp openid, a club-mp openid and a unionid each, straight into the
    database: a hundred logins would only slow the test down."""
    shop, club = gw.appid("shop-mp"), gw.appid("club-mp")
    async with gw.app.state.services.db.transaction() as s:
        for openid in openids:
            account = Account()
            s.add(account)
            await s.flush()
            for kind, scope, subject, app in (
                ("wechat_openid", shop, openid, "shop-mp"),
                ("wechat_openid", club, f"club-{openid}", "club-mp"),
                ("wechat_unionid", PLATFORM, f"union-{openid}", None),
            ):
                s.add(
                    Identity(
                        account_id=account.id, kind=kind, scope=scope, subject=subject, app_key=app
                    )
                )


async def batch(p: Probe, app: str, openids: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = (await p.partner(BATCH, {"app": app, "openids": openids}))[
        "accountsByOpenids"
    ]
    return result


async def test_a_batch_of_100_answers_in_key_order(gw: Harness) -> None:
    keys = [f"o-seed-{n:03d}" if n % 3 else f"o-missing-{n:03d}" for n in range(99)]
    keys.append(keys[1])  # a repeated key is answered twice
    await seed_shop_accounts(gw, [k for k in keys[:99] if k.startswith("o-seed")])
    crm = await probe(gw, "crm")
    result = await batch(crm, "shop-mp", keys)
    assert result["__typename"] == "BatchLookup"
    items = result["items"]
    assert [i["key"] for i in items] == keys
    assert [i["found"] for i in items] == [k.startswith("o-seed") for k in keys]
    for item in items:
        if item["found"]:
            assert [(i["kind"], i["openid"]) for i in item["account"]["identities"]["items"]] == [
                ("WECHAT_OPENID", item["key"])
            ]
        else:
            assert item["account"] is None
    assert items[1]["account"] == items[-1]["account"]
    assert len({i["account"]["id"] for i in items if i["found"]}) == 66
    crm.assert_never_shows({f"club-{k}" for k in keys} | {f"union-{k}" for k in keys})

    too_many = await batch(crm, "shop-mp", [*keys, "o-one-more"])
    assert too_many["__typename"] == "InvalidInputError"
    assert (too_many["code"], too_many["field"]) == ("INVALID_INPUT", "openids")
    assert (await batch(crm, "shop-mp", []))["items"] == []


_COUNTING: ContextVar[bool] = ContextVar("counting", default=False)


@contextmanager
def statements(gw: Harness) -> Iterator[list[str]]:
    """Every SQL statement the app's engine sends for what the block does (the requests it
    makes run in its context; the background tasks started with the app, such as the events'
    delivery worker, do not)."""
    seen: list[str] = []
    engine = gw.app.state.services.db.engine.sync_engine

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if _COUNTING.get():
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    token = _COUNTING.set(True)
    try:
        yield seen
    finally:
        _COUNTING.reset(token)
        event.remove(engine, "before_cursor_execute", count)


async def test_a_batch_costs_a_constant_number_of_statements(gw: Harness) -> None:
    openids = [f"o-seed-{n:03d}" for n in range(100)]
    await seed_shop_accounts(gw, openids)
    crm = await probe(gw, "crm")
    await batch(crm, "shop-mp", openids[:1])  # warm up: the partner row, caches
    costs = {}
    for size in (10, 100):
        with statements(gw) as seen:
            result = await batch(crm, "shop-mp", openids[:size])
        assert [i["found"] for i in result["items"]] == [True] * size
        assert all(i["account"]["identities"]["items"] for i in result["items"])
        costs[size] = len(seen)
    assert costs[10] > 0
    assert costs[100] == costs[10], costs


# -- pagination ---------------------------------------------------------------------------------

PAGE = """query($id: ID!, $first: Int!, $after: String) { partner { ... on PartnerQuery {
  account(id: $id) { ... on AccountLookup { account {
    identities(first: $first, after: $after) { nextCursor items { id kind openid unionid } }
  } } } } } }"""


async def page(p: Probe, account: str, first: int, after: str | None = None) -> dict[str, Any]:
    data = await p.partner(PAGE, {"id": account, "first": first, "after": after})
    result: dict[str, Any] = data["account"]["account"]["identities"]
    return result


async def test_identities_page_by_cursor(gw: Harness, world: World) -> None:
    for client_id, visible in (("pusher", 5), ("crm", 2)):
        p = await probe(gw, client_id)
        everything = await page(p, world.accounts["alice"], 100)
        assert everything["nextCursor"] is None
        assert len(everything["items"]) == visible
        walked, cursor = [], None
        for _ in range(visible + 1):
            one = await page(p, world.accounts["alice"], 1, cursor)
            assert len(one["items"]) == 1
            walked += one["items"]
            cursor = one["nextCursor"]
            if cursor is None:
                break
        assert walked == everything["items"]
        assert len((await page(p, world.accounts["alice"], 0))["items"]) == 1  # at least one
        assert (await page(p, world.accounts["alice"], 1000)) == everything  # at most 100
        p.assert_never_shows(world.forbidden(client_id))


async def test_a_bad_cursor_is_an_error_not_a_crash(gw: Harness, world: World) -> None:
    p = await probe(gw, "pusher")
    for cursor in ("not a cursor", "%%%", base64.urlsafe_b64encode(b"o:many").decode(), "bz"):
        body = await p.raw(PAGE, {"id": world.accounts["alice"], "first": 1, "after": cursor})
        assert body["errors"], body  # and p.raw saw HTTP 200, not a 500
        assert body["data"]["partner"]["account"]["account"] is None
        assert body["errors"][0]["path"][-1] == "identities"
    p.assert_never_shows(world.forbidden("pusher"))


async def test_a_bad_cursor_says_what_is_wrong(gw: Harness) -> None:
    login = await gw.login("shop-mp", "zed")
    p = await probe(gw, "crm")
    body = await p.raw(PAGE, {"id": login["account"]["id"], "first": 1, "after": "bz"})
    assert body["errors"][0]["path"][-1] == "identities"
    assert "cursor" in body["errors"][0]["message"]


# -- audit --------------------------------------------------------------------------------------


async def audit_rows(gw: Harness) -> list[AuditEvent]:
    async with gw.app.state.services.db.reader() as s:
        return list((await s.execute(select(AuditEvent))).scalars())


async def test_every_partner_read_is_audited_without_identifiers(gw: Harness, world: World) -> None:
    assert [r for r in await audit_rows(gw) if r.kind == "partner_read"] == []  # logins aren't
    crm = await probe(gw, "crm")
    alice_shop = world.openid("alice", "shop-mp")
    await crm.partner(LOOKUP_BY_ID, {"id": world.accounts["alice"]})
    await crm.partner(LOOKUP_BY_ID, {"id": world.accounts["bob"]})  # asked, nothing returned
    await crm.partner(BY_OPENID, {"app": "shop-mp", "openid": alice_shop})
    await batch(crm, "shop-mp", [alice_shop, "o-nobody", world.openid("bob", "club-mp")])
    support = await probe(gw, "support")
    await support.partner(BY_USERNAME, {"username": "nobody"})
    await support.partner(BY_PHONE, {"phone": "+8613800138000"})

    rows = await audit_rows(gw)
    reads = sorted(
        (r.detail["partner"], r.detail["query"], r.detail["keys"], r.detail["returned"])
        for r in rows
        if r.kind == "partner_read"
    )
    assert reads == sorted(
        [
            ("crm", "account", 1, 1),
            ("crm", "account", 1, 0),
            ("crm", "accountByOpenid", 1, 1),
            ("crm", "accountsByOpenids", 3, 1),
            ("support", "accountByUsername", 1, 0),
            ("support", "accountByPhone", 1, 0),
        ]
    )
    assert {r.ip for r in rows if r.kind == "partner_read"} == {"127.0.0.1"}
    assert all(
        set(r.detail) == {"partner", "query", "keys", "returned"}
        for r in rows
        if r.kind == "partner_read"
    )
    dump = json.dumps([{k: str(v) for k, v in r.model_dump().items()} for r in rows])
    leaked = {v for v in world.everything() if v in dump}
    assert leaked == set()
    assert "o-nobody" not in dump
    assert "+8613800138000" not in dump
