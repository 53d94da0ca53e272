"""The account graph: WeChat logins (official-account ones with their state), linkWechat, reads
of the stored graph, and bindUnionId's open data (sealed with WeChat's session_key, genuine or
forged, or withheld by a WeChat that leaves the unionid out)."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlmodel import col
from starlette.applications import Starlette

from gateway.accounts.tables import Account, Identity
from gateway.store.models import AuditEvent
from gateway.wechat.crypto import encrypt_open_data, raw_data_signature
from tests.support.harness import Harness
from tests.support.passwords import gql

AUTHORIZATION_URL = """
query($app: String!, $redirect: String!, $scope: String) {
  authorizationUrl(app: $app, redirectUri: $redirect, scope: $scope) {
    __typename
    ... on AuthorizationUrl { url state expiresAt }
    ... on Error { code message }
    ... on InvalidInputError { field }
  }
}
"""


LOGIN_WITH_STATE = """
mutation($app: String!, $code: String!, $state: String) {
  loginByCode(input: {app: $app, code: $code, state: $state, client: {platform: "web"}}) {
    __typename
    ... on LoginSuccess {
      accessToken refreshToken isNewAccount
      account { id status nickname avatarUrl identities { kind app { key } } }
    }
    ... on Error { code message }
    ... on InvalidInputError { field }
  }
}
"""


VIEWER = "{ viewer { id status nickname avatarUrl identities { kind label app { key } } } }"


REDIRECT = "https://news.example.com/wechat/callback"


async def oa_state(gw: Harness, app: str = "news-oa", scope: str | None = None) -> str:
    body = await gw.gql(AUTHORIZATION_URL, {"app": app, "redirect": REDIRECT, "scope": scope})
    result = body["data"]["authorizationUrl"]
    assert result["__typename"] == "AuthorizationUrl", result
    return str(result["state"])


async def oa_attempt(
    gw: Harness, user: str, *, scope: str = "snsapi_userinfo", **mint: Any
) -> dict[str, Any]:
    """What the redirect page does: authorizationUrl, the user consents, loginByCode."""
    state = await oa_state(gw, scope=scope)
    code = await gw.mint("news-oa", user, scope=scope, **mint)
    body = await gw.gql(LOGIN_WITH_STATE, {"app": "news-oa", "code": code, "state": state})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["loginByCode"]
    return result


async def oa_login(gw: Harness, user: str, *, scope: str = "snsapi_userinfo") -> dict[str, Any]:
    result = await oa_attempt(gw, user, scope=scope)
    assert result["__typename"] == "LoginSuccess", result
    return result


LOGIN = """
mutation($app: String!, $code: String!, $state: String) {
  loginByCode(input: {app: $app, code: $code, state: $state, client: {platform: "web"}}) {
    __typename
    ... on LoginSuccess { accessToken isNewAccount account { id } }
    ... on Error { code }
  }
}
"""


async def wechat_login(
    gw: Harness, app: str, user: str, scope: str | None = None
) -> dict[str, Any]:
    """loginByCode for ``user`` at ``app`` (with an official account's state when ``scope``
    is given): the typed result, success or error."""
    extra = {"scope": scope} if scope else {}
    state = await oa_state(gw, scope=scope) if scope else None
    variables = {"app": app, "code": await gw.mint(app, user, **extra), "state": state}
    result: dict[str, Any] = (await gw.gql(LOGIN, variables))["data"]["loginByCode"]
    return result


IDENTITIES = "account { id status identities { id kind label app { key } } }"
LINK = f"""
mutation($app: String!, $code: String!, $state: String, $client: ClientInput) {{
  linkWechat(input: {{app: $app, code: $code, state: $state, client: $client}}) {{
    __typename
    ... on LinkWechatSuccess {{ merged {IDENTITIES} }}
    ... on Error {{ code message }}
  }}
}}
"""


async def link(
    gw: Harness,
    token: str | None,
    app: str,
    user: str,
    *,
    scope: str | None = None,
    client: dict[str, Any] | None = None,
    **mint: Any,
) -> dict[str, Any]:
    """linkWechat: ``user``'s identity at ``app`` added to the account of ``token``."""
    code = await gw.mint(app, user, **({"scope": scope} if scope else {}), **mint)
    state = await oa_state(gw, scope=scope or "snsapi_base") if app == "news-oa" else None
    variables = {"app": app, "code": code, "state": state, "client": client}
    result: dict[str, Any] = (await gql(gw.client, LINK, variables, token))["data"]["linkWechat"]
    return result


def account_uuid(global_id: str) -> uuid.UUID:
    kind, _, raw = base64.b64decode(global_id).decode().partition(":")
    assert kind == "Account"
    return uuid.UUID(raw)


async def viewer(gw: Harness, token: str) -> dict[str, Any]:
    body = await gw.gql(VIEWER, token=token)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["viewer"]
    return result


async def count(gw: Harness, model: Any, *where: Any) -> int:
    async with gw.app.state.services.db.reader() as s:
        query = select(func.count()).select_from(model).where(*where)
        return int((await s.execute(query)).scalar_one())


async def accounts_in_db(gw: Harness) -> dict[uuid.UUID, Account]:
    async with gw.app.state.services.db.reader() as s:
        rows = (await s.execute(select(Account))).scalars().all()
    return {row.id: row for row in rows}


async def identities_in_db(gw: Harness) -> list[Identity]:
    async with gw.app.state.services.db.reader() as s:
        return list((await s.execute(select(Identity))).scalars().all())


async def audit_events(gw: Harness, kind: str) -> list[AuditEvent]:
    """The audit rows of ``kind``, oldest first."""
    async with gw.app.state.services.db.reader() as s:
        query = select(AuditEvent).where(col(AuditEvent.kind) == kind)
        return list((await s.execute(query.order_by(col(AuditEvent.created_at)))).scalars())


async def merge_events(gw: Harness) -> list[AuditEvent]:
    return await audit_events(gw, "merge")


def kinds(account: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(kind, app) of each identity; a unionid belongs to the platform, not to one app."""
    return sorted(
        (i["kind"], i["app"]["key"] if i["app"] and i["kind"] != "WECHAT_UNIONID" else None)
        for i in account["identities"]
    )


async def two_accounts_of_dave(gw: Harness, oa_first: bool) -> tuple[dict[str, Any], ...]:
    """An official-account base-scope login knows only the openid: the unionid is unseen, so
    dave's shop-mp login (unionid + openid) makes a second account."""
    if oa_first:
        oa = await oa_login(gw, "dave", scope="snsapi_base")
        shop = await gw.login("shop-mp", "dave")
    else:
        shop = await gw.login("shop-mp", "dave")
        oa = await oa_login(gw, "dave", scope="snsapi_base")
    assert oa["account"]["id"] != shop["account"]["id"]
    return (oa, shop) if oa_first else (shop, oa)


BIND = """
mutation($data: String!, $iv: String!, $raw: String, $sig: String) {
  bindUnionId(input: {encryptedData: $data, iv: $iv, rawData: $raw, signature: $sig,
                      client: {platform: "ios"}}) {
    __typename
    ... on BindUnionIdSuccess {
      merged linked
      account { id status nickname avatarUrl identities { kind app { key } } }
    }
    ... on Error { code message }
  }
}
"""


async def open_data(gw: Harness, app: str, user: str, **extra: Any) -> dict[str, str]:
    """What wx.getUserInfo hands the mini-program, sealed with WeChat's latest session_key."""
    answer = await gw.upstream.post(
        "/sandbox/encrypted-data", json={"appid": gw.appid(app), "user": user, **extra}
    )
    assert answer.status_code == 200, answer.text
    data: dict[str, str] = answer.json()
    return data


def variables(data: dict[str, str]) -> dict[str, str]:
    return {
        "data": data["encryptedData"],
        "iv": data["iv"],
        "raw": data["rawData"],
        "sig": data["signature"],
    }


async def bind_unionid(gw: Harness, token: str | None, data: dict[str, str]) -> dict[str, Any]:
    body = await gw.gql(BIND, variables(data), token=token)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["bindUnionId"]
    return result


class UnionIdWithheld(httpx.AsyncBaseTransport):
    """The emulator, except that ``jscode2session`` answers carry no unionid."""

    def __init__(self, upstream_app: Starlette) -> None:
        self._inner = httpx.ASGITransport(app=upstream_app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if request.url.path != "/sns/jscode2session":
            return response
        body = json.loads(await response.aread())
        body.pop("unionid", None)
        return httpx.Response(response.status_code, json=body)


async def forged(gw: Harness, app: str, user: str, **payload: Any) -> dict[str, str]:
    """Open data sealed with the real session_key, but saying what the test wants."""
    ids = await gw.wechat_ids(app, user)
    key = str(ids["session_key"])
    plain: dict[str, Any] = {
        "openId": ids["openid"],
        "nickName": user,
        "unionId": ids["unionid"],
        "watermark": {"appid": gw.appid(app), "timestamp": 1},
    }
    plain.update(payload)
    plain = {k: v for k, v in plain.items() if v is not None}
    encrypted, iv = encrypt_open_data(key, plain)
    raw = json.dumps({"nickName": user}, separators=(",", ":"))
    return {
        "encryptedData": encrypted,
        "iv": iv,
        "rawData": raw,
        "signature": raw_data_signature(raw, key),
    }


async def rotate_at_wechat(gw: Harness, app: str, user: str) -> None:
    """The client called wx.login again and never told the gateway: WeChat has a new key."""
    config = gw.config.app(app)
    assert config is not None
    code = await gw.mint(app, user)
    answer = await gw.upstream.get(
        "/sns/jscode2session",
        params={
            "appid": config.appid,
            "secret": config.secret.get_secret_value(),
            "js_code": code,
            "grant_type": "authorization_code",
        },
    )
    assert "session_key" in answer.json()
