"""Operators: adding, listing, disabling and resetting them (``gateway operators``), their
login with password and TOTP, their password change, and their console sessions.

Passwords are argon2id hashes made off the event loop (``credentials.passwords``); TOTP
secrets are sealed with the secret key, bound to the operator's id. Logins are throttled as
password logins are (``gateway.throttle``), with a stricter count per address: ten wrong
answers from one address and it waits. A session is a cookie of 256 random bits kept only as
its SHA-256; it ends after ``[admin] idle_minutes`` without a request, at logout, and at once
when its operator is disabled or reset (each request reads the operator's row).
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from gateway.audit import ClientInfo, record
from gateway.console import repository, totp
from gateway.console.model import (
    NAME,
    Credentials,
    InvalidName,
    LoginRefused,
    OperatorExists,
    OperatorView,
    Role,
    UnknownOperator,
)
from gateway.credentials.passwords import PasswordHashing, check_policy
from gateway.store.db import Database, UnitOfWork
from gateway.store.models import OperatorRow, utcnow
from gateway.store.secretbox import SecretBox
from gateway.throttle import Throttle

TOUCH_EVERY = timedelta(seconds=60)  # last_seen_at is written at most this often
_CLI = ClientInfo("cli")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Console:
    def __init__(
        self,
        db: Database,
        hashing: PasswordHashing,
        secret_key: str,
        throttle: Throttle,
        idle_minutes: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._hashing = hashing
        self._box = SecretBox(secret_key, b"gateway/operator-totp")
        self._throttle = throttle
        self._idle = timedelta(minutes=idle_minutes)
        self._clock = clock

    # -- the CLI ------------------------------------------------------------------------------
    async def add(
        self, name: str, role: Role, by: str, client: ClientInfo = _CLI, reason: str | None = None
    ) -> Credentials:
        if not NAME.match(name):
            raise InvalidName("an operator name is 1-64 letters, digits, '.', '_', '@' or '-'")
        password, secret = secrets.token_urlsafe(12), totp.new_secret()
        password_hash = await self._hashing.hash(password)
        async with self._db.reader() as s:
            if await repository.by_name(s, name) is not None:
                raise OperatorExists(f"an operator named {name!r} exists")
        operator_id = uuid.uuid4()

        async def work(s: UnitOfWork) -> None:
            s.add(
                OperatorRow(
                    id=operator_id, name=name, role=role.value, password_hash=password_hash,
                    totp_sealed=self._box.seal(secret, str(operator_id)),
                )
            )  # fmt: skip
            record(
                s, "operator_added", client, operator=by, target=name, role=role.value,
                reason=reason,
            )  # fmt: skip

        await self._db.run_in_transaction(work)
        return Credentials(name, role, password, secret)

    async def operators(self) -> list[OperatorView]:
        async with self._db.reader() as s:
            return [repository.view(r) for r in await repository.all_operators(s)]

    async def disable(
        self, name: str, by: str, client: ClientInfo = _CLI, reason: str | None = None
    ) -> None:
        """Disabled, and every session of the operator ended at once."""

        async def work(s: UnitOfWork) -> None:
            row = await self._named(s, name)
            await repository.update_operator(s, row.id, disabled=True)
            await repository.end_sessions(s, row.id)
            record(s, "operator_disabled", client, operator=by, target=name, reason=reason)

        await self._db.run_in_transaction(work)

    async def reset(
        self, name: str, by: str, client: ClientInfo = _CLI, reason: str | None = None
    ) -> Credentials:
        """A new one-time password and TOTP secret (a lost phone), enabled again, sessions
        ended."""
        password, secret = secrets.token_urlsafe(12), totp.new_secret()
        password_hash = await self._hashing.hash(password)

        async def work(s: UnitOfWork) -> Role:
            row = await self._named(s, name)
            await repository.update_operator(
                s, row.id, password_hash=password_hash, must_change=True, disabled=False,
                totp_sealed=self._box.seal(secret, str(row.id)), totp_step=None,
            )  # fmt: skip
            await repository.end_sessions(s, row.id)
            record(s, "operator_reset", client, operator=by, target=name, reason=reason)
            return Role(row.role)

        return Credentials(name, await self._db.run_in_transaction(work), password, secret)

    @staticmethod
    async def _named(s: UnitOfWork, name: str) -> OperatorRow:
        row = await repository.by_name(s, name)
        if row is None:
            raise UnknownOperator(f"no operator named {name!r}")
        return row

    # -- the console --------------------------------------------------------------------------
    async def login(
        self, name: str, password: str, code: str, client: ClientInfo
    ) -> tuple[OperatorView, str]:
        """The operator and a new session's cookie value; ``Throttled`` while this name or
        address must wait, ``LoginRefused`` for any wrong answer (counted as a failure)."""
        address = client.ip or "unknown"
        keys, slow = [f"console:{name}|{address}"], [f"console:{name}"]
        addresses = [f"console-address:{address}"]
        await self._throttle.admit(keys, slow, addresses)
        async with self._db.reader() as s:
            row = await repository.by_name(s, name[:64])
        live = row if row is not None and not row.disabled else None
        matches, _ = await self._hashing.verify(live.password_hash if live else None, password)
        if live is None or not matches or not await self._spend_code(live, code):
            await self._throttle.failed(addresses)
            await self._audited("operator_login_failed", client, operator=name[:64])
            raise LoginRefused()
        await self._throttle.succeeded(forgive=slow, release=keys)
        return repository.view(live), await self._start(live, client)

    async def _spend_code(self, row: OperatorRow, code: str) -> bool:
        secret = self._box.open(row.totp_sealed, str(row.id))
        step = totp.matching_step(secret, code, self._clock())
        if step is None:
            return False
        return await self._db.run_in_transaction(lambda s: repository.spend_step(s, row.id, step))

    async def _start(self, row: OperatorRow, client: ClientInfo) -> str:
        cookie = secrets.token_urlsafe(32)

        async def work(s: UnitOfWork) -> None:
            repository.add_session(s, _digest(cookie), row.id, utcnow())
            record(s, "operator_login", client, operator=row.name)

        await self._db.run_in_transaction(work)
        return cookie

    async def _audited(self, kind: str, client: ClientInfo, **detail: Any) -> None:
        """An audit row in a transaction of its own."""

        async def work(s: UnitOfWork) -> None:
            record(s, kind, client, **detail)

        await self._db.run_in_transaction(work)

    async def current(self, cookie: str | None) -> OperatorView | None:
        """The operator of a live session (not idle, operator not disabled); None else."""
        if not cookie or len(cookie) > 64:
            return None
        digest, now = _digest(cookie), utcnow()
        async with self._db.reader() as s:
            found = await repository.session_of(s, digest)
        if found is None:
            return None
        session, row = found
        if row.disabled or session.last_seen_at + self._idle <= now:
            await self._db.run_in_transaction(lambda s: repository.end_session(s, digest))
            return None
        if now - session.last_seen_at >= TOUCH_EVERY:
            await self._db.run_in_transaction(lambda s: repository.touch(s, digest, now))
        return repository.view(row)

    async def logout(self, cookie: str) -> None:
        await self._db.run_in_transaction(lambda s: repository.end_session(s, _digest(cookie)))

    async def change_password(
        self, operator: OperatorView, current: str, new: str, client: ClientInfo
    ) -> None:
        """The one-time password replaced (``WeakPassword`` for a poor new one;
        ``LoginRefused`` when ``current`` is wrong)."""
        check_policy(new, operator.name)
        async with self._db.reader() as s:
            row = await self._named(s, operator.name)
        matches, _ = await self._hashing.verify(row.password_hash, current)
        if not matches:
            raise LoginRefused()
        password_hash = await self._hashing.hash(new)

        async def work(s: UnitOfWork) -> None:
            await repository.update_operator(
                s, row.id, password_hash=password_hash, must_change=False
            )
            record(s, "operator_password_changed", client, operator=operator.name)

        await self._db.run_in_transaction(work)
