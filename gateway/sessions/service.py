"""Login sessions: start, refresh with rotation and reuse detection, revoke, authenticate."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from gateway.accounts.model import AccountStatus, AccountView, IdentityKey
from gateway.accounts.service import AccountGraph, SessionKey
from gateway.audit import ClientInfo, record, record_by
from gateway.config import TokenLifetimes
from gateway.errors import AccountDisabled, InvalidRefreshToken, RefreshTokenReused, declares
from gateway.metrics import REFRESHES, TOKEN_CHECKS
from gateway.sessions import repository
from gateway.sessions.cache import TokenCache
from gateway.sessions.issuing import Issuer
from gateway.sessions.model import IssuedTokens, SessionView, Viewer
from gateway.sessions.records import Facts, Held
from gateway.sessions.rotation import OneStepRefresh
from gateway.sessions.sign_in import OneStepSignIn, SignedIn
from gateway.sessions.tokens import (
    AccessTokens,
    TokenRejected,
    hash_refresh_token,
)
from gateway.store.db import Database, UnitOfWork
from gateway.store.models import utcnow

_REFRESHED = REFRESHES.labels("ok")
_FROM_CACHE = TOKEN_CHECKS.labels("cache")
_FROM_DATABASE = TOKEN_CHECKS.labels("database")


class Sessions:
    def __init__(
        self,
        db: Database,
        accounts: AccountGraph,
        tokens: AccessTokens,
        lifetimes: TokenLifetimes,
        kind_of: Callable[[str], str | None] = lambda _: None,
        cache: TokenCache | None = None,
        *,
        successor_key: bytes,
        fast_paths: bool = True,
    ) -> None:
        self._db = db
        # False (``[performance] fast_paths``): every login and refresh takes the reference path
        self._fast_paths = fast_paths
        self._cache = cache if cache is not None else TokenCache(db.broadcast, size=0)
        self._accounts = accounts
        accounts.on_merge(repository.adopt)
        self._tokens = tokens
        self._lifetimes = lifetimes
        self._issuer = Issuer(tokens, lifetimes, kind_of, successor_key)
        self._one_step = OneStepSignIn(db, accounts, self._issuer)
        self._one_step_refresh = OneStepRefresh(db, self._issuer)

    @declares(AccountDisabled)
    async def start(
        self, s: UnitOfWork, account_id: uuid.UUID, app_key: str, client: ClientInfo
    ) -> IssuedTokens:
        """Open a login session inside the caller's transaction. A disabled account gets
        none (``AccountDisabled``); a login cancels a pending deletion, and says so."""
        account, cancelled = await self._accounts.admit_login(s, account_id)
        if cancelled:
            record(s, "deletion_cancelled", client, account_id=account_id, app_key=app_key)
        now = utcnow()
        facts = Facts(uuid.uuid4(), account_id, app_key, self._issuer.session_end(app_key, now))
        issued, digest = self._issuer.issue(facts, now)
        await repository.open_session(s, facts, client, digest, now)
        return replace(issued, deletion_cancelled=cancelled, account=account)

    async def start_at_once(
        self,
        keys: list[IdentityKey],
        wechat_key: SessionKey | None,
        app_key: str,
        client: ClientInfo,
        **detail: Any,
    ) -> SignedIn | None:
        """A login in one step where it needs no decision (``sessions.sign_in``): the account
        found by its keys or created with them, the WeChat session key kept, the session,
        refresh token and audit event (``login``, with ``detail``) written; the tokens and
        whether the account is new. ``None`` when it wrote nothing: the transactional path
        (``start``, inside the caller's resolution) then decides; always ``None`` with
        ``fast_paths`` off."""
        if not self._fast_paths:
            return None
        return await self._one_step.start(keys, wechat_key, app_key, client, detail)

    @declares(InvalidRefreshToken, RefreshTokenReused)
    async def refresh(self, token: str, client: ClientInfo) -> IssuedTokens:
        """Rotate: the presented token is spent. A spent token presented again revokes the
        session, unless it was spent within the grace window (a client that raced itself or
        lost the answer): then it gets the same successor refresh token again (with a new
        access token) and the session lives on.

        Core statements, no ORM unit of work: the session row locked and read with its token
        and account in one statement, then the token spent, the session touched, the new token
        and the audit row written. On PostgreSQL the usual case (an unspent token) is all of
        that in one statement, ``at_once.rotate_at_once`` (SQLite: one hand-off to the
        writer thread; both in ``sessions.rotation``); what it leaves (``None``) takes the full
        path."""
        now = utcnow()
        rotated = None
        if self._fast_paths:
            rotated = await self._one_step_refresh.rotate(token, client, now)
        if rotated is not None:
            _REFRESHED.inc()
            return rotated

        outcome, issued = await self._db.run_in_transaction(
            lambda s: self._refresh_in(s, token, client, now)
        )
        REFRESHES.labels({"spent": "ok", "grace": "grace", "reused": "reused"}[outcome]).inc()
        if issued is None:
            raise RefreshTokenReused()
        return issued

    async def _refresh_in(
        self, s: UnitOfWork, token: str, client: ClientInfo, now: datetime
    ) -> tuple[str, IssuedTokens | None]:
        """The reference refresh, in the unit of work: (spent | grace | reused, the new pair;
        None for a reuse, whose session is ended)."""
        held = await self._live_session(s, token, now)
        outcome = await self._spend(s, held.token_id, now)
        if outcome == "reused":
            await repository.touch(s, held.session_id, revoked_at=now)
            issued = None
        else:
            issued = await self._rotate(s, held, token, outcome == "grace", now)
        kind = {"spent": "refresh", "grace": "refresh_grace", "reused": "refresh_reuse"}
        account_id = issued.account_id if issued else held.account.id
        record(
            s,
            kind[outcome],
            client,
            account_id=account_id,
            session_id=held.session_id,
            app_key=held.app_key,
        )
        return outcome, issued

    async def _rotate(
        self, s: UnitOfWork, held: Held, token: str, grace: bool, now: datetime
    ) -> IssuedTokens:
        """The pair after ``token`` for a held session: its successor refresh token (derived,
        ``Issuer.successor``), written unless a grace reuse finds it written already (so
        every reuse in the window answers the same successor, one chain), and a new access
        token; a merged account's session now acts for its heir."""
        account: AccountView | None = held.account
        account_id = held.account.id
        moved: dict[str, Any] = {}
        if held.account.status == AccountStatus.MERGED:  # the session moves to the heir
            account_id, account = await self._accounts.survivor(s, account_id), None
            moved = {"account_id": account_id}
        await repository.touch(s, held.session_id, last_used_at=now, **moved)
        facts = held.facts._replace(account_id=account_id)
        refresh, digest = self._issuer.successor(token)
        if not (grace and await repository.token_written(s, digest)):
            await repository.add_token(s, facts, digest, now)
        return replace(self._issuer.pair(facts, now, refresh), account=account)

    async def _spend(self, s: UnitOfWork, token_id: uuid.UUID, now: datetime) -> str:
        """``spent`` (first use), ``grace`` (used moments ago) or ``reused``. The caller holds
        the session's lock, so concurrent refreshes of one token take turns here."""
        if await repository.spend(s, token_id, now):
            return "spent"
        grace = timedelta(seconds=self._lifetimes.refresh_reuse_grace_seconds)
        used_at = await repository.used_at(s, token_id)
        if grace and used_at is not None and now - used_at <= grace:
            return "grace"
        return "reused"

    @staticmethod
    async def _live_session(s: UnitOfWork, token: str, now: datetime) -> Held:
        """The live session a refresh token belongs to, locked (PostgreSQL: ``FOR UPDATE OF``
        the session row; SQLite's writer lock already serialises), with its account, in one
        statement; INVALID_REFRESH_TOKEN otherwise."""
        held = await repository.held_session(s, hash_refresh_token(token), now)
        if held is None:
            raise InvalidRefreshToken()
        return held

    async def logout(self, viewer: Viewer, everywhere: bool, client: ClientInfo) -> int:
        now = utcnow()

        async def work(s: UnitOfWork) -> int:
            if everywhere:
                count = await repository.revoke_accounts(s, [viewer.account_id], now)
            else:
                count = await repository.revoke(s, viewer.session_id, now)
            record_by(s, "logout", client, viewer, everywhere=everywhere)
            return count

        return await self._db.run_in_transaction(work)

    async def revoke_others(self, s: UnitOfWork, viewer: Viewer) -> int:
        """Inside the caller's transaction: every other live session of the account."""
        return await repository.revoke_others(s, viewer.account_id, viewer.session_id, utcnow())

    async def end(self, s: UnitOfWork, viewer: Viewer) -> None:
        """Inside the caller's transaction: the viewer's own session (a login that replaces
        it, such as a phone login's over the silent login's)."""
        await repository.revoke(s, viewer.session_id, utcnow(), viewer.account_id)

    async def revoke(self, viewer: Viewer, session_id: uuid.UUID, client: ClientInfo) -> bool:
        """Revoke one session of the viewer's own account; False when there is no such one."""

        async def work(s: UnitOfWork) -> bool:
            done = bool(await repository.revoke(s, session_id, utcnow(), viewer.account_id))
            if done:
                record_by(s, "revoke_session", client, viewer, revoked=str(session_id))
            return done

        return await self._db.run_in_transaction(work)

    async def revoke_all(self, s: UnitOfWork, account_ids: list[uuid.UUID]) -> int:
        """Inside the caller's transaction: every live session of these accounts, at once
        (every replica's token cache hears it when the transaction commits)."""
        return await repository.revoke_accounts(s, account_ids, utcnow())

    @staticmethod
    async def erase(s: UnitOfWork, account_ids: list[uuid.UUID]) -> None:
        """Inside the caller's transaction: the accounts' sessions and refresh tokens, with
        their client facts, are gone (their tokens with them)."""
        await repository.erase(s, account_ids)

    async def active(self, account_id: uuid.UUID) -> list[SessionView]:
        return await repository.sessions_of(self._db, account_id, live_after=utcnow(), limit=100)

    async def history(self, account_id: uuid.UUID, limit: int = 10_000) -> list[SessionView]:
        """The sessions the account had, revoked and expired ones included, newest first."""
        return await repository.sessions_of(self._db, account_id, live_after=None, limit=limit)

    async def authenticate(self, access_token: str) -> Viewer:
        """Signature first (no I/O), then the token cache (``sessions.cache``: what every
        revocation and account change invalidates on every replica when it commits), else one
        indexed read. ``TokenRejected`` for an expired, revoked or foreign token, or a
        disabled account."""
        claims = self._tokens.check(access_token)
        hit = self._cache.get(claims.session_id)
        if hit is not None and hit.expires_at > utcnow():
            _FROM_CACHE.inc()
            return hit.viewer  # the session's, as the database read below makes it
        return await self._authenticate_from_database(claims.session_id)

    async def _authenticate_from_database(self, session_id: uuid.UUID) -> Viewer:
        epoch = self._cache.epoch()
        _FROM_DATABASE.inc()
        live = await repository.live_token(self._db, session_id, utcnow())
        if live is None:
            raise TokenRejected("INVALID_TOKEN")  # revoked, or its session ended
        account = live.account
        if account.status in (AccountStatus.DISABLED, AccountStatus.DELETED):
            raise TokenRejected("INVALID_TOKEN")
        if account.status == AccountStatus.MERGED:
            async with self._db.reader() as s:
                survivor_id = await self._accounts.survivor(s, account.id)
            return Viewer(
                survivor_id,
                session_id,
                live.app_key,
                live.expires_at,
                session_created_at=live.created_at,
            )
        app_key, expires_at, created_at = live.app_key, live.expires_at, live.created_at
        self._cache.put(epoch, session_id, account, app_key, expires_at, created_at)
        return Viewer(account.id, session_id, app_key, expires_at, account, created_at)
