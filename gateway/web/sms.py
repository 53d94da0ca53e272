"""The hosted page's phone tab (when ``config.sms_provider`` is set): a number, "send code",
the 6-digit code, "log in" -- one plain form with two buttons, so no script is needed.

``POST /login/sms/code`` sends a LOGIN code through the use case ``requestSmsCode`` uses
(``SmsCodes.request``: its limits, its same answer whether an account holds the number or
not); ``POST /login/sms`` redeems it through ``loginBySmsCode``'s rules (``SmsLogin.check``:
sign-up as ``[sms] signup`` says, refusals audited) into a browser session, amr ``sms``, and a
303 to ``next``. Both are CSRF-checked before anything else; every typed failure is a message
on the page (in the page's language, from the ``errors`` catalogue), never a 5xx.
"""

from __future__ import annotations

import math
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway import i18n
from gateway.accounts.model import AccountGone
from gateway.errors import (
    AccountDisabled,
    GatewayError,
    InvalidCode,
    InvalidCredentials,
    InvalidInput,
    RateLimited,
    UpstreamUnavailable,
)
from gateway.sms.codes import Purpose
from gateway.sms.service import WRONG_CODE
from gateway.web.browser import browser_client
from gateway.web.context import WebServices, web_services
from gateway.web.login import DONE, EXPIRED, login_form, safe_next, sms_offered

AMR = "sms"
TAB = "sms"  # ``/login?method=sms``: the page opened on this tab
SENT = "If the number can receive SMS, a code is on its way."
_STATUS: dict[type[GatewayError], int] = {
    InvalidInput: 400,
    InvalidCode: 401,
    InvalidCredentials: 401,
    AccountDisabled: 403,
    RateLimited: 429,
    UpstreamUnavailable: 503,
}
_UNAVAILABLE = "Log-in is temporarily unavailable. Try again in a moment."


async def send_code(request: Request) -> Response:
    """``POST /login/sms/code`` (``phone``, ``next``, the CSRF field)."""
    web = web_services(request)
    form = await request.form()
    if not web.pages.check_csrf(request, form):
        return web.pages.error(request, "Something went wrong", EXPIRED, status=403)
    target, phone = _fields(form)
    if not sms_offered(web) or web.sms is None:
        return _unknown(request, web)
    try:
        locale = web.pages.locale(request)
        await web.sms.request(None, phone, Purpose.LOGIN, browser_client(request), None, locale)
    except GatewayError as exc:
        return _failed(request, web, target, phone, exc)
    return login_form(request, web, target, tab=TAB, phone=phone, notice=SENT, sent=True)


async def log_in(request: Request) -> Response:
    """``POST /login/sms`` (``phone``, ``code``, ``next``, the CSRF field)."""
    web = web_services(request)
    form = await request.form()
    if not web.pages.check_csrf(request, form):
        return web.pages.error(request, "Something went wrong", EXPIRED, status=403)
    target, phone = _fields(form)
    code = _text(form.get("code")).strip()
    if not sms_offered(web) or web.sms_login is None:
        return _unknown(request, web)
    client = browser_client(request)
    response = RedirectResponse(target or DONE, status_code=303)
    try:
        if not phone:
            raise InvalidInput("phone", "%(name)s is not a phone number.", name="phone")
        found = await web.sms_login.check(phone, code, client)
        await web.browser.start(
            response, found.account_id, [AMR], client, request=request, door=AMR
        )
    except AccountGone:  # erased since the code was redeemed: the number is free again
        return _failed(request, web, target, phone, InvalidCode(WRONG_CODE), sent=True)
    except GatewayError as exc:
        return _failed(request, web, target, phone, exc, sent=True)
    return response


async def to_tab(request: Request) -> Response:
    """``GET /login/sms[/code]`` (a language link of a page these POSTs answered): the tab."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k in ("lang", "next")]
    return RedirectResponse(f"/login?{urlencode([*query, ('method', TAB)])}", status_code=303)


def _failed(
    request: Request,
    web: WebServices,
    target: str | None,
    phone: str,
    exc: GatewayError,
    *,
    sent: bool = False,
) -> Response:
    """The tab again, with ``exc``'s message in the page's language (a wait: its seconds)."""
    status = _STATUS.get(type(exc), 503)
    text = i18n.gettext(web.pages.locale(request), "errors", exc.template)
    message = text % exc.params if exc.params else text
    if status == 503 and not isinstance(exc, UpstreamUnavailable):
        message = web.pages.gettext(web.pages.locale(request))(_UNAVAILABLE)
    response = login_form(
        request, web, target, tab=TAB, phone=phone, sms_error=message, sent=sent, status=status
    )
    if exc.retry_after is not None:
        response.headers["retry-after"] = str(max(math.ceil(exc.retry_after), 1))
    return response


def _unknown(request: Request, web: WebServices) -> Response:
    return web.pages.error(
        request, "Unknown app", "This way of logging in is not offered here.", status=404
    )


def _fields(form: FormData) -> tuple[str | None, str]:
    return safe_next(_text(form.get("next")) or None), _text(form.get("phone")).strip()[:64]


def _text(value: object) -> str:
    return value[:4096] if isinstance(value, str) else ""
