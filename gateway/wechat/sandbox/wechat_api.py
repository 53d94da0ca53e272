"""The emulated WeChat endpoints: same paths, parameters, bodies and errcodes as WECHAT.md.

Failures answer HTTP 200 with ``{"errcode", "errmsg"}`` as WeChat does, so the gateway is
exercised reading bodies rather than statuses. Each call is counted (before the configured
latency) so tests can assert exactly how many upstream calls were made.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import math
import secrets
from collections.abc import Awaitable, Callable
from typing import Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..crypto import check_session_signature
from .state import (
    KINDS,
    TOKEN_TTL,
    USERINFO_SCOPES,
    Code,
    Grant,
    SandboxState,
    UserToken,
    WeChatError,
)

Body = dict[str, object]
Handler = Callable[[Request, SandboxState], Awaitable[Body]]

MINIPROGRAM: Final = frozenset({"miniprogram"})
OAUTH_KINDS: Final = KINDS - MINIPROGRAM

ERRMSG: Final = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40013: "invalid appid",
    40029: "invalid code",
    40030: "invalid refresh_token",
    40125: "invalid appsecret",
    40163: "code been used",
    40169: "invalid length for scene, or the data is not json",
    40226: "high risk level user, login blocked",
    41001: "access_token missing",
    41008: "missing code",
    41030: "invalid page rid",
    42001: "access_token expired",
    42002: "refresh_token expired",
    42003: "code expired",
    45011: "api minute-quota reach limit, mustslower, retry next minute",
    47001: "data format error",
    48001: "api unauthorized",
    61010: "user is not active in this mini-program",
    87009: "invalid signature",
}

RISKY_WORDS: Final = ("违禁", "risky")
"""Text the emulated msg_sec_check judges risky (label 20001), so a refusal can be tried."""


def error_body(errcode: int) -> Body:
    """WeChat's failure shape; the rid suffix keeps clients from matching on errmsg."""
    rid = f"{secrets.token_hex(4)}-{secrets.token_hex(4)}"
    return {"errcode": errcode, "errmsg": f"{ERRMSG.get(errcode, 'error')} rid: {rid}"}


def avatar_url(user: str) -> str:
    """A stable, made-up avatar URL in WeChat's CDN shape."""
    tag = base64.urlsafe_b64encode(hashlib.sha256(user.encode("utf-8")).digest()).decode()
    return f"https://thirdwx.qlogo.cn/mmopen/vi_32/{tag.rstrip('=')}/132"


def _route(state: SandboxState, path: str, handler: Handler, method: str) -> Route:
    async def endpoint(request: Request) -> Response:
        state.calls[path] += 1
        if state.latency > 0:
            await asyncio.sleep(state.latency)
        if state.failure_rate > 0 and secrets.randbelow(10_000) < state.failure_rate * 10_000:
            return JSONResponse(error_body(-1))
        try:
            body = await handler(request, state)
        except WeChatError as exc:
            body = error_body(exc.errcode)
        return JSONResponse(body)

    return Route(path, endpoint, methods=[method])


def _require_grant_type(value: str | None, expected: str) -> None:
    if value != expected:
        raise WeChatError(40002)


async def _json_object(request: Request) -> Body:
    """POST bodies WeChat cannot parse answer 47001."""
    try:
        data = await request.json()
    except ValueError:
        raise WeChatError(47001) from None
    if not isinstance(data, dict):
        raise WeChatError(47001)
    return data


def _text(body: Body, name: str) -> str:
    value = body.get(name)
    return value if isinstance(value, str) else ""


async def jscode2session(request: Request, state: SandboxState) -> Body:
    """Mini-program login: each code once, and a fresh session_key at every exchange."""
    query = request.query_params
    app = state.authenticate(query.get("appid", ""), query.get("secret", ""), MINIPROGRAM)
    _require_grant_type(query.get("grant_type"), "authorization_code")
    code = state.redeem(state.codes, app.appid, query.get("js_code", ""), expired=40029)
    openid = state.openid(app.appid, code.user)
    body: Body = {"openid": openid, "session_key": state.rotate_session_key(app.appid, openid)}
    unionid = state.unionid(app.appid, code.user)
    if unionid is not None:
        body["unionid"] = unionid
    return body


async def oauth_access_token(request: Request, state: SandboxState) -> Body:
    """OAuth2 code exchange for official accounts, websites and mobile apps."""
    query = request.query_params
    app = state.authenticate(query.get("appid", ""), query.get("secret", ""), OAUTH_KINDS)
    _require_grant_type(query.get("grant_type"), "authorization_code")
    code = state.redeem(state.codes, app.appid, query.get("code", ""), expired=42003)
    grant = _grant_for(state, code)
    access_token, refresh_token = state.issue_user_tokens(grant)
    body: Body = {
        "access_token": access_token,
        "expires_in": TOKEN_TTL,
        "refresh_token": refresh_token,
        "openid": grant.openid,
        "scope": grant.scope,
    }
    if grant.unionid is not None:
        body["unionid"] = grant.unionid
    if grant.snapshot:
        body["is_snapshotuser"] = 1
    return body


def _grant_for(state: SandboxState, code: Code) -> Grant:
    """Unionid only with a userinfo/login scope; snapshot users get fake ids throughout."""
    unionid = None
    if code.scope in USERINFO_SCOPES:
        unionid = state.unionid(code.appid, code.user, snapshot=code.snapshot)
    return Grant(
        appid=code.appid,
        user=code.user,
        openid=state.openid(code.appid, code.user, snapshot=code.snapshot),
        unionid=unionid,
        scope=code.scope,
        snapshot=code.snapshot,
    )


async def oauth_refresh_token(request: Request, state: SandboxState) -> Body:
    """A new user access token from a refresh token (40030 unknown, 42002 expired)."""
    query = request.query_params
    app = state.apps.get(query.get("appid", ""))
    if app is None or app.kind not in OAUTH_KINDS:
        raise WeChatError(40013)
    _require_grant_type(query.get("grant_type"), "refresh_token")
    refresh_token = query.get("refresh_token", "")
    token = state.refresh_tokens.get(refresh_token)
    if token is None or token.grant.appid != app.appid:
        raise WeChatError(40030)
    if state.now() >= token.expires_at:
        raise WeChatError(42002)
    return {
        "access_token": state.issue_access_token(token.grant),
        "expires_in": TOKEN_TTL,
        "refresh_token": refresh_token,
        "openid": token.grant.openid,
        "scope": token.grant.scope,
    }


def _user_token(state: SandboxState, value: str) -> UserToken:
    if not value:
        raise WeChatError(41001)
    token = state.user_tokens.get(value)
    if token is None:
        raise WeChatError(40001)
    if state.now() >= token.expires_at:
        raise WeChatError(42001)
    return token


async def userinfo(request: Request, state: SandboxState) -> Body:
    """The profile behind a user token; 48001 unless the scope was snsapi_userinfo/login."""
    query = request.query_params
    grant = _user_token(state, query.get("access_token", "")).grant
    if query.get("openid") != grant.openid:
        raise WeChatError(40003)
    if grant.scope not in USERINFO_SCOPES:
        raise WeChatError(48001)
    body: Body = {
        "openid": grant.openid,
        "nickname": grant.user,
        "sex": 0,
        "province": "",
        "city": "",
        "country": "",
        "headimgurl": avatar_url(grant.user),
        "privilege": [],
    }
    if grant.unionid is not None:
        body["unionid"] = grant.unionid
    return body


async def stable_token(request: Request, state: SandboxState) -> Body:
    """The app's own token: the same one while valid, a new one on ``force_refresh``."""
    body = await _json_object(request)
    _require_grant_type(_text(body, "grant_type"), "client_credential")
    app = state.authenticate(_text(body, "appid"), _text(body, "secret"), KINDS)
    force_refresh = body.get("force_refresh", False)
    if not isinstance(force_refresh, bool):
        raise WeChatError(47001)
    token = state.app_token(app.appid, force_refresh=force_refresh)
    remaining = math.ceil(token.expires_at - state.now())  # WeChat answers the time left
    return {"access_token": token.value, "expires_in": remaining}


def _current_session_key(request: Request, state: SandboxState) -> tuple[str, str, str]:
    """``(appid, openid, session_key)`` when the signature proves the latest key, else 87009."""
    query = request.query_params
    appid = state.resolve_app_token(query.get("access_token", "")).appid
    openid = query.get("openid", "")
    key = state.session_keys.get((appid, openid))
    if key is None or query.get("sig_method") != "hmac_sha256":
        raise WeChatError(87009)
    expected = check_session_signature(key).encode("ascii")
    if not hmac.compare_digest(expected, query.get("signature", "").encode("utf-8")):
        raise WeChatError(87009)
    return appid, openid, key


async def checksession(request: Request, state: SandboxState) -> Body:
    """errcode 0 only for a signature made with the latest session_key."""
    _current_session_key(request, state)
    return {"errcode": 0, "errmsg": "ok"}


async def resetusersessionkey(request: Request, state: SandboxState) -> Body:
    """Rotates the session_key of a user whose current key the caller can prove."""
    appid, openid, _ = _current_session_key(request, state)
    key = state.rotate_session_key(appid, openid)
    return {"errcode": 0, "errmsg": "ok", "openid": openid, "session_key": key}


async def getuserphonenumber(request: Request, state: SandboxState) -> Body:
    """Phone-button codes, minted apart from login codes; any bad code is 40029."""
    appid = state.resolve_app_token(request.query_params.get("access_token", "")).appid
    value = _text(await _json_object(request), "code")
    if not value:
        raise WeChatError(40029)
    code = state.redeem(state.phone_codes, appid, value, expired=40029, reused=40029)
    if code.phone is None:  # a login code can never reach this table; be safe anyway
        raise WeChatError(40029)
    pure, country = code.phone
    return {
        "errcode": 0,
        "errmsg": "ok",
        "phone_info": {
            "phoneNumber": pure if country == "86" else f"+{country}{pure}",
            "purePhoneNumber": pure,
            "countryCode": country,
            "watermark": {"timestamp": int(state.now()), "appid": appid},
        },
    }


async def msg_sec_check(request: Request, state: SandboxState) -> Body:
    """Version 2 only; the author must be a user the app has seen log in (61010 otherwise).
    Text holding one of ``RISKY_WORDS`` is risky; anything else passes."""
    appid = state.resolve_app_token(request.query_params.get("access_token", "")).appid
    body = await _json_object(request)
    content, openid = _text(body, "content"), _text(body, "openid")
    if body.get("version") != 2 or body.get("scene") not in (1, 2, 3, 4) or not content:
        raise WeChatError(47001)
    if (appid, openid) not in state.session_keys:
        raise WeChatError(61010)
    risky = any(word in content.lower() for word in RISKY_WORDS)
    suggest, label = ("risky", 20001) if risky else ("pass", 100)
    return {
        "errcode": 0,
        "errmsg": "ok",
        "result": {"suggest": suggest, "label": label},
        "detail": [{"strategy": "content_model", "errcode": 0, "suggest": suggest, "label": label}],
        "trace_id": secrets.token_hex(12),
    }


def wechat_routes(state: SandboxState) -> list[Route]:
    """All emulated WeChat endpoints, bound to one emulator's state."""
    table: list[tuple[str, Handler, str]] = [
        ("/sns/jscode2session", jscode2session, "GET"),
        ("/sns/oauth2/access_token", oauth_access_token, "GET"),
        ("/sns/oauth2/refresh_token", oauth_refresh_token, "GET"),
        ("/sns/userinfo", userinfo, "GET"),
        ("/cgi-bin/stable_token", stable_token, "POST"),
        ("/wxa/checksession", checksession, "GET"),
        ("/wxa/resetusersessionkey", resetusersessionkey, "GET"),
        ("/wxa/business/getuserphonenumber", getuserphonenumber, "POST"),
        ("/wxa/msg_sec_check", msg_sec_check, "POST"),
    ]
    return [_route(state, path, handler, method) for path, handler, method in table]
