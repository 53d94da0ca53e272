"""Username/password accounts: register, log in, change the password, bind one to an account.

No enumeration: an unknown username and a wrong password get the same ``INVALID_CREDENTIALS``
after the same argon2 work (a dummy hash stands in for the missing one).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from gateway.accounts.model import AccountGone, PasswordRecord, normalize_username
from gateway.accounts.service import AccountGraph
from gateway.audit import ClientInfo, record, record_by
from gateway.config import AppConfig
from gateway.credentials.devices import DeviceCookies
from gateway.credentials.passwords import (
    MAX_LENGTH,
    PasswordHashing,
    check_policy,
)
from gateway.errors import (
    N_,
    CredentialExists,
    InvalidCredentials,
    InvalidInput,
    NoPassword,
    RateLimited,
    TemporarilyUnavailable,
    Throttled,
    UsernameTaken,
    WeakPassword,
    declares,
)
from gateway.metrics import LOGINS
from gateway.sessions.model import IssuedTokens, Viewer
from gateway.sessions.service import Sessions
from gateway.store.db import Database, UnitOfWork
from gateway.throttle import Throttle, WindowLimit


class Passwords:
    def __init__(
        self,
        db: Database,
        accounts: AccountGraph,
        hashing: PasswordHashing,
        throttle: Throttle,
        sessions: Sessions,
        devices: DeviceCookies,
        registrations: WindowLimit,
    ) -> None:
        self._db = db
        self._accounts = accounts
        self._hashing = hashing
        self._throttle = throttle
        self._sessions = sessions
        self._devices = devices
        self._registrations = registrations

    @declares(
        InvalidInput, WeakPassword, UsernameTaken, Throttled, RateLimited, TemporarilyUnavailable
    )
    async def register(
        self, app: AppConfig, raw_username: str, password: str, client: ClientInfo
    ) -> IssuedTokens:
        await self._registrations.spend(
            f"register:{client.ip}",
            N_("Too many registrations from this address; retry in %(seconds)s seconds."),
        )
        username = normalize_username(raw_username)
        check_policy(password, username)
        # per address, like a login's: only failures count (a taken username answers whether it
        # exists), never registrations in flight, so a burst of people behind one NAT address is
        # metered by registrations_per_hour above and never held here
        ip_key = f"register-ip:{client.ip}"
        await self._throttle.admit([], addresses=[ip_key])
        digest = await self._hashing.hash(password)
        try:
            return await self._create(app, username, digest, client)
        except UsernameTaken:
            await self._throttle.failed([ip_key])
            raise

    async def _create(
        self, app: AppConfig, username: str, digest: str, client: ClientInfo
    ) -> IssuedTokens:
        """The new account, its username and password, its first session, in one transaction."""

        async def work(s: UnitOfWork) -> IssuedTokens:
            resolution = await self._accounts.add_username(s, None, username, digest, app.key)
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
            return tokens

        return await self._db.run_in_transaction(work)

    @declares(InvalidInput, InvalidCredentials, Throttled, TemporarilyUnavailable, Sessions.start)
    async def login(
        self,
        app: AppConfig,
        raw_username: str,
        password: str,
        client: ClientInfo,
        device_cookie: str | None = None,
    ) -> IssuedTokens:
        """A login; ``device_cookie`` from an earlier login of this username (see ``devices``)
        counts the attempt on that device alone."""
        found, rehashed = await self._verified(
            app.key, raw_username, password, client, device_cookie
        )
        return await self._open(app, found, rehashed, client)

    @declares(InvalidInput, InvalidCredentials, Throttled, TemporarilyUnavailable)
    async def check(
        self,
        app_key: str,
        raw_username: str,
        password: str,
        client: ClientInfo,
        device_cookie: str | None = None,
    ) -> uuid.UUID:
        """A login that opens no API session (the hosted login page opens a browser's,
        ``sessions.browser``): throttled, audited on failure and rehashed as ``login``; the
        account the password opens (a merged one's survivor)."""
        found, rehashed = await self._verified(
            app_key, raw_username, password, client, device_cookie
        )

        async def work(s: UnitOfWork) -> uuid.UUID:
            account_id = await self._accounts.survivor(s, found.identity.account_id)
            if rehashed:
                await self._accounts.set_password_hash(s, found.credential_id, rehashed)
            return account_id

        return await self._db.run_in_transaction(work)

    async def _verified(
        self,
        app_key: str,
        raw_username: str,
        password: str,
        client: ClientInfo,
        device_cookie: str | None,
    ) -> tuple[PasswordRecord, str | None]:
        """The username's credential when ``password`` matches (and its rehash, if due);
        throttled before, the failure counted and audited after."""
        username = normalize_username(raw_username)
        keys, slow, addresses = self._keys(username, client, device_cookie)
        try:
            await self._throttle.admit(keys, slow, addresses)
        except (Throttled, TemporarilyUnavailable) as exc:
            await self._failed(app_key, client, exc.code, None)
            raise
        found = await self._accounts.password_by_username(username)
        ok, rehashed = await self._hashing.verify(
            found.password_hash if found else None, password[: MAX_LENGTH * 4]
        )
        if not ok or found is None:
            account_id = found.identity.account_id if found else None
            await self._throttle.failed(addresses)
            await self._failed(app_key, client, "INVALID_CREDENTIALS", account_id)
            raise InvalidCredentials()
        LOGINS.labels("password", "ok").inc()
        await self._throttle.succeeded(forgive=keys, release=slow)
        return found, rehashed

    async def _open(
        self, app: AppConfig, found: PasswordRecord, rehashed: str | None, client: ClientInfo
    ) -> IssuedTokens:
        """A verified password's session, and its rehash written, in one transaction."""

        async def work(s: UnitOfWork) -> IssuedTokens:
            account_id = await self._accounts.survivor(s, found.identity.account_id)
            try:  # the account first (locked against an erasure), then the credential row
                tokens = await self._sessions.start(s, account_id, app.key, client)
            except AccountGone:  # erased since the password was read: the name is gone
                raise InvalidCredentials() from None
            if rehashed:
                await self._accounts.set_password_hash(s, found.credential_id, rehashed)
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

        return await self._db.run_in_transaction(work)

    def _keys(
        self, username: str, client: ClientInfo, device_cookie: str | None
    ) -> tuple[list[str], list[str], list[str]]:
        """Throttle keys (``gateway.throttle``): a known device's own; else (username, address)
        strictly, the username on its queue, and the address's failures."""
        device = self._devices.device(device_cookie, username)
        if device is not None:
            return [f"device:{device}"], [], []
        return [f"user-ip:{username}:{client.ip}"], [f"user:{username}"], [f"ip:{client.ip}"]

    def device_cookie(self, raw_username: str) -> str:
        """A new device cookie for a client that just logged in as ``raw_username``."""
        return self._devices.issue(normalize_username(raw_username))

    async def _failed(
        self, app_key: str, client: ClientInfo, reason: str, account_id: uuid.UUID | None
    ) -> None:
        """Audit a refused password login; the account only when the username exists."""
        LOGINS.labels("password", reason).inc()

        async def work(s: UnitOfWork) -> None:
            record(
                s,
                "login_failed",
                client,
                account_id=account_id,
                app_key=app_key,
                door="password",
                reason=reason,
            )

        await self._db.run_in_transaction(work)

    @declares(NoPassword, InvalidCredentials, WeakPassword, Throttled, TemporarilyUnavailable)
    async def change_password(
        self, viewer: Viewer, current: str, new: str, client: ClientInfo
    ) -> int:
        """Returns how many other sessions were revoked (all of them: ASVS 7.4.3)."""
        found = await self._accounts.passwords_of(viewer.account_id)
        if not found:
            raise NoPassword()
        await self._confirm(found, current, InvalidCredentials())
        # a merge can leave one account with two usernames: the change covers every one
        for record_ in found:
            check_policy(new, record_.identity.subject)
        digest = await self._hashing.hash(new)

        async def work(s: UnitOfWork) -> int:
            for record_ in found:
                await self._accounts.set_password_hash(s, record_.credential_id, digest)
            revoked = await self._sessions.revoke_others(s, viewer)
            record_by(s, "password_change", client, viewer, revoked=revoked)
            return revoked

        return await self._db.run_in_transaction(work)

    @declares(InvalidInput, WeakPassword, CredentialExists, UsernameTaken, TemporarilyUnavailable)
    async def bind(
        self,
        viewer: Viewer,
        raw_username: str,
        password: str,
        client: ClientInfo,
        *,
        reauthenticated: str,
    ) -> None:
        """Add a username and password to the viewer's account. Only after the viewer is
        re-authenticated (``gateway.rights.factors``): ``reauthenticated`` says how, for the
        audit trail."""
        username = normalize_username(raw_username)
        check_policy(password, username)
        if await self._accounts.passwords_of(viewer.account_id):
            raise CredentialExists()
        digest = await self._hashing.hash(password)

        async def work(s: UnitOfWork) -> None:
            await self._accounts.add_username(
                s, viewer.account_id, username, digest, viewer.app_key
            )
            record_by(s, "bind_credential", client, viewer, reauthenticated=reauthenticated)

        await self._db.run_in_transaction(work)

    @declares(InvalidCredentials, Throttled, TemporarilyUnavailable)
    async def reauthenticate(self, viewer: Viewer, password: str) -> datetime:
        """Confirm the logged-in person knows the account's password (throttled like a password
        change); ``InvalidCredentials`` when it is wrong or the account has none. Returns when
        the matching password's username was added to the account (``gateway.rights``: a
        password added by this very session proves nothing)."""
        found = await self._accounts.passwords_of(viewer.account_id)
        matched = await self._confirm(found, password, InvalidCredentials("Wrong password."))
        return matched.identity.created_at

    async def _confirm(
        self, found: list[PasswordRecord], password: str, wrong: InvalidCredentials
    ) -> PasswordRecord:
        """The account's credential the logged-in person's password matches, counted per
        username (a person who is logged in already: no per-address key); ``wrong``
        otherwise, after the same argon2 work whether or not there is a credential."""
        keys = [f"password-check:{r.identity.subject}" for r in found]
        if keys:
            await self._throttle.admit(keys)
        for record_ in found:
            ok, _ = await self._hashing.verify(record_.password_hash, password[: MAX_LENGTH * 4])
            if ok:
                await self._throttle.succeeded(forgive=keys, release=[])
                return record_
        if not found:
            await self._hashing.verify(None, password[: MAX_LENGTH * 4])
        raise wrong
