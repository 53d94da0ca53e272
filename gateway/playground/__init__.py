"""The playground: GraphiQL served from this package, no CDN, with a sandbox panel.

Every file the page loads comes from ``/playground/assets/...``: the npm files pinned in
``assets/MANIFEST.json`` under ``<package>@<version>/``, and our own ``static/`` files under
``gateway-<content hash>/``. A URL's content never changes, so assets are cached for a year
(``immutable``). The page itself carries a Content-Security-Policy that allows the gateway's
own origin only; its one exception, a per-request nonce for ``<style>`` elements, is for the
style tags GraphiQL's dialogs add at run time (they read it from ``__webpack_nonce__``).
"""

from __future__ import annotations

import gzip
import hashlib
import html
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.playground.manifest import vendor_files

STATIC = Path(__file__).parent / "static"
ASSETS_PATH = "/playground/assets"
IMMUTABLE = "public, max-age=31536000, immutable"
_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
}


@dataclass(frozen=True)
class DemoApp:
    key: str
    kind: str
    name: str


@dataclass(frozen=True)
class _Asset:
    path: Path
    load: str | None

    @property
    def media_type(self) -> str:
        return _MEDIA_TYPES.get(self.path.suffix, "text/plain; charset=utf-8")


@cache
def _assets() -> dict[str, _Asset]:
    """URL path below ``ASSETS_PATH`` -> file, in load order (vendor files, then ours)."""
    table = {f.url_path: _Asset(f.path, f.load) for f in vendor_files()}
    for name, load in (("playground.css", "style"), ("playground.js", "script")):
        path = STATIC / name
        version = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        table[f"gateway-{version}/{name}"] = _Asset(path, load)
    return table


@cache
def _body(url_path: str, gzipped: bool) -> bytes:
    data = _assets()[url_path].path.read_bytes()
    return gzip.compress(data, compresslevel=6, mtime=0) if gzipped else data


async def asset(request: Request) -> Response:
    url_path = request.path_params["path"]
    found = _assets().get(url_path)
    if found is None:
        return PlainTextResponse("Not Found", status_code=404)
    gzipped = "gzip" in request.headers.get("accept-encoding", "")
    headers = {
        "cache-control": IMMUTABLE,
        "x-content-type-options": "nosniff",
        "vary": "accept-encoding",
    }
    if gzipped:
        headers["content-encoding"] = "gzip"
    return Response(_body(url_path, gzipped), media_type=found.media_type, headers=headers)


def routes() -> list[BaseRoute]:
    return [Route(ASSETS_PATH + "/{path:path}", asset, methods=["GET", "HEAD"])]


def content_security_policy(nonce: str) -> str:
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            f"style-src 'self' 'nonce-{nonce}'",
            "font-src 'self' data:",  # GraphiQL's stylesheet embeds its fonts as data: URLs
            "img-src 'self' data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def page(request: Request, sandbox_apps: Sequence[DemoApp] | None) -> Response:
    """The playground's HTML; ``sandbox_apps`` (sandbox mode only) adds the sandbox panel."""
    root = request.scope.get("root_path", "")
    esc = html.escape
    nonce = secrets.token_urlsafe(18)
    links, scripts = _asset_tags(root)
    panel = _panel(request, sandbox_apps) if sandbox_apps is not None else ""
    endpoint = esc(f"{root}{request.url.path}")
    sandbox = f' data-sandbox="{esc(root)}/sandbox"' if sandbox_apps is not None else ""
    body = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csp-nonce" content="{nonce}">
<title>GraphiQL · WeChat identity gateway</title>
<link rel="icon" href="data:,">
{links}
</head>
<body>
<div id="playground">
{panel}<div id="graphiql" data-endpoint="{endpoint}"{sandbox}>Loading the playground…</div>
</div>
{scripts}
</body>
</html>
"""
    return Response(body, media_type="text/html", headers=_page_headers(nonce))


def _asset_tags(root: str) -> tuple[str, str]:
    """The built GraphiQL's ``<link>`` tags for the head and ``<script>`` tags for the end of
    the body, one a line, in the manifest's order."""
    links, scripts = [], []
    for url_path, found in _assets().items():
        url = html.escape(f"{root}{ASSETS_PATH}/{url_path}")
        if found.load == "style":
            links.append(f'<link rel="stylesheet" href="{url}">')
        elif found.load == "script":
            scripts.append(f'<script src="{url}"></script>')
    return "\n".join(links), "\n".join(scripts)


def _page_headers(nonce: str) -> dict[str, str]:
    """Never cached, never sniffed, no referrer, and only its own scripts (the CSP)."""
    return {
        "content-security-policy": content_security_policy(nonce),
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
    }


_BUTTONS = (
    ("pg-login", "Log in", "mint a code, run loginByCode, set the Authorization header"),
    ("pg-refresh", "Refresh token", "rotate the tokens with refreshToken"),
    ("pg-open-data", "Open data", "wx.getUserInfo data for the BindUnionId tab"),
    ("pg-phone", "Phone code", "a getPhoneNumber code for the BindPhoneNumber tab"),
    ("pg-sms", "SMS code", "requestSmsCode for 13800138000, then its code for LoginBySmsCode"),
    ("pg-oauth", "OAuth code", "an OAuth code and its state (authorizationUrl) for LoginByCode"),
    ("pg-scan", "Scan", "startWebLogin's code, scanned and confirmed by the user, then the login"),
)


def _panel(request: Request, apps: Sequence[DemoApp]) -> str:
    esc = html.escape
    options = "".join(
        f'<option value="{esc(a.key)}" data-kind="{esc(a.kind)}">{esc(a.key)} ({esc(a.name)})'
        "</option>"
        for a in apps
    )
    curl = f'curl -X POST "{request.base_url}sandbox/code?app=shop-mp&user=alice"'
    buttons = "\n".join(
        f'<button type="button" id="{id_}" title="{esc(title)}">{esc(label)}</button>'
        for id_, label, title in _BUTTONS
    )
    return f"""<section id="sandbox-panel" aria-label="sandbox">
<strong class="pg-badge">SANDBOX MODE</strong>
<span class="pg-note">WeChat is emulated: log a made-up user in.</span>
<label>app <select id="pg-app">{options}</select></label>
<label>user <input id="pg-user" value="alice" maxlength="64" autocomplete="off"></label>
{buttons}
<output id="pg-status" aria-live="polite">Pick an app, type any user name, press Log in.</output>
<img id="pg-scan-code" hidden alt="">
<details class="pg-terminal"><summary>terminal</summary>
Mint a login code: <code>{esc(curl)}</code>, then run <code>loginByCode</code>.</details>
{_WEBHOOKS}</section>
"""


# Filled by playground.js from GET /sandbox/webhooks (the sandbox's own receiver).
_WEBHOOKS = """<details id="pg-webhooks" class="pg-webhooks">
<summary>webhooks (<span id="pg-webhook-count">0</span>)</summary>
<span class="pg-note">Partner <code>sandbox-partner</code> receives account events at
<code>/sandbox/webhooks</code>; each delivery is checked with its Standard Webhooks signature.
Log one user in to two demo mini-programs of one platform: an <code>account.merged</code> arrives.
</span>
<ol id="pg-deliveries" reversed></ol>
</details>
"""
