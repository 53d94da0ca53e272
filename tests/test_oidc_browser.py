"""The provider in Debian's Chromium (Playwright) against a real `gateway serve`: a site sends
the browser to ``/oauth/authorize``, the person logs in on the hosted page and lands back on
the site with a code (the login form's CSP ``form-action`` lets its redirects end there:
Chromium checks every hop); a second site that is not first-party gets its code without a
login (single sign-on), after the consent page. The sites are a local HTTP server of the
test's; a CSP violation would leave the browser on the gateway instead. (See
tests/support/browser.py for how the browser and the server start.)"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from gateway.web.context import WebServices
from tests.support.browser import TIMEOUT_MS
from tests.support.passwords import CLIENT, GOOD_PASSWORD, REGISTER

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.skipif(
    "redirect_origins" not in {f.name for f in dataclasses.fields(WebServices)},
    reason="needs the login page's form-action hook (gateway.web.context.WebServices)",
)


class _Site(BaseHTTPRequestHandler):
    """The two sites' callbacks: a page, and the paths that reached it."""

    landed: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.landed.append(self.path)
        body = b"<!doctype html><p>the site</p>"
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def _add(home: Path, *args: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "clients", "add", *args],
        env=env, cwd=home, capture_output=True, text=True, check=True,
    )  # fmt: skip
    added: dict[str, Any] = json.loads(done.stdout)
    return added


def _authorize_url(base: str, client: dict[str, Any], redirect: str) -> str:
    query = {
        "response_type": "code", "client_id": client["client_id"], "redirect_uri": redirect,
        "scope": "openid profile", "state": "st-" + urlsplit(redirect).path.split("/")[1],
        "nonce": "n1",
        "code_challenge": create_s256_code_challenge("v" * 43), "code_challenge_method": "S256",
    }  # fmt: skip
    return f"{base}/oauth/authorize?{urlencode(query)}"


def test_log_in_on_the_hosted_page_then_a_second_site_by_single_sign_on(
    sandbox_gateway: str,
    sandbox_home: Path,
    site: str,
    browser: Browser,
) -> None:
    shop_uri, forum_uri = f"{site}/shop/callback", f"{site}/forum/callback"
    shop = _add(sandbox_home, "Shop", "--redirect-uri", shop_uri, "--public", "--first-party")
    forum = _add(sandbox_home, "Forum", "--redirect-uri", forum_uri, "--public")
    variables = {"username": "oidc-chrome", "password": GOOD_PASSWORD, "app": "shop-mp",
                 "client": CLIENT}  # fmt: skip
    answer = httpx.post(
        f"{sandbox_gateway}/graphql", json={"query": REGISTER, "variables": variables}
    )
    assert answer.json()["data"]["registerWithPassword"]["__typename"] == "LoginSuccess"
    context = browser.new_context(locale="en")
    problems: list[str] = []
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    try:
        page.goto(_authorize_url(sandbox_gateway, shop, shop_uri))
        assert urlsplit(page.url).path == "/login"
        page.fill("#username", "oidc-chrome")
        page.fill("#password", GOOD_PASSWORD)
        with page.expect_navigation(url=lambda url: url.startswith(shop_uri)):
            page.click("#panel-password button[type=submit]")
        returned = parse_qs(urlsplit(page.url).query)
        assert returned["state"] == ["st-shop"]
        assert returned["code"][0]
        page.goto(
            _authorize_url(sandbox_gateway, forum, forum_uri)
        )  # no login page: single sign-on
        assert urlsplit(page.url).path == "/oauth/authorize"
        assert "Forum" in page.content()
        with page.expect_navigation(url=lambda url: url.startswith(forum_uri)):
            page.click("button[value=allow]")
        assert parse_qs(urlsplit(page.url).query)["state"] == ["st-forum"]
    finally:
        context.close()
    callbacks = [urlsplit(p).path for p in _Site.landed if "callback" in p]
    assert callbacks == ["/shop/callback", "/forum/callback"]
    assert not [p for p in problems if "Content Security Policy" in p], problems
