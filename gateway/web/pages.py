"""What every page the gateway serves shares: templates, the language, the CSP, CSRF.

- **Templates**: Jinja2 with autoescape on, over ``templates/`` (``base.html`` is the frame
  every page extends). A template gets ``_`` (gettext in the request's locale: the page's
  catalogue domain first, then ``web``), ``locale``, ``csp_nonce``, ``csrf_token``,
  ``lang_urls`` (this page in each language) and ``stylesheet`` (the gateway's own CSS).
- **Language**: ``?lang=zh-CN|en`` (remembered in a cookie), else that cookie, else
  ``Accept-Language`` (``gateway.i18n.negotiate``), else the default locale.
- **CSP**: nothing from another origin and no inline script without this response's nonce;
  ``frame-ancestors 'none'``. ``form_origins``: the origins a form's POST may end up at
  through a redirect (Chromium applies ``form-action`` to the redirect after a form POST).
- **CSRF**: a random HttpOnly cookie and, in each form, an HMAC of it; a POST must carry
  both, and an ``Origin`` header (when sent) naming this gateway, and must not say
  ``Sec-Fetch-Site: cross-site``. A POST replayed without the page's cookies, or from a
  foreign origin, is refused.

Jinja2 is imported, and its environment built, by the first page rendered: most serving
processes answer GraphQL only and keep its ~1.9 MiB (issue 29). The first page already
compiles its templates; the import adds ~15 ms to it, once per process.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from gateway import i18n
from gateway.config import GatewayConfig
from gateway.web.origins import origin, same_origin

if TYPE_CHECKING:
    import jinja2

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
STATIC_PATH = "/web/static"
CSRF_COOKIE = "gw_csrf"
CSRF_FIELD = "csrf_token"
LANG_COOKIE = "gw_lang"
LANG_MAX_AGE = 365 * 24 * 3600
REFERRER_POLICY = "same-origin"
"""No URL of these pages (an authorization's parameters) reaches another origin. Not
``same-origin``: under it browsers send ``Origin: null`` with the pages' own form POSTs, and
the CSRF check could no longer tell them from a sandboxed frame elsewhere."""
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+$")


class Pages:
    """The page renderer the web routes share (built once, in the composition root)."""

    def __init__(
        self, config: GatewayConfig, secret_key: str, *, default_locale: str = i18n.DEFAULT_LOCALE
    ) -> None:
        self.config = config
        self.default_locale = default_locale
        self._csrf_key = hmac.new(secret_key.encode(), b"gateway web csrf", "sha256").digest()

    @functools.cached_property
    def _env(self) -> jinja2.Environment:
        import jinja2

        return jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    @property
    def secure_cookies(self) -> bool:
        """Secure cookies everywhere but in sandbox mode (browsers keep Secure cookies from
        plain-http loopback too, so a local gateway with real apps still gets them)."""
        return not self.config.sandbox

    def origin(self, request: Request) -> str:
        return origin(request, self.config)

    # -- language -------------------------------------------------------------------------
    def locale(self, request: Request) -> str:
        """The asked-for language (query, then cookie), else ``Accept-Language``'s best."""
        for asked in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
            if asked in i18n.LOCALES:
                return asked
        return i18n.negotiate(request.headers.get("accept-language"), self.default_locale)

    def gettext(self, locale: str, domain: str = "web") -> Any:
        """``_`` for templates and routes: ``domain``'s catalogue, then ``web``'s."""

        def translate(message: str) -> str:
            text = i18n.gettext(locale, domain, message)
            if text == message and domain != "web":
                return i18n.gettext(locale, "web", message)
            return text

        return translate

    # -- CSRF -----------------------------------------------------------------------------
    def _csrf_cookie(self, request: Request) -> str | None:
        value = request.cookies.get(CSRF_COOKIE, "")
        return value if _TOKEN.match(value) else None

    def _derive(self, cookie: str) -> str:
        return hmac.new(self._csrf_key, cookie.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, request: Request, form: Mapping[str, Any]) -> bool:
        """A form POST from one of this gateway's pages in this browser: the cookie and the
        field match, and the browser does not say it came from another site."""
        site = request.headers.get("sec-fetch-site")
        if site == "cross-site":
            return False
        sent_origin = request.headers.get("origin")
        if sent_origin == "null" and site == "same-origin":
            sent_origin = None  # the browser vouches for it: a page of ours with no referrer
        if sent_origin is not None and not same_origin(sent_origin, self.origin(request)):
            return False
        cookie, field = self._csrf_cookie(request), form.get(CSRF_FIELD)
        if cookie is None or not isinstance(field, str) or len(field) != 64:
            return False
        return hmac.compare_digest(field.encode(), self._derive(cookie).encode())

    # -- rendering ------------------------------------------------------------------------
    def render(
        self,
        request: Request,
        template: str,
        context: Mapping[str, Any] | None = None,
        *,
        status: int = 200,
        domain: str = "web",
        form_origins: Iterable[str] = (),
    ) -> HTMLResponse:
        """``template`` as a page of this request's language, with its security headers."""
        locale = self.locale(request)
        nonce = secrets.token_urlsafe(18)
        cookie = self._csrf_cookie(request)
        fresh = cookie is None
        cookie = cookie or secrets.token_urlsafe(32)
        body = self._env.get_template(template).render(
            {
                **(context or {}),
                "_": self.gettext(locale, domain),
                "locale": locale,
                "csp_nonce": nonce,
                "csrf_field": CSRF_FIELD,
                "csrf_token": self._derive(cookie),
                "lang_urls": self._lang_urls(request),
                "stylesheet": f"{STATIC_PATH}/{stylesheet_name()}",
            }
        )
        response = HTMLResponse(body, status_code=status)
        self._secure(response, nonce, form_origins)
        if fresh:
            self._set_cookie(response, CSRF_COOKIE, cookie, max_age=None)
        if request.query_params.get("lang") in i18n.LOCALES:
            self._set_cookie(response, LANG_COOKIE, locale, max_age=LANG_MAX_AGE)
        return response

    def error(
        self, request: Request, title: str, detail: str, status: int = 400, *, domain: str = "web"
    ) -> HTMLResponse:
        """An error page (``title`` and ``detail``: English message ids, shown translated).
        Never a redirect: an unknown client or redirect URI must not send the browser on."""
        context = {"title": title, "detail": detail}
        return self.render(request, "error.html", context, status=status, domain=domain)

    def _lang_urls(self, request: Request) -> dict[str, str]:
        """This page in each language: its query with ``lang`` replaced (a GET's own URL)."""
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
        return {
            locale: f"{request.url.path}?{urlencode([*query, ('lang', locale)])}"
            for locale in i18n.LOCALES
        }

    @staticmethod
    def _secure(response: Response, nonce: str, form_origins: Iterable[str]) -> None:
        forms = " ".join(o for o in dict.fromkeys(form_origins) if _ORIGIN.match(o))
        response.headers["content-security-policy"] = (
            f"default-src 'none'; script-src 'nonce-{nonce}'; "
            f"style-src 'self' 'nonce-{nonce}'; img-src 'self' data:; connect-src 'self'; "
            f"base-uri 'none'; frame-ancestors 'none'; form-action 'self'{' ' if forms else ''}"
            f"{forms}"
        )
        response.headers["x-frame-options"] = "DENY"
        response.headers["x-content-type-options"] = "nosniff"
        response.headers["referrer-policy"] = REFERRER_POLICY
        response.headers["cache-control"] = "no-store"

    def _set_cookie(self, response: Response, name: str, value: str, max_age: int | None) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            httponly=True,
            samesite="lax",
            secure=self.secure_cookies,
        )


def stylesheet_name() -> str:
    """``web-<content hash>.css``: a URL whose content never changes, cached for a year."""
    return _stylesheet()[0]


@functools.cache
def _stylesheet() -> tuple[str, bytes]:
    data = (STATIC / "web.css").read_bytes()
    return f"web-{hashlib.sha256(data).hexdigest()[:12]}.css", data


async def stylesheet(request: Request) -> Response:
    """``/web/static/web-<hash>.css``; any other name is not found."""
    name, data = _stylesheet()
    if request.path_params.get("name") != name:
        return Response("Not Found", status_code=404, media_type="text/plain")
    headers = {
        "cache-control": "public, max-age=31536000, immutable",
        "x-content-type-options": "nosniff",
    }
    return Response(data, media_type="text/css; charset=utf-8", headers=headers)
