"""Scan to log in with the mini-program, over GraphQL (``gateway.weblogin``): the browser
starts a login and follows it; the mini-program shows what asks and confirms or denies."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from enum import Enum

import strawberry

from gateway.api import results
from gateway.api.mutations import ClientInput, LoginSuccess, client_info, login_success
from gateway.api.types import App, Info
from gateway.errors import InvalidInput, NotLoggedIn
from gateway.weblogin.service import MAX_WAIT_SECONDS, WebLogins
from gateway.weblogin.tickets import Ticket

_COOKIE_SLACK = 60  # the binding cookie outlives the newest ticket by this many seconds


@strawberry.enum(description="Where a scan login stands. A collected login answers EXPIRED.")
class WebLoginStatus(Enum):
    WAITING = "WAITING"
    SCANNED = "SCANNED"
    APPROVED = "APPROVED"
    DENIED = "DENIED"
    EXPIRED = "EXPIRED"


@strawberry.input(description="Start a scan login for a mini-program (its key, as in `apps`).")
class StartWebLoginInput:
    app: str
    client: ClientInput | None = None


@strawberry.type(
    description="Show `qrImage`; follow `webLoginStatus(ticket)`. The answer also sets the "
    "HttpOnly cookie that binds the login to this browser: only it collects the login."
)
class WebLoginStarted:
    ticket: str = strawberry.field(description="For webLoginStatus; keep it in the page.")
    qr_image: str = strawberry.field(description="The mini-program code, as a data: URI.")
    scene: str = strawberry.field(description="What the code carries (the page's `scene`).")
    expires_at: datetime


@strawberry.input(description="The person's answer, from the page the code opened.")
class ApproveWebLoginInput:
    scene: str = strawberry.field(description="`options.scene` of the page, URL-decoded.")
    approve: bool
    client: ClientInput | None = None


@strawberry.type(description="A website asking to log in: show it before asking to confirm.")
class WebLoginRequest:
    status: WebLoginStatus
    app: App = strawberry.field(description="The mini-program whose code was scanned.")
    origin: str | None = strawberry.field(description="The site that asks, when its browser said.")
    ip: str | None = strawberry.field(description="The address the browser asks from.")
    user_agent: str | None = strawberry.field(description="The browser that asks.")
    requested_at: datetime
    expires_at: datetime


@strawberry.type(description="Where a scan login stands; `login` only for its own browser.")
class WebLoginState:
    status: WebLoginStatus
    expires_at: datetime | None
    login: LoginSuccess | None = strawberry.field(
        description="Once APPROVED, for the browser that started the login (its cookie): the "
        "tokens, once. Any other caller sees the status only."
    )


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _request(info: Info, ticket: Ticket, status: WebLoginStatus | None = None) -> WebLoginRequest:
    app = info.context.services.config.app(ticket.app_key)
    assert app is not None  # the use case checked it is the viewer's own app
    return WebLoginRequest(
        status=status or WebLoginStatus(ticket.status.value),
        app=App.from_config(app),
        origin=ticket.origin,
        ip=ticket.ip,
        user_agent=ticket.user_agent,
        requested_at=_time(ticket.created_at),
        expires_at=_time(ticket.expires_at),
    )


@strawberry.type
class WebLoginMutation:
    @results.mutation(
        "StartWebLoginResult",
        WebLoginStarted,
        InvalidInput,
        WebLogins.start,
        description="Start a scan login: a mini-program code for this browser to show.",
    )
    async def start_web_login(self, info: Info, input: StartWebLoginInput) -> WebLoginStarted:
        context = info.context
        web = context.services.web_logins
        started = await web.start(
            input.app, client_info(info, input.client), context.scan_binding(), context.origin()
        )
        context.bind_scan(started.binding, web.ticket_seconds + _COOKIE_SLACK)
        image = base64.b64encode(started.image).decode("ascii")
        return WebLoginStarted(
            ticket=started.ticket,
            qr_image=f"data:{started.media_type};base64,{image}",
            scene=started.scene,
            expires_at=_time(started.expires_at),
        )

    @results.mutation(
        "ApproveWebLoginResult",
        WebLoginRequest,
        NotLoggedIn,
        WebLogins.decide,
        description="Confirm (`approve: true`) or refuse the website login whose code was "
        "scanned, as the logged-in mini-program user.",
    )
    async def approve_web_login(self, info: Info, input: ApproveWebLoginInput) -> WebLoginRequest:
        viewer = await info.context.require_viewer()
        ticket = await info.context.services.web_logins.decide(
            viewer, input.scene, input.approve, client_info(info, input.client)
        )
        decided = WebLoginStatus.APPROVED if input.approve else WebLoginStatus.DENIED
        return _request(info, ticket, decided)


@strawberry.type
class WebLoginQuery:
    @results.field(
        "WebLoginRequestResult",
        WebLoginRequest,
        NotLoggedIn,
        WebLogins.request,
        description="What asks to log in with this scene (which site, from where), for the "
        "logged-in mini-program user; the browser's status becomes SCANNED.",
    )
    async def web_login_request(self, info: Info, scene: str) -> WebLoginRequest:
        viewer = await info.context.require_viewer()
        ticket = await info.context.services.web_logins.request(viewer, scene)
        return _request(info, ticket)

    @results.field(
        "WebLoginStatusResult",
        WebLoginState,
        WebLogins.status,
        description="Follow a scan login. `waitSeconds` (at most 25) answers as soon as the "
        f"state changes, or after that long (long polling; at most {MAX_WAIT_SECONDS:.0f} s).",
    )
    async def web_login_status(
        self, info: Info, ticket: str, wait_seconds: float | None = None
    ) -> WebLoginState:
        context = info.context
        view = await context.services.web_logins.status(
            ticket, context.scan_binding(), context.client("web", None, None), wait_seconds or 0.0
        )
        login = None
        if view.login is not None:
            login = await login_success(info, view.login, is_new_account=False)
        return WebLoginState(
            status=WebLoginStatus(view.status.value),
            expires_at=_time(view.expires_at) if view.expires_at is not None else None,
            login=login,
        )
