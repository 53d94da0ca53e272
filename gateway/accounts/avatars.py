"""Avatars people upload: the re-encoded bytes, named by a random id that the account's
``avatar_url`` points at once it is chosen (``updateProfile``).

An account keeps at most two: the one in use and the latest upload not yet chosen (a newer
upload replaces it), so uploads that are never chosen cannot pile up. The bytes under an id
never change, which is what lets the URL be cached for a year. Erasure deletes them all.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.accounts.tables import Avatar
from gateway.store.db import Database


async def add(s: AsyncSession, account_id: uuid.UUID, media_type: str, data: bytes) -> uuid.UUID:
    """Store an upload, replacing the account's previous unchosen one."""
    await s.execute(
        delete(Avatar).where(col(Avatar.account_id) == account_id, col(Avatar.in_use).is_(False))
    )
    avatar = Avatar(account_id=account_id, media_type=media_type, data=data)
    s.add(avatar)
    await s.flush()
    return avatar.id


async def read(db: Database, avatar_id: uuid.UUID) -> tuple[str, bytes] | None:
    query = select(col(Avatar.media_type), col(Avatar.data)).where(col(Avatar.id) == avatar_id)
    rows = await db.read(query)
    return (str(rows[0][0]), bytes(rows[0][1])) if rows else None


async def choose(s: AsyncSession, account_id: uuid.UUID, avatar_id: uuid.UUID) -> str | None:
    """Make one of the account's uploads its avatar (the others go); its media type, or None
    when the account has no such upload."""
    mine = (col(Avatar.id) == avatar_id) & (col(Avatar.account_id) == account_id)
    found = (await s.execute(select(col(Avatar.media_type)).where(mine))).scalar_one_or_none()
    if found is None:
        return None
    await s.execute(
        delete(Avatar).where(col(Avatar.account_id) == account_id, col(Avatar.id) != avatar_id)
    )
    await s.execute(update(Avatar).where(mine).values(in_use=True))
    return str(found)


async def forget(s: AsyncSession, account_ids: Sequence[uuid.UUID]) -> None:
    """Every avatar of these accounts (the account removed its avatar, or is erased)."""
    await s.execute(delete(Avatar).where(col(Avatar.account_id).in_(list(account_ids))))
