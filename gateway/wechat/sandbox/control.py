"""Control endpoints under ``/sandbox/``: play the user's WeChat client, and inspect the emulator.

Real codes come from a phone; here the demo and the tests mint them, inject failures, fetch the
``encryptedData`` a mini-program would get, move the clock and read call counts. Unlike the
WeChat endpoints, these answer plain HTTP errors (400, 409) with ``{"error": "..."}``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..crypto import encrypt_open_data, raw_data_signature
from .state import DEFAULT_SCOPE, Code, SandboxApp, SandboxState
from .wechat_api import avatar_url

Body = dict[str, object]
Handler = Callable[[Request, SandboxState], Awaitable[Body]]

SCOPES: Final = frozenset({"snsapi_base", "snsapi_userinfo", "snsapi_login"})
ANONYMOUS_NICKNAME: Final = "微信用户"
ANONYMOUS_AVATAR: Final = (
    "https://thirdwx.qlogo.cn/mmopen/vi_32/POgEwh4mIHO4nibH0KlMECNjjGxQUq24ZEaGT4poC6icRiccV"
    "GKSyXwibcPq4BWmiaIGuG1icwxaQX6grC9VemZoJ8rg/132"
)


class ControlError(Exception):
    """A caller mistake on a control endpoint, answered with ``status`` and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _route(state: SandboxState, path: str, handler: Handler, method: str) -> Route:
    async def endpoint(request: Request) -> Response:
        try:
            return JSONResponse(await handler(request, state))
        except ControlError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)

    return Route(path, endpoint, methods=[method])


async def _body(request: Request) -> Body:
    try:
        data = await request.json()
    except ValueError:
        raise ControlError(400, "body must be JSON") from None
    if not isinstance(data, dict):
        raise ControlError(400, "body must be a JSON object")
    return data


def _str(body: Body, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ControlError(400, f"{name} must be a non-empty string")
    return value


def _opt_str(body: Body, name: str) -> str | None:
    return None if body.get(name) is None else _str(body, name)


def _opt_bool(body: Body, name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise ControlError(400, f"{name} must be a boolean")
    return value


def _opt_int(body: Body, name: str) -> int | None:
    value = body.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ControlError(400, f"{name} must be an integer")
    return value


def _app(state: SandboxState, appid: str, kinds: Sequence[str] | None = None) -> SandboxApp:
    app = state.apps.get(appid)
    if app is None:
        raise ControlError(400, f"unknown appid {appid}")
    if kinds is not None and app.kind not in kinds:
        raise ControlError(400, f"{appid} is a {app.kind}, this needs one of {sorted(kinds)}")
    return app


def _failure(body: Body) -> tuple[int | None, int | None]:
    """``(errcode, fail_times)``: fail always with errcode, or the first N times (-1 default)."""
    errcode, fail_times = _opt_int(body, "errcode"), _opt_int(body, "fail_times")
    if fail_times is not None:
        if fail_times < 0:
            raise ControlError(400, "fail_times must be >= 0")
        errcode = -1 if errcode is None else errcode
    if errcode == 0:
        raise ControlError(400, "errcode must be non-zero")
    return errcode, fail_times


async def create_code(request: Request, state: SandboxState) -> Body:
    """What ``wx.login`` or the OAuth redirect hands the client: a one-time code."""
    body = await _body(request)
    app = _app(state, _str(body, "appid"))
    user = _str(body, "user")
    scope = _opt_str(body, "scope") or DEFAULT_SCOPE[app.kind]
    if app.kind != "miniprogram" and scope not in SCOPES:
        raise ControlError(400, f"scope must be one of {sorted(SCOPES)}")
    snapshot = _opt_bool(body, "snapshot")
    if snapshot and app.kind == "miniprogram":
        raise ControlError(400, "snapshot users exist only behind OAuth")
    errcode, fail_times = _failure(body)
    ttl = state.code_ttl(app.appid)
    code = Code(
        value=secrets.token_hex(16),
        appid=app.appid,
        user=user,
        expires_at=state.now() + ttl,
        scope="" if app.kind == "miniprogram" else scope,
        snapshot=snapshot,
        errcode=errcode,
        fail_times=fail_times,
    )
    state.mint_code(code)
    return {"code": code.value, "expires_in": int(ttl)}


async def create_phone_code(request: Request, state: SandboxState) -> Body:
    """What ``<button open-type="getPhoneNumber">`` hands a mini-program."""
    body = await _body(request)
    app = _app(state, _str(body, "appid"), ["miniprogram"])
    user, phone = _str(body, "user"), _str(body, "phone")
    country = _opt_str(body, "country_code") or "86"
    if not (phone.isascii() and phone.isdigit() and country.isascii() and country.isdigit()):
        raise ControlError(400, "phone and country_code must be digits")
    errcode, fail_times = _failure(body)
    code = Code(
        value=secrets.token_hex(32),
        appid=app.appid,
        user=user,
        expires_at=state.now() + state.code_ttl(app.appid),
        phone=(phone, country),
        errcode=errcode,
        fail_times=fail_times,
    )
    state.mint_code(code, phone=True)
    return {"code": code.value}


async def create_encrypted_data(request: Request, state: SandboxState) -> Body:
    """What ``wx.getUserInfo`` returns, sealed with the user's latest session_key."""
    body = await _body(request)
    app = _app(state, _str(body, "appid"), ["miniprogram"])
    user = _str(body, "user")
    anonymous = _opt_bool(body, "anonymous")
    openid = state.openid(app.appid, user)
    key = state.session_keys.get((app.appid, openid))
    if key is None:
        raise ControlError(409, f"{user} never logged in to {app.appid}")
    profile: Body = {
        "nickName": ANONYMOUS_NICKNAME if anonymous else user,
        "gender": 0,
        "language": "",
        "city": "",
        "province": "",
        "country": "",
        "avatarUrl": ANONYMOUS_AVATAR if anonymous else avatar_url(user),
    }
    raw_data = json.dumps(profile, ensure_ascii=False, separators=(",", ":"))
    payload: Body = {"openId": openid, **profile}
    unionid = state.unionid(app.appid, user)
    if unionid is not None:
        payload["unionId"] = unionid
    payload["watermark"] = {"timestamp": int(state.now()), "appid": app.appid}
    encrypted, iv = encrypt_open_data(key, payload)
    signature = raw_data_signature(raw_data, key)
    return {"encryptedData": encrypted, "iv": iv, "rawData": raw_data, "signature": signature}


async def identity(request: Request, state: SandboxState) -> Body:
    """The ids WeChat would give ``user`` in ``appid``, for asserting what the gateway stored."""
    query: Body = dict(request.query_params)
    app = _app(state, _str(query, "appid"))
    user = _str(query, "user")
    return {"openid": state.openid(app.appid, user), "unionid": state.unionid(app.appid, user)}


async def advance_clock(request: Request, state: SandboxState) -> Body:
    """Move the emulator's clock forward to expire codes and tokens without sleeping."""
    seconds = (await _body(request)).get("advance")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise ControlError(400, "advance must be a number of seconds >= 0")
    state.offset += seconds
    return {"now": state.now()}


async def weather(request: Request, state: SandboxState) -> Body:
    """WeChat having a bad minute: every WeChat call answers after ``latency_ms`` and a share
    ``failure_rate`` (0 to 1) of them fail with ``-1`` (system busy); both 0 is a good day."""
    body = await _body(request)
    latency = _number(body, "latency_ms", 60_000)
    state.latency, state.failure_rate = latency / 1000, _number(body, "failure_rate", 1)
    return {"latency_ms": latency, "failure_rate": state.failure_rate}


def _number(body: Body, name: str, top: float) -> float:
    value = body.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= top:
        raise ControlError(400, f"{name} must be a number from 0 to {top:g}")
    return float(value)


def control_routes(state: SandboxState, wechat_paths: Sequence[str]) -> list[Route]:
    """The ``/sandbox/`` endpoints; stats list every WeChat path, zero when never called."""

    async def stats(request: Request, state: SandboxState) -> Body:
        return {"calls": {path: state.calls[path] for path in wechat_paths}}

    async def reset_stats(request: Request, state: SandboxState) -> Body:
        state.calls.clear()
        return await stats(request, state)

    table: list[tuple[str, Handler, str]] = [
        ("/sandbox/codes", create_code, "POST"),
        ("/sandbox/phone-codes", create_phone_code, "POST"),
        ("/sandbox/encrypted-data", create_encrypted_data, "POST"),
        ("/sandbox/identity", identity, "GET"),
        ("/sandbox/clock", advance_clock, "POST"),
        ("/sandbox/weather", weather, "POST"),
        ("/sandbox/stats", stats, "GET"),
        ("/sandbox/reset-stats", reset_stats, "POST"),
    ]
    return [_route(state, path, handler, method) for path, handler, method in table]
