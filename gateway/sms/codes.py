"""The live SMS codes, in the database (``sms_codes``): every backend has one, so every
deployment (the embedded SQLite default without Redis as much as several replicas on
PostgreSQL) shares one truth about a code, and a restart forgets no code a person is typing.

A code is 6 random digits, kept as an HMAC under the gateway's secret key (a plain hash of a
million possibilities would be reversed at once), valid ``ttl`` seconds, single use, and dead
after ``max_attempts`` tries: each try is counted before the comparison, in one UPDATE, so
concurrent guesses cannot race past the count.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from enum import StrEnum

from sqlalchemy import ColumnElement, delete, update
from sqlmodel import col

from gateway.audit import ClientInfo, record
from gateway.phones import calling_code
from gateway.store.db import Database, UnitOfWork
from gateway.store.models import SmsCodeRow


class Purpose(StrEnum):
    """What a code is for: one for logging in is no use for binding, and the other way round."""

    LOGIN = "login"
    BIND = "bind"


class CodeStore:
    def __init__(
        self,
        db: Database,
        secret_key: str,
        clock: Callable[[], float],
        ttl: float,
        max_attempts: int,
    ) -> None:
        self._db = db
        # a key of its own, derived from the gateway's: a code's HMAC is no other HMAC
        self._key = hmac.new(secret_key.encode(), b"gateway sms codes", hashlib.sha256).digest()
        self._clock = clock
        self._ttl = ttl
        self._max_attempts = max_attempts

    def _digest(self, phone: str, purpose: Purpose, code: str) -> str:
        message = f"{purpose}\0{phone}\0{code}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    async def issue(
        self, phone: str, purpose: Purpose, client: ClientInfo, app_key: str | None
    ) -> str:
        """A new code for ``phone``, replacing any earlier one (only the newest is valid);
        expired codes of any number are deleted on the way. Audited (``sms_code_issued``) in
        the same transaction, with the number's country and last four digits only: enough
        for support to answer "was a code sent to my number?", not the number itself."""
        code = f"{secrets.randbelow(1_000_000):06d}"
        expires_at = self._clock() + self._ttl

        async def work(s: UnitOfWork) -> None:
            row = SmsCodeRow(
                phone=phone,
                purpose=purpose.value,
                code_hash=self._digest(phone, purpose, code),
                expires_at=expires_at,
            )
            await s.execute(delete(SmsCodeRow).where(*_of(phone, purpose)))
            # the dead codes of every number go too: a number is personal data, kept no
            # longer than its code lives (the index on expires_at finds them)
            dead = col(SmsCodeRow.expires_at) <= self._clock()
            await s.execute(delete(SmsCodeRow).where(dead))
            s.add(row)
            record(
                s,
                "sms_code_issued",
                client,
                app_key=app_key,
                purpose=purpose.value,
                country=calling_code(phone),
                phone_tail=phone[-4:],
            )

        await self._db.run_in_transaction(work)
        return code

    async def redeem(self, phone: str, purpose: Purpose, code: str) -> bool:
        """True once for the right code within its life and tries; the code is spent then."""

        async def count_try(s: UnitOfWork) -> str | None:
            counted = update(SmsCodeRow).where(
                *_of(phone, purpose),
                col(SmsCodeRow.attempts) < self._max_attempts,
                col(SmsCodeRow.expires_at) > self._clock(),
            )
            stored: str | None = (
                await s.execute(
                    counted.values(attempts=col(SmsCodeRow.attempts) + 1).returning(
                        col(SmsCodeRow.code_hash)
                    )
                )
            ).scalar_one_or_none()
            return stored

        stored = await self._db.run_in_transaction(count_try)
        if stored is None or not hmac.compare_digest(stored, self._digest(phone, purpose, code)):
            return False

        async def spend(s: UnitOfWork) -> bool:
            spent = delete(SmsCodeRow).where(*_of(phone, purpose))
            result = await s.execute(spent.where(col(SmsCodeRow.code_hash) == stored))
            return bool(getattr(result, "rowcount", 0))  # 0: a concurrent redeem spent it first

        return await self._db.run_in_transaction(spend)


def _of(phone: str, purpose: Purpose) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """The row of ``phone``'s code for ``purpose``."""
    return col(SmsCodeRow.phone) == phone, col(SmsCodeRow.purpose) == purpose.value
