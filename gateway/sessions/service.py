"""Login sessions: start, refresh with rotation and reuse detection, revoke, authenticate."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.accounts.model import AccountStatus, AccountView, IdentityKey
from gateway.accounts.service import AccountGraph, SessionKey
from gateway.audit import ClientInfo, record, record_by
from gateway.config import TokenLifetimes
from gateway.errors import AccountDisabled, InvalidRefreshToken, RefreshTokenReused, declares
from gateway.metrics import REFRESHES, TOKEN_CHECKS
from gateway.sessions.cache import TokenCache
from gateway.sessions.issuing import Facts, Issuer, session_row
from gateway.sessions.model import IssuedTokens, SessionView, Viewer
from gateway.sessions.rotation import OneStepRefresh
from gateway.sessions.sign_in import OneStepSignIn, SignedIn
from gateway.sessions.statements import (
    INSERT_REFRESH_TOKEN,
    INSERT_SESSION,
    LIVE_SESSION,
    LIVE_TOKEN,
    REFRESH_TOKEN_USED_AT,
    SPEND_REFRESH_TOKEN,
    TOUCH_SESSION,
)
from gateway.sessions.tokens import (
    AccessTokens,
    TokenRejected,
    hash_refresh_token,
)
from gateway.store.broadcast import account_key, changed, session_key
from gateway.store.db import Database, execute_core
from gateway.store.models import LoginSession, RefreshToken, utcnow


class _Held(NamedTuple):
    """A live session held (locked) for a refresh, with the token presented and the account."""

    token_id: uuid.UUID
    session_id: uuid.UUID
    app_key: str
    expires_at: datetime
    account: AccountView


async def _touch(s: AsyncSession, session_id: uuid.UUID, **values: Any) -> None:
    """Update one session row; a change that revokes it or moves it to another account is
    broadcast (the token cache of every replica drops it when this commits)."""
    await execute_core(s, TOUCH_SESSION, {"sid": session_id, **values})
    if values.keys() & {"revoked_at", "account_id"}:
        changed(s, [session_key(session_id)])


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
        fast_paths: bool = True,
    ) -> None:
        self._db = db
        # False (``[performance] fast_paths``): every login and refresh takes the reference path
        self._fast_paths = fast_paths
        self._cache = cache if cache is not None else TokenCache(db.broadcast, size=0)
        self._accounts = accounts
        accounts.on_merge(self._adopt)
        self._tokens = tokens
        self._lifetimes = lifetimes
        self._issuer = Issuer(tokens, lifetimes, kind_of)
        self._one_step = OneStepSignIn(db, accounts, self._issuer)
        self._one_step_refresh = OneStepRefresh(db, self._issuer)

    @staticmethod
    async def _adopt(s: AsyncSession, absorbed: list[uuid.UUID], survivor: uuid.UUID) -> None:
        """A merge: the absorbed accounts' sessions now act for the survivor."""
        changed(s, map(account_key, absorbed))
        await s.execute(
            update(LoginSession)
            .where(col(LoginSession.account_id).in_(absorbed))
            .values(account_id=survivor)
        )

    @declares(AccountDisabled)
    async def start(
        self, s: AsyncSession, account_id: uuid.UUID, app_key: str, client: ClientInfo
    ) -> IssuedTokens:
        """Open a login session inside the caller's transaction. A disabled account gets
        none (``AccountDisabled``); a login cancels a pending deletion, and says so."""
        account, cancelled = await self._accounts.admit_login(s, account_id)
        if cancelled:
            record(s, "deletion_cancelled", client, account_id=account_id, app_key=app_key)
        now = utcnow()
        facts = Facts(uuid.uuid4(), account_id, app_key, self._issuer.session_end(app_key, now))
        await execute_core(s, INSERT_SESSION, session_row(facts, client, now))
        issued, refresh_row = self._issuer.issue(facts, now)
        await execute_core(s, INSERT_REFRESH_TOKEN, refresh_row)
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
        lost the answer): then it gets a new pair too and the session lives on.

        Core statements, no ORM unit of work: the session row locked and read with its token
        and account in one statement, then the token spent, the session touched, the new token
        and the audit row written. On PostgreSQL the usual case (an unspent token) is all of
        that in one statement, ``ROTATE`` (SQLite: one hand-off to the writer thread,
        ``sessions.rotation``); what it leaves (``None``) takes the full path."""
        now = utcnow()
        rotated = None
        if self._fast_paths:
            rotated = await self._one_step_refresh.rotate(token, client, now)
        if rotated is not None:
            _REFRESHED.inc()
            return rotated
        async with self._db.transaction() as s:
            held = await self._live_session(s, token, now)
            outcome = await self._spend(s, held.token_id, now)
            if outcome == "reused":
                await _touch(s, held.session_id, revoked_at=now)
                issued = None
            else:
                issued = await self._rotate(s, held, now)
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
        REFRESHES.labels({"spent": "ok", "grace": "grace", "reused": "reused"}[outcome]).inc()
        if issued is None:
            raise RefreshTokenReused()
        return issued

    async def _rotate(self, s: AsyncSession, held: _Held, now: datetime) -> IssuedTokens:
        """A new pair for a held session; a merged account's session now acts for its heir."""
        account: AccountView | None = held.account
        account_id = held.account.id
        moved: dict[str, Any] = {}
        if held.account.status == AccountStatus.MERGED:  # the session moves to the heir
            account_id, account = await self._accounts.survivor(s, account_id), None
            moved = {"account_id": account_id}
        await _touch(s, held.session_id, last_used_at=now, **moved)
        facts = Facts(held.session_id, account_id, held.app_key, held.expires_at)
        issued, refresh_row = self._issuer.issue(facts, now)
        await execute_core(s, INSERT_REFRESH_TOKEN, refresh_row)
        return replace(issued, account=account)

    async def _spend(self, s: AsyncSession, token_id: uuid.UUID, now: datetime) -> str:
        """``spent`` (first use), ``grace`` (used moments ago) or ``reused``. The caller holds
        the session's lock, so concurrent refreshes of one token take turns here."""
        params = {"token_id": token_id, "now": now}
        spent = await execute_core(s, SPEND_REFRESH_TOKEN, params)
        if spent.rowcount == 1:
            return "spent"
        grace = timedelta(seconds=self._lifetimes.refresh_reuse_grace_seconds)
        used_at = (await execute_core(s, REFRESH_TOKEN_USED_AT, params)).scalar_one_or_none()
        if grace and used_at is not None and now - used_at <= grace:
            return "grace"
        return "reused"

    @staticmethod
    async def _live_session(s: AsyncSession, token: str, now: datetime) -> _Held:
        """The live session a refresh token belongs to, locked (PostgreSQL: ``FOR UPDATE OF``
        the session row; SQLite's writer lock already serialises), with its account, in one
        statement; INVALID_REFRESH_TOKEN otherwise."""
        params = {"digest": hash_refresh_token(token), "now": now}
        row = (await execute_core(s, LIVE_SESSION, params)).first()
        if row is None:
            raise InvalidRefreshToken()
        return _Held(row[0], row[1], row[2], row[3], AccountGraph.account_from_row(row[4:]))

    async def logout(self, viewer: Viewer, everywhere: bool, client: ClientInfo) -> int:
        now = utcnow()
        async with self._db.transaction() as s:
            query = update(LoginSession).where(col(LoginSession.revoked_at).is_(None))
            if everywhere:
                query = query.where(col(LoginSession.account_id) == viewer.account_id)
                changed(s, [account_key(viewer.account_id)])
            else:
                query = query.where(col(LoginSession.id) == viewer.session_id)
                changed(s, [session_key(viewer.session_id)])
            result = await s.execute(query.values(revoked_at=now))
            record_by(
                s,
                "logout",
                client,
                viewer,
                everywhere=everywhere,
            )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def revoke_others(self, s: AsyncSession, viewer: Viewer) -> int:
        """Inside the caller's transaction: every other live session of the account."""
        changed(s, [account_key(viewer.account_id)])
        result = await s.execute(
            update(LoginSession)
            .where(
                col(LoginSession.account_id) == viewer.account_id,
                col(LoginSession.id) != viewer.session_id,
                col(LoginSession.revoked_at).is_(None),
            )
            .values(revoked_at=utcnow())
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def revoke(self, viewer: Viewer, session_id: uuid.UUID, client: ClientInfo) -> bool:
        """Revoke one session of the viewer's own account; False when there is no such one."""
        async with self._db.transaction() as s:
            changed(s, [session_key(session_id)])
            result = await s.execute(
                update(LoginSession)
                .where(
                    col(LoginSession.id) == session_id,
                    col(LoginSession.account_id) == viewer.account_id,
                    col(LoginSession.revoked_at).is_(None),
                )
                .values(revoked_at=utcnow())
            )
            done = bool(result.rowcount)  # type: ignore[attr-defined]
            if done:
                record_by(
                    s,
                    "revoke_session",
                    client,
                    viewer,
                    revoked=str(session_id),
                )
        return done

    async def revoke_all(self, s: AsyncSession, account_ids: list[uuid.UUID]) -> int:
        """Inside the caller's transaction: every live session of these accounts, at once
        (every replica's token cache hears it when the transaction commits)."""
        changed(s, map(account_key, account_ids))
        result = await s.execute(
            update(LoginSession)
            .where(
                col(LoginSession.account_id).in_(account_ids),
                col(LoginSession.revoked_at).is_(None),
            )
            .values(revoked_at=utcnow())
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    @staticmethod
    async def erase(s: AsyncSession, account_ids: list[uuid.UUID]) -> None:
        """Inside the caller's transaction: the accounts' sessions and refresh tokens, with
        their client facts, are gone (their tokens with them)."""
        changed(s, map(account_key, account_ids))
        sessions = select(col(LoginSession.id)).where(col(LoginSession.account_id).in_(account_ids))
        await s.execute(delete(RefreshToken).where(col(RefreshToken.session_id).in_(sessions)))
        await s.execute(delete(LoginSession).where(col(LoginSession.account_id).in_(account_ids)))

    async def active(self, account_id: uuid.UUID) -> list[SessionView]:
        return await self._sessions_of(account_id, live_only=True, limit=100)

    async def history(self, account_id: uuid.UUID) -> list[SessionView]:
        """Every session the account had, revoked and expired ones included."""
        return await self._sessions_of(account_id, live_only=False, limit=10_000)

    async def _sessions_of(
        self, account_id: uuid.UUID, *, live_only: bool, limit: int
    ) -> list[SessionView]:
        query = select(LoginSession).where(col(LoginSession.account_id) == account_id)
        if live_only:
            query = query.where(
                col(LoginSession.revoked_at).is_(None), col(LoginSession.expires_at) > utcnow()
            )
        query = query.order_by(col(LoginSession.last_used_at).desc()).limit(limit)
        async with self._db.reader() as s:
            rows = (await s.execute(query)).scalars().all()
        return [
            SessionView(
                r.id,
                r.app_key,
                r.platform,
                r.channel,
                r.device_param,
                r.ip,
                r.user_agent,
                r.created_at,
                r.last_used_at,
                r.expires_at,
                r.revoked_at,
            )
            for r in rows
        ]

    async def authenticate(self, access_token: str) -> Viewer:
        """Signature first (no I/O), then the token cache (``sessions.cache``: what every
        revocation and account change invalidates on every replica when it commits), else one
        indexed read. ``TokenRejected`` for an expired, revoked or foreign token, or a
        disabled account."""
        claims = self._tokens.check(access_token)
        hit = self._cache.get(claims.session_id)
        if hit is not None and hit.expires_at > utcnow():
            _FROM_CACHE.inc()
            return Viewer(
                hit.account_id,
                claims.session_id,
                hit.app_key,
                hit.expires_at,
                hit.account,
                hit.created_at,
            )
        return await self._authenticate_from_database(claims.session_id)

    async def _authenticate_from_database(self, session_id: uuid.UUID) -> Viewer:
        epoch = self._cache.epoch()
        _FROM_DATABASE.inc()
        rows = await self._db.read(LIVE_TOKEN, {"session_id": session_id, "now": utcnow()})
        if not rows:
            raise TokenRejected("INVALID_TOKEN")  # revoked, or its session ended
        app_key, expires_at, created_at = rows[0][0], rows[0][1], rows[0][2]
        account = AccountGraph.account_from_row(rows[0][3:])
        if account.status in (AccountStatus.DISABLED, AccountStatus.DELETED):
            raise TokenRejected("INVALID_TOKEN")
        if account.status == AccountStatus.MERGED:
            async with self._db.reader() as s:
                survivor_id = await self._accounts.survivor(s, account.id)
            return Viewer(
                survivor_id, session_id, app_key, expires_at, session_created_at=created_at
            )
        self._cache.put(epoch, session_id, account, app_key, expires_at, created_at)
        return Viewer(account.id, session_id, app_key, expires_at, account, created_at)
