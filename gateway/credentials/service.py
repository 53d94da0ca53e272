"""Username/password accounts: register, log in, change the password, bind one to an account.

No enumeration: an unknown username and a wrong password get the same ``INVALID_CREDENTIALS``
after the same argon2 work (a dummy hash stands in for the missing one).
"""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.accounts import graph
from gateway.accounts.graph import IdentityKey
from gateway.audit import ClientInfo, record, record_by
from gateway.config import AppConfig
from gateway.credentials.passwords import (
    MAX_LENGTH,
    PasswordHashing,
    check_policy,
    normalize_username,
)
from gateway.credentials.throttle import Throttle
from gateway.errors import GatewayError
from gateway.metrics import LOGINS
from gateway.sessions.service import IssuedTokens, Sessions, Viewer, survivor
from gateway.store.db import Database
from gateway.store.models import Credential, Identity, IdentityKind, utcnow


def _invalid_credentials() -> GatewayError:
    return GatewayError("INVALID_CREDENTIALS", "Wrong username or password.")


def _taken() -> GatewayError:
    return GatewayError(
        "USERNAME_TAKEN", "This username is taken; choose another.", field="username"
    )


def _key(username: str) -> IdentityKey:
    return IdentityKey(IdentityKind.USERNAME, "", username)


class Passwords:
    def __init__(
        self, db: Database, hashing: PasswordHashing, throttle: Throttle, sessions: Sessions
    ) -> None:
        self._db = db
        self._hashing = hashing
        self._throttle = throttle
        self._sessions = sessions

    async def register(
        self, app: AppConfig, raw_username: str, password: str, client: ClientInfo
    ) -> IssuedTokens:
        username = normalize_username(raw_username)
        check_policy(password, username)
        ip_key = f"register-ip:{client.ip}"
        await self._throttle.admit([ip_key])  # only failed registrations stay counted
        digest = await self._hashing.hash(password)
        try:
            async with self._db.transaction() as s:
                if await graph.find(s, [_key(username)]):
                    raise _taken()
                resolution = await graph.find_or_create(s, [_key(username)], app.key)
                await self._add_credential(s, resolution.account_id, username, digest)
                tokens = await self._sessions.start(s, resolution.account_id, app.key, client)
                record(
                    s,
                    "register",
                    client,
                    account_id=resolution.account_id,
                    session_id=tokens.session_id,
                    app_key=app.key,
                    door="password",
                )
        except IntegrityError:
            raise _taken() from None
        await self._throttle.succeeded(forgive=[], release=[ip_key])
        return tokens

    async def login(
        self, app: AppConfig, raw_username: str, password: str, client: ClientInfo
    ) -> IssuedTokens:
        username = normalize_username(raw_username)
        keys = [f"user:{username}", f"ip:{client.ip}"]
        try:
            await self._throttle.admit(keys)
        except GatewayError as exc:
            await self._failed(app, client, exc.code, None)
            raise
        async with self._db.reader() as s:
            found = await _credential(s, username)
        ok, rehashed = await self._hashing.verify(
            found[1].password_hash if found else None, password[: MAX_LENGTH * 4]
        )
        if not ok or found is None:
            await self._failed(
                app, client, "INVALID_CREDENTIALS", found[0].account_id if found else None
            )
            raise _invalid_credentials()
        LOGINS.labels("password", "ok").inc()
        await self._throttle.succeeded(forgive=keys[:1], release=keys[1:])
        identity, credential = found
        async with self._db.transaction() as s:
            if rehashed:
                await _set_hash(s, credential.id, rehashed)
            account_id = await survivor(s, identity.account_id)
            tokens = await self._sessions.start(s, account_id, app.key, client)
            record(
                s,
                "login",
                client,
                account_id=account_id,
                session_id=tokens.session_id,
                app_key=app.key,
                door="password",
                rehashed=bool(rehashed),
            )
        return tokens

    async def _failed(
        self, app: AppConfig, client: ClientInfo, reason: str, account_id: uuid.UUID | None
    ) -> None:
        """Audit a refused password login; the account only when the username exists."""
        LOGINS.labels("password", reason).inc()
        async with self._db.transaction() as s:
            record(
                s,
                "login_failed",
                client,
                account_id=account_id,
                app_key=app.key,
                door="password",
                reason=reason,
            )

    async def change_password(
        self, viewer: Viewer, current: str, new: str, client: ClientInfo
    ) -> int:
        """Returns how many other sessions were revoked (all of them: ASVS 7.4.3)."""
        async with self._db.reader() as s:
            found = await _account_credentials(s, viewer.account_id)
        if not found:
            raise GatewayError(
                "NO_PASSWORD", "This account has no password: use bindCredential first."
            )
        # a merge can leave one account with two usernames: the change covers every one
        keys = [f"user:{identity.subject}" for identity, _ in found]
        await self._throttle.admit(keys)
        for _, credential in found:
            ok, _ = await self._hashing.verify(credential.password_hash, current[: MAX_LENGTH * 4])
            if ok:
                break
        else:
            raise _invalid_credentials()
        await self._throttle.succeeded(forgive=keys, release=[])
        for identity, _ in found:
            check_policy(new, identity.subject)
        digest = await self._hashing.hash(new)
        async with self._db.transaction() as s:
            for _, credential in found:
                await _set_hash(s, credential.id, digest)
            revoked = await self._sessions.revoke_others(s, viewer)
            record_by(
                s,
                "password_change",
                client,
                viewer,
                revoked=revoked,
            )
        return revoked

    async def bind(
        self, viewer: Viewer, raw_username: str, password: str, client: ClientInfo
    ) -> None:
        username = normalize_username(raw_username)
        check_policy(password, username)
        async with self._db.reader() as s:
            if await _account_credentials(s, viewer.account_id):
                raise GatewayError(
                    "CREDENTIAL_EXISTS",
                    "This account already has a username and password: use changePassword.",
                )
        digest = await self._hashing.hash(password)
        try:
            async with self._db.transaction() as s:
                await graph.link(s, viewer.account_id, [_key(username)], viewer.app_key)
                await self._add_credential(s, viewer.account_id, username, digest)
                record_by(
                    s,
                    "bind_credential",
                    client,
                    viewer,
                )
        except (graph.AccountConflict, IntegrityError):
            raise _taken() from None

    @staticmethod
    async def _add_credential(
        s: AsyncSession, account_id: uuid.UUID, username: str, digest: str
    ) -> None:
        found = await graph.find(s, [_key(username)])
        identity = found[_key(username)]
        if identity.account_id != account_id:
            raise _taken()
        s.add(Credential(identity_id=identity.id, password_hash=digest))
        await s.flush()


async def _credential(s: AsyncSession, username: str) -> tuple[Identity, Credential] | None:
    query = (
        select(Identity, Credential)
        .join(Credential, col(Credential.identity_id) == col(Identity.id))
        .where(
            col(Identity.kind) == IdentityKind.USERNAME,
            col(Identity.scope) == "",
            col(Identity.subject) == username,
        )
    )
    row = (await s.execute(query)).first()
    return (row[0], row[1]) if row else None


async def _account_credentials(
    s: AsyncSession, account_id: uuid.UUID
) -> list[tuple[Identity, Credential]]:
    query = (
        select(Identity, Credential)
        .join(Credential, col(Credential.identity_id) == col(Identity.id))
        .where(col(Identity.account_id) == account_id)
        .order_by(col(Identity.created_at))
    )
    return [(row[0], row[1]) for row in (await s.execute(query)).all()]


async def _set_hash(s: AsyncSession, credential_id: uuid.UUID, digest: str) -> None:
    await s.execute(
        update(Credential)
        .where(col(Credential.id) == credential_id)
        .values(password_hash=digest, updated_at=utcnow())
    )
