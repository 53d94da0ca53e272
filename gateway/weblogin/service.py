"""Scan to log in with the mini-program: a browser shows a mini-program code, the person
scans it with WeChat and confirms in the mini-program, the browser gets the login.

The ticket (what the browser polls with) and the scene (what the code carries) are different
secrets: a photo of the code names the scene, never the ticket. Only the browser holding the
binding secret (an HttpOnly cookie the API sets) collects the login, once; any other caller
sees the state and nothing more. Other ways in (the hosted login page, OIDC) call
:meth:`WebLogins.collect`.
"""

from __future__ import annotations

import hmac
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

from gateway.audit import ClientInfo, record, storable
from gateway.config import AppConfig, AppKind, GatewayConfig
from gateway.errors import (
    WECHAT_CALL,
    AccountDisabled,
    InvalidInput,
    RateLimited,
    TemporarilyUnavailable,
    UnknownApp,
    UnsupportedAppKind,
    WebLoginDenied,
    WebLoginExpired,
    WebLoginNotBound,
    WebLoginPending,
    declares,
)
from gateway.limits import waiting_upstream
from gateway.sessions.browser import BROWSER_APP
from gateway.sessions.model import IssuedTokens, Viewer
from gateway.sessions.service import Sessions
from gateway.store.db import Database, UnitOfWork
from gateway.store.models import WebLoginTicketRow
from gateway.throttle import WindowLimit
from gateway.weblogin import tickets
from gateway.weblogin.tickets import OPEN, SECRET, Status, Ticket
from gateway.weblogin.wakeups import Wakeups, until
from gateway.wechat.app_token import AppTokens
from gateway.wechat.client import WeChatClient

BINDING_COOKIE = "gw_scan"
"""The browser's binding secret (HttpOnly, SameSite=Lax; Secure outside sandbox mode)."""
AMR = "wechat_miniprogram_scan"
"""How a login by scan is named (the id_token's ``amr``, the audit's ``door``)."""
MAX_WAIT_SECONDS = 25.0
POLL_SECONDS = 3.0
_SCENE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True)
class Started:
    """A new ticket: ``ticket`` for polling, ``binding`` for the browser's cookie (the one it
    sent, when well formed, so several tabs share it), the code's image."""

    ticket: str
    binding: str
    scene: str
    image: bytes
    expires_at: float

    @property
    def media_type(self) -> str:
        return "image/png" if self.image.startswith(b"\x89PNG") else "image/jpeg"


@dataclass(frozen=True)
class StatusView:
    status: Status
    expires_at: float | None
    login: IssuedTokens | None = None


@dataclass(frozen=True)
class Collected:
    account_id: uuid.UUID
    app_key: str
    amr: str = AMR


class WebLogins:
    def __init__(
        self,
        config: GatewayConfig,
        db: Database,
        sessions: Sessions,
        wechat: WeChatClient,
        app_tokens: AppTokens,
        starts: WindowLimit,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._settings = config.web_scan
        self._db = db
        self._sessions = sessions
        self._wechat = wechat
        self._app_tokens = app_tokens
        self._starts = starts
        self._clock = clock
        self.wakeups = Wakeups(db.broadcast)

    @property
    def ticket_seconds(self) -> int:
        return self._settings.ticket_seconds

    @declares(UnknownApp, UnsupportedAppKind, RateLimited, TemporarilyUnavailable, WECHAT_CALL)
    async def start(
        self, app_key: str, client: ClientInfo, binding: str | None, origin: str | None
    ) -> Started:
        """A ticket for ``app_key`` (a mini-program) and its code, for the browser that sent
        ``binding`` (its cookie; a new secret when it has none)."""
        app = self._miniprogram(app_key)
        await self._starts.spend(f"web-scan:{client.ip}", "login codes")
        ticket, scene = tickets.new_secret(), tickets.new_scene()
        binding = binding if binding and SECRET.match(binding) else tickets.new_secret()
        image = await self._code(app, scene)
        now = self._clock()
        expires_at = now + self._settings.ticket_seconds

        async def work(s: UnitOfWork) -> None:
            row = WebLoginTicketRow(
                ticket_hash=tickets.digest(ticket),
                scene=scene,
                app_key=app.key,
                binding_hash=tickets.digest(binding),
                status=Status.WAITING.value,
                origin=storable(origin),
                ip=client.ip,
                user_agent=client.user_agent,
                created_at=now,
                expires_at=expires_at,
            )
            await tickets.add(s, row, now)
            record(s, "web_login_started", client, app_key=app.key, amr=AMR)

        await self._db.run_in_transaction(work)
        return Started(ticket, binding, scene, image, expires_at)

    def _miniprogram(self, app_key: str) -> AppConfig:
        app = self._config.app(app_key)
        if app is None:
            raise UnknownApp("No app is configured with key %(key)s.", key=repr(app_key[:64]))
        if app.kind != AppKind.MINIPROGRAM:
            raise UnsupportedAppKind("Scan to log in needs a mini-program app (its code).")
        return app

    async def _code(self, app: AppConfig, scene: str) -> bytes:
        settings = self._settings
        page = settings.page

        async def fetch(token: str) -> bytes:
            return await self._wechat.get_unlimited_wxacode(
                token,
                scene,
                page,
                check_path=settings.check_path,
                env_version=settings.env_version,
                width=settings.code_width,
            )

        return await self._app_tokens.call(app, fetch)

    @declares(InvalidInput, WebLoginExpired)
    async def app_of_scene(self, scene: str) -> str:
        """The mini-program whose code carries ``scene`` while it is live: what a phone knows
        by scanning it (the sandbox's ``/sandbox/scan`` plays that phone)."""
        self._check_scene(scene)
        async with self._db.reader() as s:
            found = await tickets.by_scene(s, scene, self._clock())
        if found is None or found.status not in OPEN:
            raise WebLoginExpired()
        return found.app_key

    @declares(UnsupportedAppKind, InvalidInput, WebLoginExpired)
    async def request(self, viewer: Viewer, scene: str) -> Ticket:
        """What asks to log in with ``scene`` (which site, from where), for the person about
        to confirm; the ticket moves from WAITING to SCANNED (the browser may say so)."""
        self._check_scene(scene)
        self._approver(viewer)
        now = self._clock()
        waiting, where = (Status.WAITING.value,), {"scene": scene}

        async def work(s: UnitOfWork) -> tuple[Ticket, str | None]:
            found = self._for_approver(viewer, await tickets.by_scene(s, scene, now))
            moved = await tickets.move(s, now, to=Status.SCANNED, where=where, from_states=waiting)
            return found, moved

        found, moved = await self._db.run_in_transaction(work)
        if moved is None:
            return found
        self.wakeups.wake(tickets.wake_name(found.key))
        return replace(found, status=Status.SCANNED)

    @declares(UnsupportedAppKind, InvalidInput, WebLoginExpired)
    async def decide(self, viewer: Viewer, scene: str, approve: bool, client: ClientInfo) -> Ticket:
        """The person's answer: APPROVED (for their account) or DENIED; once per ticket."""
        self._check_scene(scene)
        self._approver(viewer)
        now = self._clock()
        to = Status.APPROVED if approve else Status.DENIED

        async def work(s: UnitOfWork) -> Ticket:
            found = self._for_approver(viewer, await tickets.by_scene(s, scene, now))
            where = {"scene": scene}
            if not await tickets.move(
                s, now, to=to, where=where, from_states=OPEN, account_id=viewer.account_id
            ):
                raise WebLoginExpired()
            record(
                s,
                "web_login_approved" if approve else "web_login_denied",
                client,
                account_id=viewer.account_id,
                session_id=viewer.session_id,
                app_key=found.app_key,
                amr=AMR,
                browser_ip=found.ip,
                browser_origin=found.origin,
            )
            return found

        found = await self._db.run_in_transaction(work)
        self.wakeups.wake(tickets.wake_name(found.key))
        return found

    def _check_scene(self, scene: str) -> None:
        if not scene or len(scene) > 32 or not set(scene) <= _SCENE_CHARS:
            raise InvalidInput("scene", "scene is not one of this gateway's login codes.")

    def _approver(self, viewer: Viewer) -> None:
        app = self._config.app(viewer.app_key)
        if app is None or app.kind != AppKind.MINIPROGRAM:
            raise UnsupportedAppKind()

    def _for_approver(self, viewer: Viewer, found: Ticket | None) -> Ticket:
        """The ticket, if it is live and was made for the viewer's mini-program."""
        if found is None or found.status not in (Status.WAITING, Status.SCANNED):
            raise WebLoginExpired()
        if found.app_key != viewer.app_key:
            raise UnsupportedAppKind("Confirm in the mini-program whose code you scanned.")
        return found

    @declares(InvalidInput, AccountDisabled)
    async def status(
        self, ticket: str, binding: str | None, client: ClientInfo, wait_seconds: float = 0.0
    ) -> StatusView:
        """The ticket's state, after waiting up to ``wait_seconds`` while nobody acted. An
        APPROVED ticket asked by its own browser (``binding``) is collected: a login session
        opens (platform "web", app ``@web``: the website's) and the ticket is spent."""
        if not ticket or len(ticket) > 64:
            raise InvalidInput("ticket", "ticket is empty or too long.")
        if not 0 <= wait_seconds <= MAX_WAIT_SECONDS:
            raise InvalidInput(
                "waitSeconds", "waitSeconds is between 0 and %(most)s.", most=MAX_WAIT_SECONDS
            )
        key = tickets.digest(ticket)
        found = await self._follow(key, wait_seconds)
        if found is None:
            return StatusView(Status.EXPIRED, None)
        if found.status != Status.APPROVED or not _bound(found, binding):
            return StatusView(found.status, found.expires_at)
        login = await self._open_session(found, client)
        if login is None:  # collected meanwhile (another request of the same browser)
            return StatusView(Status.EXPIRED, found.expires_at)
        return StatusView(Status.APPROVED, found.expires_at, login)

    async def _follow(self, key: str, wait_seconds: float) -> Ticket | None:
        """The ticket once it has left WAITING/SCANNED, or when the wait is over."""
        with self.wakeups.watch(tickets.wake_name(key)) as changed:
            if wait_seconds > 0:
                # asking starts the broadcast's subscription (it starts lazily, at the first
                # token check) and reads the SQLite file signal: other processes' changes
                _ = self._db.broadcast.trusted
            found = await self._read(key)
            deadline = time.monotonic() + wait_seconds
            while found is not None and found.status in OPEN:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                async with waiting_upstream():  # a long poll holds no request slot
                    await until(changed, min(left, POLL_SECONDS))
                found = await self._read(key)
            return found

    async def _read(self, key: str) -> Ticket | None:
        async with self._db.reader() as s:
            return await tickets.by_key(s, key, self._clock())

    async def _open_session(self, found: Ticket, client: ClientInfo) -> IssuedTokens | None:
        async def work(s: UnitOfWork) -> IssuedTokens | None:
            if not await self._spend(s, found):
                return None
            assert found.account_id is not None  # APPROVED always names the account
            # the website's session (``@web``), not the scanned mini-program's: its token
            # must not act as the phone (approve further scans, bind the phone's number)
            issued = await self._sessions.start(s, found.account_id, BROWSER_APP, client)
            record(
                s,
                "login",
                client,
                account_id=issued.account_id,
                session_id=issued.session_id,
                app_key=BROWSER_APP,
                door=AMR,
                amr=AMR,
                scanned_app=found.app_key,
            )
            return issued

        return await self._db.run_in_transaction(work)

    async def _spend(self, s: UnitOfWork, found: Ticket) -> bool:
        key = await tickets.move(
            s,
            self._clock(),
            to=Status.COLLECTED,
            where={"ticket_hash": found.key, "binding_hash": found.binding_hash},
            from_states=(Status.APPROVED.value,),
        )
        return key is not None

    @declares(WebLoginExpired, WebLoginPending, WebLoginDenied, WebLoginNotBound)
    async def collect(self, ticket: str, binding_secret: str) -> Collected:
        """For the hosted login page: the account an APPROVED ticket was approved for, if
        ``binding_secret`` is the browser's that started it. Single use: the ticket is spent,
        and a second call is ``WebLoginExpired``."""
        found = await self._read(tickets.digest(ticket)) if ticket else None
        if found is None or found.status == Status.EXPIRED:
            raise WebLoginExpired()
        if not _bound(found, binding_secret):
            raise WebLoginNotBound()
        if found.status == Status.DENIED:
            raise WebLoginDenied()
        if found.status != Status.APPROVED:
            raise WebLoginPending()

        async def work(s: UnitOfWork) -> None:
            if not await self._spend(s, found):
                raise WebLoginExpired()
            record(s, "web_login_collected", None, account_id=found.account_id, amr=AMR)

        await self._db.run_in_transaction(work)
        assert found.account_id is not None
        return Collected(found.account_id, found.app_key)


def _bound(found: Ticket, binding: str | None) -> bool:
    """The request comes from the browser that started the ticket."""
    if not binding or not SECRET.match(binding):
        return False
    return hmac.compare_digest(found.binding_hash, tickets.digest(binding))
