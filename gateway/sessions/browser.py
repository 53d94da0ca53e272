"""A browser's login session: what the hosted login page leaves (single sign-on).

It is an ordinary login session (``login_sessions``, platform ``web``, app ``@web``: not a
valid app key, so never one of the configured apps), so everything that already ends or moves
login sessions ends or moves it: logout everywhere, revoking it from the session list, a
disable, an erasure, a merge (its account becomes the survivor). Its cookie is
``<256 random bits>.<amr>``; the session's one row in ``refresh_tokens`` holds an HMAC of the
whole cookie under a key of its own, never a SHA-256: no refresh token hashes to it, so the
cookie is no refresh token, and a cookie whose ``amr`` was edited names no session. It is
never rotated or spent; the session's ``expires_at`` is the cookie's end.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.accounts.model import AccountStatus
from gateway.accounts.service import AccountGraph
from gateway.audit import ClientInfo, record
from gateway.errors import AccountDisabled, declares
from gateway.sessions import repository
from gateway.sessions.records import Facts
from gateway.store.db import Database, UnitOfWork
from gateway.store.models import utcnow

BROWSER_APP = "@web"
BROWSER_PLATFORM = "web"
_AMR = re.compile(r"^[a-z_]{1,32}(,[a-z_]{1,32}){0,3}$")
_COOKIE = re.compile(r"^[A-Za-z0-9_-]{43}\.[a-z_,]{1,131}$")


@dataclass(frozen=True)
class BrowserLogin:
    """A browser's live login: its session, whose it is (a merged account's survivor), when
    and how the person logged in (OpenID Connect's ``auth_time`` and ``amr``)."""

    session_id: uuid.UUID
    account_id: uuid.UUID
    auth_time: datetime
    amr: tuple[str, ...]


def _new_cookie(amr: tuple[str, ...]) -> str:
    """``<256 random bits>.<amr>``: the amr is part of what the session's HMAC covers."""
    joined = ",".join(amr)
    if not _AMR.match(joined):
        raise ValueError(f"not an amr list: {amr!r}")
    return f"{secrets.token_urlsafe(32)}.{joined}"


class BrowserLogins:
    def __init__(self, db: Database, accounts: AccountGraph, secret_key: str) -> None:
        self._db = db
        self._accounts = accounts
        self._key = hmac.new(secret_key.encode(), b"gateway browser sessions", "sha256").digest()

    def _digest(self, cookie: str) -> str:
        return hmac.new(self._key, cookie.encode(), hashlib.sha256).hexdigest()

    @declares(AccountDisabled)
    async def start(
        self,
        account_id: uuid.UUID,
        amr: tuple[str, ...],
        client: ClientInfo,
        days: int,
        replacing: tuple[uuid.UUID, ...] = (),
        **detail: object,
    ) -> tuple[str, BrowserLogin]:
        """Open a browser session for an account a login just proved (``AccountDisabled``
        for a disabled one; ``AccountGone`` for one erased since), audited as ``web_login``
        in the same transaction. ``replacing``: sessions this one takes the place of, ended in
        that transaction (the API session a WeChat login opened on the way; the browser's
        previous session, when it logs in again).
        Returns the cookie's value and the login."""
        cookie = _new_cookie(amr)
        now = utcnow()
        facts = Facts(uuid.uuid4(), account_id, BROWSER_APP, now + timedelta(days=days))
        web_client = ClientInfo(
            BROWSER_PLATFORM, client.channel, None, client.ip, client.user_agent
        )

        async def work(s: UnitOfWork) -> uuid.UUID:
            heir = await self._accounts.survivor(s, account_id)
            await self._accounts.admit_login(s, heir)
            opened = facts._replace(account_id=heir)
            await repository.open_session(s, opened, web_client, self._digest(cookie), now)
            for ended in replacing:
                await repository.revoke(s, ended, now)
            record(
                s,
                "web_login",
                client,
                account_id=heir,
                session_id=facts.id,
                app_key=BROWSER_APP,
                amr=list(amr),
                **detail,
            )
            return heir

        heir = await self._db.run_in_transaction(work)
        return cookie, BrowserLogin(facts.id, heir, now, amr)

    async def find(self, cookie: str | None) -> BrowserLogin | None:
        """The live login a cookie names; None for a missing, forged, ended or expired one,
        and for a disabled or erased account."""
        if not cookie or not _COOKIE.match(cookie):
            return None
        found = await repository.browser_session(self._db, self._digest(cookie), utcnow())
        if found is None:
            return None
        session_id, created_at, account = found
        if account.status in (AccountStatus.DISABLED, AccountStatus.DELETED):
            return None
        account_id = account.id
        if account.status == AccountStatus.MERGED:
            async with self._db.reader() as s:
                account_id = await self._accounts.survivor(s, account.id)
        amr = tuple(cookie.partition(".")[2].split(","))
        return BrowserLogin(session_id, account_id, created_at, amr)

    async def end(self, login: BrowserLogin, client: ClientInfo) -> None:
        """Log this browser out (its session revoked), audited as ``web_logout``."""

        async def work(s: UnitOfWork) -> None:
            await repository.revoke(s, login.session_id, utcnow())
            record(
                s,
                "web_logout",
                client,
                account_id=login.account_id,
                session_id=login.session_id,
                app_key=BROWSER_APP,
            )

        await self._db.run_in_transaction(work)
