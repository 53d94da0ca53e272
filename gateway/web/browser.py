"""The browser's login session, as the web routes see it: a cookie (HttpOnly, SameSite=Lax,
``Max-Age`` of ``[web] session_days``, Secure whenever the gateway is not in sandbox mode,
plain-http loopback included: browsers keep Secure cookies there) naming a login session
(``gateway.sessions.browser``: what it is, and why logout everywhere, disable, deletion and
merges reach it)."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response

from gateway.addresses import client_address
from gateway.audit import ClientInfo, storable
from gateway.config import GatewayConfig
from gateway.sessions.browser import BROWSER_PLATFORM, BrowserLogin, BrowserLogins

__all__ = ["COOKIE", "BrowserLogin", "BrowserSessions", "browser_client"]

COOKIE = "gw_session"


def browser_client(request: Request, channel: str | None = None) -> ClientInfo:
    """The browser's facts for sessions and audit rows: its address and user agent."""
    agent = storable((request.headers.get("user-agent") or "")[:512]) or None
    return ClientInfo(BROWSER_PLATFORM, channel, None, client_address(request.scope), agent)


class BrowserSessions:
    def __init__(self, logins: BrowserLogins, config: GatewayConfig) -> None:
        self._logins = logins
        self._days = config.web.session_days
        self._secure = not config.sandbox

    async def current(self, request: Request) -> BrowserLogin | None:
        """Who this browser is logged in as, if anyone (a disabled account: nobody)."""
        return await self._logins.find(request.cookies.get(COOKIE))

    async def start(
        self,
        response: Response,
        account_id: uuid.UUID,
        amr: tuple[str, ...] | list[str],
        client: ClientInfo,
        *,
        replacing: uuid.UUID | None = None,
        request: Request | None = None,
        **detail: object,
    ) -> BrowserLogin:
        """Log this browser in (``AccountDisabled`` for a disabled account): the session,
        its audit row (``web_login``, with ``amr`` and the client's facts), the cookie.
        ``replacing``: an API session the login opened on the way, ended as this begins;
        ``request``: this browser's, whose session (if any) this one replaces."""
        ended = [replacing] if replacing is not None else []
        previous = await self.current(request) if request is not None else None
        if previous is not None:
            ended.append(previous.session_id)
        cookie, login = await self._logins.start(
            account_id, tuple(amr), client, self._days, tuple(ended), **detail
        )
        response.set_cookie(
            COOKIE,
            cookie,
            max_age=self._days * 86400,
            path="/",
            httponly=True,
            samesite="lax",
            secure=self._secure,
        )
        return login

    async def end(self, request: Request, response: Response) -> BrowserLogin | None:
        """Log this browser out (``web_logout``) and drop its cookie; the login it ended."""
        login = await self.current(request)
        if login is not None:
            await self._logins.end(login, browser_client(request))
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=self._secure)
        return login
