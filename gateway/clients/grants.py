"""Authorization codes and consents: what a person granted a client, and the one-time codes
that carry a grant to the client's back end.

A code is kept as its SHA-256, lives ``CODE_SECONDS`` and is spent by one conditional UPDATE,
so that of two redemptions (racing or replayed) exactly one opens a login session; the other
ends the session the first one opened (RFC 6749 §4.1.2: a reused code revokes what it issued).
The session is the gateway's own (``Sessions.start``): its refresh tokens rotate with reuse
detection like every other login's, under the app key ``oidc:<client_id>``.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.audit import ClientInfo, record
from gateway.clients.tables import OidcClient, OidcCode, OidcConsent
from gateway.sessions import repository
from gateway.sessions.model import IssuedTokens
from gateway.sessions.service import Sessions
from gateway.sessions.tokens import hash_refresh_token
from gateway.store.db import Database, UnitOfWork
from gateway.store.models import utcnow

CODE_SECONDS = 60
APP_PREFIX = "oidc:"


def app_key(client_id: str) -> str:
    """The app key of the login sessions a client's codes open."""
    return APP_PREFIX + client_id


def client_of(app: str) -> str | None:
    return app.removeprefix(APP_PREFIX) if app.startswith(APP_PREFIX) else None


def hash_code(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


@dataclass(frozen=True)
class CodeGrant:
    """What an authorization code carries from the authorize step to the token step."""

    client_id: str
    account_id: uuid.UUID
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int
    amr: tuple[str, ...]
    expires_at: datetime
    used: bool = False


@dataclass(frozen=True)
class RefreshGrant:
    """The grant behind a refresh token: its session's client, account and scope (authlib's
    ``TokenMixin`` face: ``check_client``, ``get_scope``)."""

    client_id: str
    account_id: uuid.UUID
    scope: str
    session_id: uuid.UUID | None = None
    expires_at: datetime | None = None

    def check_client(self, client: Any) -> bool:
        return bool(client.get_client_id() == self.client_id)

    def get_scope(self) -> str:
        return self.scope


@dataclass(frozen=True)
class ConsentView:
    client_id: str
    client_name: str
    scopes: tuple[str, ...]
    granted_at: datetime


class CodeReused(Exception):
    """The code was redeemed before: the session it opened is ended now."""


class Codes:
    def __init__(self, db: Database, sessions: Sessions) -> None:
        self.db = self._db = db
        self._sessions = sessions

    async def save(self, code: str, grant: CodeGrant, client: ClientInfo) -> None:
        """Keep a new code (its hash), and audit the authorization it carries."""

        async def work(s: UnitOfWork) -> None:
            record(
                s,
                "oidc_authorize",
                client,
                account_id=grant.account_id,
                client_id=grant.client_id,
                scope=grant.scope,
                amr=list(grant.amr),
            )
            s.add(
                OidcCode(
                    code_hash=hash_code(code),
                    client_id=grant.client_id,
                    account_id=grant.account_id,
                    redirect_uri=grant.redirect_uri,
                    scope=grant.scope,
                    nonce=grant.nonce,
                    code_challenge=grant.code_challenge,
                    code_challenge_method=grant.code_challenge_method,
                    auth_time=grant.auth_time,
                    amr=list(grant.amr),
                    expires_at=grant.expires_at,
                )
            )

        await self._db.run_in_transaction(work)

    async def find(self, code: str) -> CodeGrant | None:
        """The grant a code carries (spent or not), for the token endpoint's checks."""
        async with self._db.reader() as s:
            query = select(OidcCode).where(col(OidcCode.code_hash) == hash_code(code))
            row = (await s.execute(query)).scalar_one_or_none()
        if row is None:
            return None
        return CodeGrant(
            row.client_id,
            row.account_id,
            row.redirect_uri,
            row.scope,
            row.nonce,
            row.code_challenge,
            row.code_challenge_method,
            row.auth_time,
            tuple(row.amr),
            row.expires_at,
            row.used_at is not None,
        )

    async def redeem(self, code: str, client: ClientInfo) -> IssuedTokens:
        """Spend the code and open its login session, in one transaction; ``CodeReused`` (after
        ending what the first redemption opened) when it was spent already or has expired."""
        digest, now = hash_code(code), utcnow()

        issued = await self._db.run_in_transaction(lambda s: self._spend(s, digest, now, client))
        if issued is not None:
            return issued
        await self._revoke_first_use(digest, client)
        raise CodeReused()

    async def _spend(
        self, s: UnitOfWork, digest: str, now: datetime, client: ClientInfo
    ) -> IssuedTokens | None:
        """The code spent and its session opened; None when it was spent or has expired."""
        spent = await s.execute(
            update(OidcCode)
            .where(
                col(OidcCode.code_hash) == digest,
                col(OidcCode.used_at).is_(None),
                col(OidcCode.expires_at) > now,
            )
            .values(used_at=now)
            .returning(col(OidcCode.client_id), col(OidcCode.account_id))
        )
        first = spent.first()
        if first is None:
            return None
        issued = await self._sessions.start(s, first[1], app_key(first[0]), client)
        await s.execute(
            update(OidcCode)
            .where(col(OidcCode.code_hash) == digest)
            .values(session_id=issued.session_id)
        )
        record(
            s,
            "oidc_token",
            client,
            account_id=first[1],
            session_id=issued.session_id,
            app_key=app_key(first[0]),
            client_id=first[0],
            grant="authorization_code",
        )
        return issued

    async def _revoke_first_use(self, digest: str, client: ClientInfo) -> None:
        async def work(s: UnitOfWork) -> None:
            query = select(OidcCode).where(col(OidcCode.code_hash) == digest)
            row = (await s.execute(query)).scalar_one_or_none()
            if row is None or row.session_id is None:
                return
            await repository.revoke(s, row.session_id, utcnow(), row.account_id)
            record(
                s,
                "oidc_code_reused",
                client,
                account_id=row.account_id,
                session_id=row.session_id,
                client_id=row.client_id,
            )

        await self._db.run_in_transaction(work)

    async def refresh_grant(self, token: str) -> RefreshGrant | None:
        """The client, account and scope behind a refresh token (spent or not: reuse is the
        rotation's to detect), when its session was opened by a code."""
        held = await self._db.run_in_transaction(
            lambda s: repository.held_session(s, hash_refresh_token(token), utcnow())
        )
        client_id = client_of(held.app_key) if held is not None else None
        if held is None or client_id is None:
            return None
        grant = await self.grant_of(held.session_id)
        if grant is None:
            return None
        return RefreshGrant(client_id, held.account.id, grant[1], held.session_id, held.expires_at)

    async def grant_of(self, session_id: uuid.UUID) -> tuple[str, str] | None:
        """The client and scope of the grant a login session was opened for."""
        async with self._db.reader() as s:
            query = select(col(OidcCode.client_id), col(OidcCode.scope)).where(
                col(OidcCode.session_id) == session_id
            )
            row = (await s.execute(query)).first()
        return (row[0], row[1]) if row else None

    async def prune(self, before: timedelta = timedelta(days=1)) -> None:
        """Codes never redeemed and long expired (redeemed ones name their session)."""
        cutoff = utcnow() - before
        unredeemed = delete(OidcCode).where(
            col(OidcCode.session_id).is_(None), col(OidcCode.expires_at) < cutoff
        )
        await self._db.run_in_transaction(lambda s: s.execute(unredeemed))


class Consents:
    def __init__(self, db: Database) -> None:
        self._db = db

    @staticmethod
    async def adopt(s: AsyncSession, absorbed: list[uuid.UUID], survivor: uuid.UUID) -> None:
        """A merge (the account graph's hook, in its transaction): the absorbed accounts'
        consents now speak for the survivor, except for a site the survivor had consented to
        already, whose one live consent stays the survivor's own."""
        now = utcnow()
        survivors = select(col(OidcConsent.client_id)).where(
            col(OidcConsent.account_id) == survivor, col(OidcConsent.revoked_at).is_(None)
        )
        theirs = col(OidcConsent.account_id).in_(absorbed)
        await s.execute(
            update(OidcConsent)
            .where(theirs, col(OidcConsent.client_id).in_(survivors))
            .values(revoked_at=now)
        )
        await s.execute(update(OidcConsent).where(theirs).values(account_id=survivor))

    @staticmethod
    async def forget(s: AsyncSession, erased: list[uuid.UUID]) -> None:
        """An erasure (the account graph's hook, in its transaction): the person's consents
        and any authorization code still naming them go with it."""
        await s.execute(delete(OidcConsent).where(col(OidcConsent.account_id).in_(erased)))
        await s.execute(delete(OidcCode).where(col(OidcCode.account_id).in_(erased)))

    async def covers(self, account_id: uuid.UUID, client_id: str, scopes: set[str]) -> bool:
        """Whether the person's live consent to the client covers ``scopes``."""
        live = await self._live(account_id, client_id)
        return live is not None and scopes <= set(live.scopes)

    async def grant(
        self, account_id: uuid.UUID, client_id: str, scopes: set[str], client: ClientInfo
    ) -> None:
        """Remember the consent (with what was consented before, one live row)."""
        now = utcnow()

        async def work(s: UnitOfWork) -> None:
            before = await s.execute(
                update(OidcConsent)
                .where(*_live_where(account_id, client_id))
                .values(revoked_at=now)
                .returning(col(OidcConsent.scopes))
            )
            earlier = {scope for row in before for scope in row[0]}
            s.add(
                OidcConsent(
                    account_id=account_id, client_id=client_id, scopes=sorted(scopes | earlier)
                )
            )
            record(
                s,
                "oidc_consent",
                client,
                account_id=account_id,
                client_id=client_id,
                scopes=sorted(scopes),
            )

        await self._db.run_in_transaction(work)

    async def of(self, account_id: uuid.UUID) -> list[ConsentView]:
        """The clients the person consented to (live consents), with their names."""
        async with self._db.reader() as s:
            query = (
                select(OidcConsent, col(OidcClient.name))
                .join(OidcClient, col(OidcClient.client_id) == col(OidcConsent.client_id))
                .where(
                    col(OidcConsent.account_id) == account_id, col(OidcConsent.revoked_at).is_(None)
                )
                .order_by(col(OidcConsent.granted_at))
            )
            rows = (await s.execute(query)).all()
        return [ConsentView(c.client_id, name, tuple(c.scopes), c.granted_at) for c, name in rows]

    async def revoke(self, account_id: uuid.UUID, client_id: str, client: ClientInfo) -> bool:
        """Withdraw the consent and end the client's live sessions of the account; False when
        there was no live consent."""
        now = utcnow()
        mine = app_key(client_id)
        sessions = await repository.sessions_of(self._db, account_id, live_after=now, limit=1000)
        live = [v for v in sessions if v.app_key == mine]

        async def work(s: UnitOfWork) -> bool:
            done = await s.execute(
                update(OidcConsent)
                .where(*_live_where(account_id, client_id))
                .values(revoked_at=now)
            )
            if not done.rowcount:  # type: ignore[attr-defined]
                return False
            for session in live:
                await repository.revoke(s, session.id, now, account_id)
            record(
                s,
                "oidc_consent_revoked",
                client,
                account_id=account_id,
                client_id=client_id,
                sessions=len(live),
            )
            return True

        return await self._db.run_in_transaction(work)

    async def _live(self, account_id: uuid.UUID, client_id: str) -> OidcConsent | None:
        async with self._db.reader() as s:
            query = select(OidcConsent).where(*_live_where(account_id, client_id))
            return (await s.execute(query)).scalars().first()


def _live_where(account_id: uuid.UUID, client_id: str) -> tuple[ColumnElement[bool], ...]:
    return (
        and_(
            col(OidcConsent.account_id) == account_id,
            col(OidcConsent.client_id) == client_id,
            col(OidcConsent.revoked_at).is_(None),
        ),
    )


async def audit(
    codes: Codes, kind: str, client: ClientInfo, account_id: uuid.UUID, client_id: str | None
) -> None:
    """An event of the provider's with no change of its own to ride on (a logout)."""

    async def work(s: UnitOfWork) -> None:
        record(s, kind, client, account_id=account_id, client_id=client_id)

    await codes.db.run_in_transaction(work)
