"""The provider in Debian's Chromium (Playwright) against a real `gateway serve`: a site sends
the browser to ``/oauth/authorize``, the person logs in on the hosted page and lands back on
the site with a code (the login form's CSP ``form-action`` lets its redirects end there:
Chromium checks every hop); a second site that is not first-party gets its code without a
login (single sign-on), after the consent page. The sites are answered by the test (a routed
response), so no request leaves the machine; a CSP violation would leave the browser on the
gateway instead. (See test_playground_browser.py for how the browser and server start.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from tests.support.passwords import CLIENT, GOOD_PASSWORD, REGISTER
from tests.test_playground_browser import (  # noqa: F401  (fixtures)
    TIMEOUT_MS,
    _serve,
    browser,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Route

SITE = "https://shop.example/callback"
FORUM = "https://forum.example/callback"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("oidc-browser")


@pytest.fixture(scope="module")
def gateway(browser: Browser, home: Path) -> Iterator[str]:  # noqa: F811
    yield from _serve(home, {})


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
        "scope": "openid profile", "state": "st-" + redirect[8:12], "nonce": "n1",
        "code_challenge": create_s256_code_challenge("v" * 43), "code_challenge_method": "S256",
    }  # fmt: skip
    return f"{base}/oauth/authorize?{urlencode(query)}"


def test_log_in_on_the_hosted_page_then_a_second_site_by_single_sign_on(
    gateway: str,
    home: Path,
    browser: Browser,  # noqa: F811
) -> None:
    shop = _add(home, "Shop", "--redirect-uri", SITE, "--public", "--first-party")
    forum = _add(home, "Forum", "--redirect-uri", FORUM, "--public")
    variables = {"username": "oidc-chrome", "password": GOOD_PASSWORD, "app": "shop-mp",
                 "client": CLIENT}  # fmt: skip
    answer = httpx.post(f"{gateway}/graphql", json={"query": REGISTER, "variables": variables})
    assert answer.json()["data"]["registerWithPassword"]["__typename"] == "LoginSuccess"
    context = browser.new_context(locale="en")
    landed: list[str] = []
    problems: list[str] = []

    def sites(route: Route) -> None:
        landed.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<p>the site</p>")

    context.route("https://*.example/**", sites)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    try:
        page.goto(_authorize_url(gateway, shop, SITE))
        assert urlsplit(page.url).path == "/login"
        page.fill("#username", "oidc-chrome")
        page.fill("#password", GOOD_PASSWORD)
        with page.expect_navigation(url=lambda url: url.startswith(SITE)):
            page.click("#panel-password button[type=submit]")
        returned = parse_qs(urlsplit(page.url).query)
        assert returned["state"] == ["st-shop"]
        assert returned["code"][0]
        page.goto(_authorize_url(gateway, forum, FORUM))  # no login page: single sign-on
        assert urlsplit(page.url).path == "/oauth/authorize"
        assert "Forum" in page.content()
        with page.expect_navigation(url=lambda url: url.startswith(FORUM)):
            page.click("button[value=allow]")
        assert parse_qs(urlsplit(page.url).query)["state"] == ["st-foru"]
    finally:
        context.close()
    assert [urlsplit(u).netloc for u in landed] == ["shop.example", "forum.example"]
    assert not [p for p in problems if "Content Security Policy" in p], problems
