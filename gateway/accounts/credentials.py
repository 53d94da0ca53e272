"""Password rows of username identities: read for a login, add, re-hash.

Hashing and the password policy are the credentials use case's; this module only stores what
it decides, so that the account graph's tables keep one owner.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.accounts.graph import find
from gateway.accounts.model import AccountConflict, IdentityKey, IdentityKind, PasswordRecord
from gateway.accounts.tables import Credential, Identity
from gateway.accounts.views import IDENTITY_COLUMNS, identity_view
from gateway.store.models import utcnow

_COLUMNS = (*IDENTITY_COLUMNS, col(Credential.id), col(Credential.password_hash))


def _record(row: tuple[object, ...]) -> PasswordRecord:
    n = len(IDENTITY_COLUMNS)
    return PasswordRecord(identity_view(row[:n]), row[n], str(row[n + 1]))  # type: ignore[arg-type]


async def by_username(s: AsyncSession, username: str) -> PasswordRecord | None:
    query = (
        select(*_COLUMNS)
        .join(Credential, col(Credential.identity_id) == col(Identity.id))
        .where(
            col(Identity.kind) == IdentityKind.USERNAME,
            col(Identity.scope) == "",
            col(Identity.subject) == username,
        )
    )
    row = (await s.execute(query)).first()
    return _record(tuple(row)) if row else None


async def of_account(s: AsyncSession, account_id: uuid.UUID) -> list[PasswordRecord]:
    query = (
        select(*_COLUMNS)
        .join(Credential, col(Credential.identity_id) == col(Identity.id))
        .where(col(Identity.account_id) == account_id)
        .order_by(col(Identity.created_at))
    )
    return [_record(tuple(row)) for row in (await s.execute(query)).all()]


async def add(s: AsyncSession, account_id: uuid.UUID, username: str, digest: str) -> None:
    """The username identity must already be the account's (AccountConflict otherwise)."""
    key = IdentityKey.username(username)
    identity = (await find(s, [key]))[key]
    if identity.account_id != account_id:
        raise AccountConflict({identity.account_id, account_id})
    s.add(Credential(identity_id=identity.id, password_hash=digest))
    await s.flush()


async def set_hash(s: AsyncSession, credential_id: uuid.UUID, digest: str) -> None:
    await s.execute(
        update(Credential)
        .where(col(Credential.id) == credential_id)
        .values(password_hash=digest, updated_at=utcnow())
    )
