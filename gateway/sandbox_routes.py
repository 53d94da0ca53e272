"""Sandbox-mode helpers on the gateway itself: mint a login code for a made-up user.

Mounted only in sandbox mode, which only exists when no real app is configured.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.config import GatewayConfig
from gateway.wechat.sandbox import SandboxApp


def emulated_apps(config: GatewayConfig) -> list[SandboxApp]:
    return [
        SandboxApp(
            appid=a.appid,
            secret=a.secret.get_secret_value(),
            kind=a.kind.value,
            platform=a.platform,
        )
        for a in config.apps
    ]


async def _forward(request: Request, path: str, extra: dict[str, object]) -> Response:
    """Resolve ``?app=`` and ``?user=``, then ask the emulator's control endpoint at ``path``."""
    svc = request.app.state.services  # config, and the http client to the emulator
    key = request.query_params.get("app", "")
    user = request.query_params.get("user", "")
    app = svc.config.app(key)
    if app is None or not user:
        keys = ", ".join(a.key for a in svc.config.apps)
        return JSONResponse(
            {"error": f"give ?app=<one of {keys}>&user=<any name>"}, status_code=400
        )
    answer = await svc.http.post(path, json={"appid": app.appid, "user": user[:64], **extra})
    return JSONResponse({"app": key, "user": user, **answer.json()}, status_code=answer.status_code)


async def mint_code(request: Request) -> Response:
    """``/sandbox/code?app=shop-mp&user=alice``: a one-time wx.login (or OAuth) code.
    Optional: ``scope=snsapi_userinfo``, ``snapshot=1``, ``errcode=40226`` (WeChat will refuse
    the code with that errcode)."""
    extra: dict[str, object] = {}
    if "scope" in request.query_params:
        extra["scope"] = request.query_params["scope"]
    if request.query_params.get("snapshot") in ("1", "true"):
        extra["snapshot"] = True
    errcode = request.query_params.get("errcode", "")
    if errcode:
        if not re.fullmatch(r"-?[0-9]{1,9}", errcode):
            return JSONResponse({"error": "errcode must be a number"}, status_code=400)
        extra["errcode"] = int(errcode)
    return await _forward(request, "/sandbox/codes", extra)


async def phone_code(request: Request) -> Response:
    """``/sandbox/phone-code?app=shop-mp&user=alice&phone=13800138000``: for bindPhoneNumber."""
    phone = request.query_params.get("phone", "13800138000")
    if not re.fullmatch(r"[0-9]{5,15}", phone):
        return JSONResponse({"error": "phone must be digits"}, status_code=400)
    return await _forward(request, "/sandbox/phone-codes", {"phone": phone})


async def open_data(request: Request) -> Response:
    """``/sandbox/open-data?app=shop-mp&user=alice``: what wx.getUserInfo gives, for bindUnionId
    (log the user in first: the data is sealed with their latest session_key)."""
    return await _forward(request, "/sandbox/encrypted-data", {})


def routes() -> list[BaseRoute]:
    return [
        Route("/sandbox/code", mint_code, methods=["GET", "POST"]),
        Route("/sandbox/phone-code", phone_code, methods=["GET", "POST"]),
        Route("/sandbox/open-data", open_data, methods=["GET", "POST"]),
    ]
