"""Partners (issue 6): their configuration and tokens, the leak-checking probe, and the test
population (``World``) whose raw WeChat ids the leak checks look for."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gateway.config import GatewayConfig, Settings, load_config
from gateway.partners import scopes
from tests.support.harness import APPS_TOML, Harness

PLATFORM = "test-platform"


# One source of truth for the partners: their TOML and the leak checks both come from it.
PARTNERS: dict[str, dict[str, list[str]]] = {
    "crm": {
        "apps": ["shop-mp", "news-oa"],
        "platforms": [],
        "scopes": [scopes.LOOKUP, scopes.IDENTIFIERS],
    },
    "pusher": {
        "apps": ["news-oa"],
        "platforms": [PLATFORM],
        "scopes": [scopes.LOOKUP, scopes.IDENTIFIERS, scopes.ALL_APPS],
    },
    "solo-crm": {
        "apps": ["solo-mp"],
        "platforms": [],
        "scopes": [scopes.LOOKUP, scopes.IDENTIFIERS, scopes.ALL_APPS],
    },
    "support": {
        "apps": ["shop-mp"],
        "platforms": [],
        "scopes": [scopes.LOOKUP, scopes.LOOKUP_USERNAME, scopes.LOOKUP_PHONE, scopes.IDENTIFIERS],
    },
    "blind": {  # may see a lot, but holds no accounts:lookup
        "apps": ["shop-mp", "club-mp"],
        "platforms": [PLATFORM],
        "scopes": [scopes.IDENTIFIERS, scopes.ALL_APPS],
    },
}


def secret_of(client_id: str) -> str:
    return f"{client_id}-secret-0123456789abcdef"


def partners_toml(names: list[str] | None = None) -> str:
    blocks = []
    for client_id in names if names is not None else list(PARTNERS):
        p = PARTNERS[client_id]
        blocks.append(
            f'[[partners]]\nclient_id = "{client_id}"\nsecret = "{secret_of(client_id)}"\n'
            f"apps = {json.dumps(p['apps'])}\nplatforms = {json.dumps(p['platforms'])}\n"
            f"scopes = {json.dumps(p['scopes'])}\n"
        )
    return "\n".join(blocks)


def partner_config(base: GatewayConfig, tmp_path: Path, toml: str) -> GatewayConfig:
    path = tmp_path / f"partners-{uuid.uuid4().hex[:8]}.toml"
    path.write_text(APPS_TOML + toml, encoding="utf-8")
    return load_config(Settings(**{**base.settings.model_dump(), "config": path}))


async def oauth(
    gw: Harness, client_id: str, secret: str | None = None, **form: str
) -> httpx.Response:
    basic = base64.b64encode(f"{client_id}:{secret or secret_of(client_id)}".encode()).decode()
    return await gw.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", **form},
        headers={"authorization": f"Basic {basic}"},
    )


async def partner_token(gw: Harness, client_id: str, secret: str | None = None, **form: str) -> str:
    answer = await oauth(gw, client_id, secret, **form)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


LOOK = """
fragment Ids on PartnerIdentity { id kind platform linkedAt openid unionid app { key } }
fragment Look on AccountLookup {
  key found merged account { id status identities(first: 100) { nextCursor items { ...Ids } } }
}
"""


FRAGMENTS = (
    LOOK
    + """fragment Result on AccountLookupResult {
  __typename ...Look ... on Error { code } ... on InvalidInputError { field }
}
"""
)


LOOKUP_BY_ID = (
    """query($id: ID!) { partner { __typename ... on PartnerQuery {
  account(id: $id) { ...Result } } ... on Error { code } } }"""
    + FRAGMENTS
)


LOGIN = """mutation($app: String!, $code: String!, $state: String) {
  loginByCode(input: {app: $app, code: $code, state: $state, client: {platform: "web"}}) {
    __typename ... on LoginSuccess { accessToken account { id } } ... on Error { code message }
  } }"""


LINK = """mutation($app: String!, $code: String!) {
  linkWechat(input: {app: $app, code: $code}) {
    __typename ... on LinkWechatSuccess { merged account { id } } ... on Error { code } } }"""


AUTHORIZE = """query($scope: String!) {
  authorizationUrl(app: "news-oa", redirectUri: "https://news.example.com/cb", scope: $scope) {
    ... on AuthorizationUrl { state } } }"""


@dataclass
class Probe:
    """Sends GraphQL with one bearer token and keeps every exchange, raw, for the leak checks."""

    gw: Harness
    token: str | None
    exchanges: list[tuple[str, str]] = field(default_factory=list)  # (request, response) text
    bodies: list[Any] = field(default_factory=list)

    async def raw(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        payload = {"query": query, "variables": variables or {}}
        answer = await self.gw.client.post("/graphql", json=payload, headers=headers)
        assert answer.status_code in (200, 401), answer.text  # 401: a token that is not live
        self.exchanges.append((json.dumps(payload), answer.text))
        body: dict[str, Any] = answer.json()
        self.bodies.append(body)
        return body

    async def __call__(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        body = await self.raw(query, variables)
        assert "errors" not in body, body
        return body["data"]

    async def partner(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        data = await self(query, variables)
        assert data["partner"].get("__typename", "PartnerQuery") == "PartnerQuery", data
        return data["partner"]

    def leaked(self, values: set[str]) -> set[str]:
        """Values found anywhere in a response body that its request did not send (a lookup
        echoes its own `key`: the partner knew that one already)."""
        return {v for v in values for sent, got in self.exchanges if v in got and v not in sent}

    def revealed(self) -> set[str]:
        """Every non-null `openid`/`unionid` field in every response, whatever was sent."""
        found: set[str] = set()

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                for k, v in node.items():
                    if k in ("openid", "unionid") and isinstance(v, str):
                        found.add(v)
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)

        walk(self.bodies)
        return found

    def assert_never_shows(self, forbidden: set[str]) -> None:
        assert self.leaked(forbidden) == set()
        assert self.revealed() & forbidden == set()


async def probe(gw: Harness, client_id: str, **form: str) -> Probe:
    return Probe(gw, await partner_token(gw, client_id, **form))


@dataclass(frozen=True)
class RawId:
    kind: str  # "openid" | "unionid"
    value: str
    user: str
    app: str | None  # for openids
    platform: str | None  # for unionids
    stored: bool  # did the gateway ever learn it?


@dataclass
class World:
    accounts: dict[str, str]  # user -> Account global id
    tokens: dict[str, str]  # user -> frontend access token
    ids: list[RawId]

    def openid(self, user: str, app: str) -> str:
        return next(
            i.value for i in self.ids if i.kind == "openid" and (i.user, i.app) == (user, app)
        )

    def unionid(self, user: str) -> str:
        return next(i.value for i in self.ids if i.kind == "unionid" and i.user == user)

    def allowed(self, client_id: str) -> set[str]:
        p = PARTNERS[client_id]
        return {
            i.value
            for i in self.ids
            if (i.kind == "openid" and i.app in p["apps"])
            or (i.kind == "unionid" and i.platform in p["platforms"])
        }

    def forbidden(self, client_id: str) -> set[str]:
        return {i.value for i in self.ids} - self.allowed(client_id)

    def everything(self) -> set[str]:
        return {i.value for i in self.ids}


async def oa_login(gw: Harness, user: str, scope: str) -> dict[str, Any]:
    state = (await gw.gql(AUTHORIZE, {"scope": scope}))["data"]["authorizationUrl"]["state"]
    code = await gw.mint("news-oa", user, scope=scope)
    body = await gw.gql(LOGIN, {"app": "news-oa", "code": code, "state": state})
    result: dict[str, Any] = body["data"]["loginByCode"]
    assert result["__typename"] == "LoginSuccess", result
    return result


async def build_world(gw: Harness) -> World:
    """alice: shop-mp, club-mp, news-oa (userinfo: unionid) and solo-mp (linked, no platform);
    bob: club-mp only; carol: solo-mp only; eve: news-oa with snsapi_base (openid only)."""
    alice = await gw.login("shop-mp", "alice")
    assert (await gw.login("club-mp", "alice"))["account"]["id"] == alice["account"]["id"]
    assert (await oa_login(gw, "alice", "snsapi_userinfo"))["account"]["id"] == alice["account"][
        "id"
    ]
    code = await gw.mint("solo-mp", "alice")
    linked = await gw.gql(LINK, {"app": "solo-mp", "code": code}, token=alice["accessToken"])
    assert linked["data"]["linkWechat"]["__typename"] == "LinkWechatSuccess", linked
    bob = await gw.login("club-mp", "bob")
    carol = await gw.login("solo-mp", "carol")
    eve = await oa_login(gw, "eve", "snsapi_base")
    logins = {"alice": alice, "bob": bob, "carol": carol, "eve": eve}
    used = {
        "alice": ["shop-mp", "club-mp", "news-oa", "solo-mp"],
        "bob": ["club-mp"],
        "carol": ["solo-mp"],
        "eve": ["news-oa"],
    }
    ids: dict[str, RawId] = {}
    for user, apps in used.items():
        for app in apps:
            raw = await gw.wechat_ids(app, user)
            assert raw["openid"]
            ids[raw["openid"]] = RawId("openid", raw["openid"], user, app, None, True)
            if raw["unionid"]:
                stored = user != "eve"  # snsapi_base never tells the gateway the unionid
                ids.setdefault(
                    raw["unionid"], RawId("unionid", raw["unionid"], user, None, PLATFORM, stored)
                )
    assert len({i.value for i in ids.values() if i.kind == "unionid"}) == 3  # alice, bob, eve
    return World(
        accounts={u: r["account"]["id"] for u, r in logins.items()},
        tokens={u: r["accessToken"] for u, r in logins.items()},
        ids=list(ids.values()),
    )


def items_of(lookup: dict[str, Any]) -> list[dict[str, Any]]:
    assert lookup["__typename"] == "AccountLookup", lookup
    assert lookup["account"] is not None, lookup
    items: list[dict[str, Any]] = lookup["account"]["identities"]["items"]
    return items


def global_id(kind: str, raw: uuid.UUID) -> str:
    return base64.b64encode(f"{kind}:{raw}".encode()).decode()
