"""Partner services: client credentials at /oauth/token, then lookups that show only what the
partner is entitled to."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.config import Settings, load_config
from tests.support.harness import APPS_TOML, Harness, MakeConfig, running

PARTNERS_TOML = """
[[partners]]
client_id = "crm"
secret = "crm-secret-0123456789abcdef"
apps = ["shop-mp", "news-oa"]
scopes = ["accounts:lookup", "identities:identifiers"]

[[partners]]
client_id = "pusher"
secret = "pusher-secret-0123456789abcdef"
apps = ["news-oa"]
platforms = ["test-platform"]
scopes = ["accounts:lookup", "identities:identifiers", "identities:all-apps"]
rate_limit_per_minute = 5
"""

BATCH = """query($app: String!, $openids: [String!]!) {
  partner { __typename
    ... on PartnerQuery { accountsByOpenids(app: $app, openids: $openids) { __typename
      ... on BatchLookup { items { key found merged account { id
        identities { items { kind app { key } platform openid unionid } } } } }
      ... on Error { code message } } }
    ... on Error { code } } }"""


@pytest.fixture
async def gw(database_url: str, tmp_path: Path, make_config: MakeConfig) -> AsyncIterator[Harness]:
    base = make_config(database_url)
    toml = tmp_path / "partners.toml"
    toml.write_text(APPS_TOML + PARTNERS_TOML, encoding="utf-8")
    config = load_config(Settings(**{**base.settings.model_dump(), "config": toml}))
    async with running(config) as harness:
        yield harness


async def token(gw: Harness, client_id: str, secret: str, **form: str) -> httpx.Response:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return await gw.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", **form},
        headers={"authorization": f"Basic {basic}"},
    )


async def partner_token(gw: Harness, client_id: str, secret: str) -> str:
    answer = await token(gw, client_id, secret)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


async def test_partner_sees_only_its_own_apps_identifiers(gw: Harness) -> None:
    await gw.login("shop-mp", "alice")
    await gw.login("club-mp", "alice")
    ids = await gw.wechat_ids("shop-mp", "alice")
    club = await gw.wechat_ids("club-mp", "alice")
    crm = await partner_token(gw, "crm", "crm-secret-0123456789abcdef")
    body = await gw.gql(
        BATCH, {"app": "shop-mp", "openids": [ids["openid"], "o-unknown"]}, token=crm
    )
    result = body["data"]["partner"]["accountsByOpenids"]
    assert result["__typename"] == "BatchLookup"
    found, missing = result["items"]
    assert (found["found"], missing["found"]) == (True, False)
    identities = found["account"]["identities"]["items"]
    assert identities == [
        {
            "kind": "WECHAT_OPENID",
            "app": {"key": "shop-mp"},
            "platform": "test-platform",
            "openid": ids["openid"],
            "unionid": None,
        }
    ]
    text = str(body)
    club_openid, unionid = club["openid"], ids["unionid"]
    assert club_openid is not None
    assert unionid is not None
    assert club_openid not in text
    assert unionid not in text


async def test_other_apps_are_listed_without_identifiers_only_with_all_apps_scope(
    gw: Harness,
) -> None:
    await gw.login("shop-mp", "bob")
    ids = await gw.wechat_ids("shop-mp", "bob")
    pusher = await partner_token(gw, "pusher", "pusher-secret-0123456789abcdef")
    query = """query($u: String!) { partner { ... on PartnerQuery {
      accountByUnionid(platform: "test-platform", unionid: $u) {
        ... on AccountLookup { found account { identities { items {
          kind app { key } openid unionid } } } } } } } }"""
    body = await gw.gql(query, {"u": ids["unionid"]}, token=pusher)
    items = body["data"]["partner"]["accountByUnionid"]["account"]["identities"]["items"]
    by_kind = {i["kind"]: i for i in items}
    assert by_kind["WECHAT_UNIONID"]["unionid"] == ids["unionid"]
    assert by_kind["WECHAT_OPENID"] == {
        "kind": "WECHAT_OPENID",
        "app": {"key": "shop-mp"},
        "openid": None,
        "unionid": None,
    }
    openid = ids["openid"]
    assert openid is not None
    assert openid not in str(body)


async def test_not_entitled_app_and_token_confusion(gw: Harness) -> None:
    login = await gw.login("shop-mp", "carol")
    crm = await partner_token(gw, "crm", "crm-secret-0123456789abcdef")
    body = await gw.gql(BATCH, {"app": "club-mp", "openids": ["x"]}, token=crm)
    assert body["data"]["partner"]["accountsByOpenids"]["code"] == "NOT_ENTITLED"
    frontend = await gw.gql(BATCH, {"app": "shop-mp", "openids": ["x"]}, token=login["accessToken"])
    assert frontend["data"]["partner"] == {
        "__typename": "NotAuthenticatedError",
        "code": "NOT_LOGGED_IN",
    }
    viewer = await gw.gql("{ viewer { id } }", token=crm)
    assert viewer["data"]["viewer"] is None


@pytest.mark.parametrize(
    ("kwargs", "status", "error"),
    [
        ({"client_id": "crm", "secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "nobody", "secret": "x"}, 401, "invalid_client"),
        (
            {"client_id": "crm", "secret": "crm-secret-0123456789abcdef", "scope": "admin"},
            400,
            "invalid_scope",
        ),
        (
            {"client_id": "crm", "secret": "crm-secret-0123456789abcdef", "grant_type": "password"},
            400,
            "unsupported_grant_type",
        ),
    ],
)
async def test_oauth_error_bodies(
    gw: Harness, kwargs: dict[str, str], status: int, error: str
) -> None:
    kwargs = dict(kwargs)  # parametrize shares the dict between backends
    client_id, secret = kwargs.pop("client_id"), kwargs.pop("secret")
    answer = await token(gw, client_id, secret, **kwargs)
    assert answer.status_code == status
    assert answer.json()["error"] == error
    assert answer.headers["cache-control"] == "no-store"


async def test_rate_limit_per_partner(gw: Harness) -> None:
    pusher = await partner_token(gw, "pusher", "pusher-secret-0123456789abcdef")
    codes = []
    for _ in range(3):
        body = await gw.gql(BATCH, {"app": "news-oa", "openids": ["a", "b"]}, token=pusher)
        codes.append(body["data"]["partner"]["accountsByOpenids"]["__typename"])
    assert codes == ["BatchLookup", "BatchLookup", "RateLimitedError"]


async def test_refused_lookups_are_audited(gw: Harness) -> None:
    from sqlalchemy import text

    from gateway.store.db import create_engine

    crm = await partner_token(gw, "crm", "crm-secret-0123456789abcdef")
    body = await gw.gql(BATCH, {"app": "club-mp", "openids": ["o-probe"]}, token=crm)
    assert body["data"]["partner"]["accountsByOpenids"]["code"] == "NOT_ENTITLED"
    engine = create_engine(gw.config.database_url)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT detail FROM audit_events WHERE kind = 'partner_refused'")
            )
        ).all()
    await engine.dispose()
    assert len(rows) == 1
    assert "o-probe" not in str(rows[0])
    assert "NOT_ENTITLED" in str(rows[0])
