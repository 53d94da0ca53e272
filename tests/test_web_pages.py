"""The pages' shared frame (gateway.web.pages): headers, language, CSRF, the error page, the
origin. Through a small app of test routes on the real ``Pages`` (the hosted login page's
own tests are in test_web_login_page.py)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from gateway.config import GatewayConfig
from gateway.web import routes as web_routes
from gateway.web.origins import issuer, origin
from gateway.web.pages import CSRF_COOKIE, CSRF_FIELD, Pages
from tests.support.harness import MakeConfig
from tests.support.web import BASE, csrf_token


def _app(config: GatewayConfig) -> Starlette:
    pages = Pages(config, "test-secret-key-0123456789-abcdefghijkl")

    async def page(request: Request) -> Response:
        return pages.render(
            request,
            "logout.html",
            {},
            form_origins=request.query_params.getlist("form"),
        )

    async def post(request: Request) -> Response:
        form = await request.form()
        return PlainTextResponse("ok" if pages.check_csrf(request, form) else "refused")

    async def failed(request: Request) -> Response:
        return pages.error(request, "Unknown app", "This way of logging in is not offered here.")

    async def where(request: Request) -> Response:
        return PlainTextResponse(f"{origin(request, config)} {issuer(request, config)}")

    return Starlette(
        routes=[
            Route("/page", page),
            Route("/post", post, methods=["POST"]),
            Route("/failed", failed),
            Route("/where", where),
            *web_routes.routes(),
        ]
    )


@pytest.fixture
async def client(make_config: MakeConfig, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    config = make_config(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}")
    transport = httpx.ASGITransport(app=_app(config))
    async with httpx.AsyncClient(base_url=BASE, transport=transport) as c:
        yield c


async def test_every_page_carries_a_strict_csp_and_its_security_headers(
    client: httpx.AsyncClient,
) -> None:
    first = await client.get("/page", params={"form": ["https://shop.example", "bad; x"]})
    second = await client.get("/page")
    csp = first.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce is not None
    assert csp == (
        f"default-src 'none'; script-src 'nonce-{nonce.group(1)}'; "
        f"style-src 'self' 'nonce-{nonce.group(1)}'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'; "
        "form-action 'self' https://shop.example"
    )
    assert "unsafe" not in csp
    assert second.headers["content-security-policy"] != csp  # a nonce per response
    assert second.headers["content-security-policy"].endswith("form-action 'self'")
    for response in (first, second):
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["cache-control"] == "no-store"


async def test_the_stylesheet_comes_from_the_gateway_and_nothing_from_elsewhere(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/page")).text
    urls = re.findall(r'(?:href|src)="([^"]+)"', body)
    assert urls
    assert all(u.startswith(("/", "?")) and not u.startswith("//") for u in urls)
    (css,) = re.findall(r'<link rel="stylesheet" href="([^"]+)"', body)
    sheet = await client.get(css)
    assert sheet.status_code == 200
    assert sheet.headers["content-type"].startswith("text/css")
    assert "immutable" in sheet.headers["cache-control"]
    assert (await client.get("/web/static/web-000000000000.css")).status_code == 404


async def test_the_language_is_english_by_default_chinese_by_header_and_switchable(
    client: httpx.AsyncClient,
) -> None:
    default = await client.get("/page")
    assert '<html lang="en">' in default.text
    assert "Log out" in default.text
    chinese = await client.get("/page", headers={"accept-language": "zh-CN,zh;q=0.9"})
    assert '<html lang="zh-CN">' in chinese.text
    assert "退出登录" in chinese.text
    switched = await client.get("/page", params={"lang": "zh-CN"})
    assert '<html lang="zh-CN">' in switched.text
    assert "gw_lang=zh-CN" in switched.headers["set-cookie"]
    remembered = await client.get("/page", headers={"accept-language": "en"})
    assert '<html lang="zh-CN">' in remembered.text  # the switch outranks the header
    assert 'href="/page?lang=en"' in remembered.text


async def test_a_form_post_needs_the_cookie_the_field_and_no_foreign_origin(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/page")
    set_cookie = page.headers["set-cookie"]
    assert f"{CSRF_COOKIE}=" in set_cookie
    assert all(a in set_cookie.lower() for a in ("httponly", "samesite=lax", "secure"))
    token = csrf_token(page.text)
    ok = await client.post("/post", data={CSRF_FIELD: token}, headers={"origin": BASE})
    assert ok.text == "ok"
    assert (await client.post("/post", data={CSRF_FIELD: token})).text == "ok"  # no Origin sent
    refused = [
        await client.post("/post", data={CSRF_FIELD: token}, headers={"origin": "https://evil"}),
        await client.post("/post", data={CSRF_FIELD: token}, headers={"origin": "null"}),
        await client.post(
            "/post",
            data={CSRF_FIELD: token},
            headers={"origin": "null", "sec-fetch-site": "same-site"},
        ),
        await client.post(
            "/post", data={CSRF_FIELD: token}, headers={"sec-fetch-site": "cross-site"}
        ),
        await client.post("/post", data={CSRF_FIELD: "0" * 64}),
        await client.post("/post", data={}),
    ]
    assert [r.text for r in refused] == ["refused"] * 6
    vouched = {"origin": "null", "sec-fetch-site": "same-origin"}  # a page of ours, no referrer
    assert (await client.post("/post", data={CSRF_FIELD: token}, headers=vouched)).text == "ok"
    client.cookies.clear()  # replayed without the page's cookies
    assert (await client.post("/post", data={CSRF_FIELD: token})).text == "refused"


async def test_the_error_page_never_redirects(client: httpx.AsyncClient) -> None:
    response = await client.get("/failed")
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "This way of logging in is not offered here." in response.text
    chinese = await client.get("/failed", headers={"accept-language": "zh-CN"})
    assert "此处不提供这种登录方式。" in chinese.text


async def test_the_origin_is_where_the_gateway_is_reached_unless_configured(
    client: httpx.AsyncClient, make_config: MakeConfig, tmp_path: Path
) -> None:
    assert (await client.get("/where")).text == f"{BASE} {BASE}"
    other = await client.get("http://127.0.0.1:8080/where")
    assert other.text == "http://127.0.0.1:8080 http://127.0.0.1:8080"
    toml = tmp_path / "gateway.toml"
    toml.write_text(toml.read_text() + '\n[web]\nissuer = "https://id.example.com/"\n')
    config = make_config(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}")
    assert config.web.issuer == "https://id.example.com"
    assert config.web.session_days == 7
    transport = httpx.ASGITransport(app=_app(config))
    async with httpx.AsyncClient(base_url=BASE, transport=transport) as configured:
        answer = await configured.get("/where")
    assert answer.text == "https://id.example.com https://id.example.com"


def _catalogue(locale: str) -> dict[str, str]:
    from babel.messages.pofile import read_po

    from gateway import i18n

    with i18n.catalogue_path(locale, "web").open("rb") as fh:
        return {str(m.id): str(m.string) for m in read_po(fh) if m.id}


def test_every_message_the_pages_show_is_in_both_catalogues() -> None:
    import gateway.web
    from gateway.web import login

    root = Path(gateway.web.__file__).parent
    shown = set()
    for template in (root / "templates").glob("*.html"):
        if template.name.startswith("oidc_"):
            continue  # the provider's pages: the oidc catalogue (tests/test_oidc_flow.py)
        shown |= set(re.findall(r'_\("([^"]+)"\)', template.read_text(encoding="utf-8")))
    sources = [*root.glob("*.py"), root.parent / "sandbox_routes.py"]
    for source in sources:
        text = source.read_text(encoding="utf-8")
        for call in re.findall(r"error\(\s*request,\s*((?:\"[^\"]+\",?\s*){1,2})", text):
            shown |= set(re.findall(r'"([^"]+)"', call))
    shown |= {message for _, message in login._FAILURES.values()} | {login._UNAVAILABLE[1]}
    chinese, english = _catalogue("zh-CN"), _catalogue("en")
    assert len(shown) > 30
    assert shown <= set(chinese), shown - set(chinese)
    assert set(chinese) == set(english)
    assert all(chinese.values())
    assert all(english[k] == k for k in english)
