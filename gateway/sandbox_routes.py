"""Sandbox-mode helpers on the gateway itself: mint a login code for a made-up user.

Mounted only in sandbox mode, which only exists when no real app is configured.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.bootstrap import Services
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


async def mint_code(request: Request) -> Response:
    """``/sandbox/code?app=shop-mp&user=alice``: a one-time wx.login code for that user."""
    svc: Services = request.app.state.services
    key = request.query_params.get("app", "")
    user = request.query_params.get("user", "")
    app = svc.config.app(key)
    if app is None or not user:
        keys = ", ".join(a.key for a in svc.config.apps)
        return JSONResponse(
            {"error": f"give ?app=<one of {keys}>&user=<any name>"}, status_code=400
        )
    body: dict[str, object] = {"appid": app.appid, "user": user[:64]}
    if "scope" in request.query_params:
        body["scope"] = request.query_params["scope"]
    errcode = request.query_params.get("errcode", "")
    if errcode:
        if not re.fullmatch(r"-?[0-9]{1,9}", errcode):
            return JSONResponse({"error": "errcode must be a number"}, status_code=400)
        body["errcode"] = int(errcode)
    answer = await svc.http.post("/sandbox/codes", json=body)
    minted = answer.json()
    return JSONResponse({"app": key, "user": user, **minted}, status_code=answer.status_code)


def routes() -> list[BaseRoute]:
    return [Route("/sandbox/code", mint_code, methods=["GET", "POST"])]
