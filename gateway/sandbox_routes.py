"""Sandbox-mode helpers on the gateway itself: mint a login code for a made-up user, play a
scan of a web-login code (``/sandbox/scan``), and a webhook receiver (``/sandbox/webhooks``)
with a demo partner whose events it receives.

Mounted only in sandbox mode, which only exists when no real app is configured.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections import deque
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from standardwebhooks import Webhook, WebhookVerificationError
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.addresses import client_address
from gateway.audit import ClientInfo
from gateway.config import AppConfig, GatewayConfig
from gateway.errors import GatewayError, InvalidInput
from gateway.partners import scopes
from gateway.partners.registry import RegistryError
from gateway.partners.webhooks import WebhookSecrets, new_webhook_secret
from gateway.store.secretbox import SealError
from gateway.web.pages import Pages
from gateway.wechat.sandbox import SandboxApp

log = logging.getLogger("gateway")

DEMO_PARTNER = "sandbox-partner"
DEMO_SECRET = "sandbox-partner-secret"  # sandbox only: a newcomer reads the feed with it too
SERVE_ORIGIN_ENV = "GATEWAY_SERVE_ORIGIN"
"""Set by ``gateway serve``: where this gateway answers, for the demo partner's webhook URL."""
KEPT = 50  # deliveries the receiver remembers (in memory: sandbox mode is one process)


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


async def scan(request: Request) -> Response:
    """``/sandbox/scan?scene=…&user=alice``: play a phone that scans a web-login code and
    confirms it: ``user`` logs in to the code's mini-program (a fresh sandbox code, as
    ``wx.login`` would give), looks at the request, then approves (``&approve=false``
    denies). Answers the login's state, or the typed error's code (409)."""
    svc = request.app.state.services
    scene, user = request.query_params.get("scene", ""), request.query_params.get("user", "")
    if not scene or not user:
        return JSONResponse({"error": "give ?scene=<the code's scene>&user=<any name>"}, 400)
    approve = request.query_params.get("approve", "true") not in ("0", "false", "no")
    client = ClientInfo(platform="sandbox", ip=client_address(request.scope))
    web = svc.api.web_logins
    try:
        key = await web.app_of_scene(scene)
        app = svc.config.app(key)
        minted = await svc.http.post("/sandbox/codes", json={"appid": app.appid, "user": user[:64]})
        outcome = await svc.api.wechat_login.login_by_code(key, minted.json()["code"], client)
        viewer = await svc.api.sessions.authenticate(outcome.tokens.access_token)
        await web.request(viewer, scene)
        await web.decide(viewer, scene, approve, client)
    except GatewayError as exc:
        return JSONResponse({"error": exc.code, "message": exc.message}, status_code=409)
    status = "APPROVED" if approve else "DENIED"
    return JSONResponse({"scene": scene, "user": user, "app": key, "status": status})


async def ensure_demo_partner(svc: Any, origin: str | None) -> None:
    """The demo partner (every demo app and the demo platform; client secret
    ``DEMO_SECRET``) with its webhook at this gateway's own receiver once ``origin`` is known,
    so a newcomer's first merge arrives signed within a minute. Its signing secret is made
    once and kept sealed, like any partner's."""
    partners = svc.partners
    if await partners.get(DEMO_PARTNER) is None:
        apps = [a.key for a in svc.config.apps]
        platforms = sorted({a.platform for a in svc.config.apps if a.platform})
        wanted = [scopes.LOOKUP, scopes.IDENTIFIERS, scopes.ALL_APPS]
        with contextlib.suppress(RegistryError):  # added meanwhile
            await partners.add(DEMO_PARTNER, apps, platforms, wanted, secret=DEMO_SECRET)
    view = await partners.get(DEMO_PARTNER)
    if origin is None or view is None or view.webhook_url:
        return
    url = f"{origin.rstrip('/')}/sandbox/webhooks/{DEMO_PARTNER}"
    sealed = await partners.webhook_secret(DEMO_PARTNER)
    if sealed is None:
        sealed = WebhookSecrets(svc.secrets.secret_key).seal(DEMO_PARTNER, new_webhook_secret())
    await partners.set_webhook(DEMO_PARTNER, url, sealed)
    log.warning("SANDBOX MODE: partner %r receives account events at %s", DEMO_PARTNER, url)


class Receiver:
    """``/sandbox/webhooks``: verifies each delivery's Standard Webhooks signature with the
    receiving partner's own secret, as a partner's receiver would, and keeps the last
    ``KEPT`` for the playground and for ``GET``."""

    def __init__(self) -> None:
        self.deliveries: deque[dict[str, Any]] = deque(maxlen=KEPT)

    async def receive(self, request: Request) -> Response:
        """POST: 204 when the signature verifies, 401 when it does not (kept either way)."""
        partner = request.path_params.get("partner", DEMO_PARTNER)
        body = await request.body()
        verified, problem = await _verify(request, partner, body)
        self.deliveries.appendleft(_delivery(request, partner, body, verified, problem))
        if not verified:
            return JSONResponse({"error": problem}, status_code=401)
        return Response(status_code=204)

    async def list(self, request: Request) -> Response:
        """GET: the deliveries, newest first. Asking also sets the demo partner's webhook URL
        from this request's origin if ``gateway serve`` did not say where it answers."""
        svc = request.app.state.services
        await ensure_demo_partner(svc, str(request.base_url))
        return JSONResponse({"partner": DEMO_PARTNER, "deliveries": list(self.deliveries)})


async def _verify(request: Request, partner: str, body: bytes) -> tuple[bool, str | None]:
    svc = request.app.state.services
    sealed = await svc.partners.webhook_secret(partner)
    if sealed is None:
        return False, f"partner {partner!r} has no webhook secret"
    try:
        secret = WebhookSecrets(svc.secrets.secret_key).open(partner, sealed)
        Webhook(secret).verify(body, dict(request.headers))
    except (SealError, WebhookVerificationError) as exc:
        return False, f"signature does not verify: {exc}"
    return True, None


def _delivery(
    request: Request, partner: str, body: bytes, verified: bool, problem: str | None
) -> dict[str, Any]:
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        parsed = body.decode(errors="replace")[:2000]
    return {
        "receivedAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "partner": partner,
        "webhookId": request.headers.get("webhook-id"),
        "webhookTimestamp": request.headers.get("webhook-timestamp"),
        "verified": verified,
        "problem": problem,
        "type": parsed.get("type") if isinstance(parsed, dict) else None,
        "body": parsed,
    }


def _open_app(request: Request, appid: str) -> AppConfig | None:
    """A browser-OAuth app of this sandbox by appid (website or official account)."""
    apps: tuple[AppConfig, ...] = request.app.state.services.config.apps
    return next((a for a in apps if a.appid == appid and a.kind.value != "miniprogram"), None)


def _back_home(request: Request, redirect_uri: str) -> bool:
    """The emulator sends codes to this gateway only (never an open redirect)."""
    pages: Pages = request.app.state.web.pages
    home = pages.origin(request) + "/"
    return redirect_uri.startswith(home) and len(redirect_uri) <= 1024


async def wechat_authorize(request: Request) -> Response:
    """``/sandbox/wechat-open/connect/{qrconnect,oauth2/authorize}``: WeChat's authorization
    page, played: a form naming the made-up user who scans or agrees."""
    pages: Pages = request.app.state.web.pages
    query = request.query_params
    app = _open_app(request, query.get("appid", ""))
    redirect_uri = query.get("redirect_uri", "")
    if app is None or not _back_home(request, redirect_uri):
        return pages.error(request, "Unknown app", "This way of logging in is not offered here.")
    context = {
        "app_name": app.name,
        "appid": app.appid,
        "redirect_uri": redirect_uri,
        "state": query.get("state", "")[:256],
        "scope": query.get("scope", "")[:64],
    }
    return pages.render(request, "sandbox_authorize.html", context)


async def wechat_authorized(request: Request) -> Response:
    """``POST /sandbox/wechat-open/authorize``: a code for the made-up user, and back to the
    gateway's callback with it and the state, as WeChat would."""
    pages: Pages = request.app.state.web.pages
    form = await request.form()
    if not pages.check_csrf(request, form):
        return pages.error(
            request,
            "Something went wrong",
            "This page has expired. Reload it and try again.",
            status=403,
        )
    fields = {k: v if isinstance(v, str) else "" for k, v in form.items()}
    app = _open_app(request, fields.get("appid", ""))
    redirect_uri, user = fields.get("redirect_uri", ""), fields.get("user", "").strip()[:64]
    if app is None or not user or not _back_home(request, redirect_uri):
        return pages.error(request, "Unknown app", "This way of logging in is not offered here.")
    extra = {"scope": fields["scope"]} if fields.get("scope") else {}
    http = request.app.state.services.http
    answer = await http.post("/sandbox/codes", json={"appid": app.appid, "user": user, **extra})
    if answer.status_code != 200:
        return pages.error(
            request, "WeChat login failed", "WeChat did not confirm the login. Try again."
        )
    query = urlencode({"code": answer.json()["code"], "state": fields.get("state", "")})
    joiner = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(f"{redirect_uri}{joiner}{query}", status_code=303)


def routes() -> list[BaseRoute]:
    receiver = Receiver()
    return [
        Route("/sandbox/code", mint_code, methods=["GET", "POST"]),
        Route("/sandbox/phone-code", phone_code, methods=["GET", "POST"]),
        Route("/sandbox/open-data", open_data, methods=["GET", "POST"]),
        Route("/sandbox/scan", scan, methods=["GET", "POST"]),
        Route("/sandbox/webhooks", receiver.list, methods=["GET"]),
        Route("/sandbox/webhooks", receiver.receive, methods=["POST"]),
        Route("/sandbox/webhooks/{partner}", receiver.receive, methods=["POST"]),
        Route("/sandbox/wechat-open/connect/qrconnect", wechat_authorize, methods=["GET"]),
        Route("/sandbox/wechat-open/connect/oauth2/authorize", wechat_authorize, methods=["GET"]),
        Route("/sandbox/wechat-open/authorize", wechat_authorized, methods=["POST"]),
    ]


async def sms_messages(request: Request) -> Response:
    """``GET /sandbox/sms?phone=…``: what the sandbox SMS provider sent to that number, the
    newest last (the code a person would read on their phone)."""
    from gateway import phones  # (only where the sandbox provider is in use)

    sent = request.app.state.services.sandbox_sms
    try:
        phone = phones.normalise(request.query_params.get("phone", ""))
    except InvalidInput:
        return JSONResponse({"error": "give ?phone=<a phone number>"}, status_code=400)
    messages = [
        {"phone": m.phone, "code": m.code, "text": m.text, "sentAt": m.sent_at}
        for m in sent.messages(phone)
    ]
    return JSONResponse({"phone": phone, "messages": messages})


def sms_routes() -> list[BaseRoute]:
    """Mounted whenever ``[sms] provider`` is the sandbox's, in sandbox mode or not."""
    return [Route("/sandbox/sms", sms_messages, methods=["GET"])]
