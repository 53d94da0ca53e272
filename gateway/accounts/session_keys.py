"""The latest WeChat ``session_key`` per (appid, openid), sealed at rest, and the one before.

WeChat rotates the key at every wx.login. Open data a client fetched just before calling
wx.login again is sealed with the previous key, so that key is kept for
``PREVIOUS_KEY_SECONDS`` after it is replaced. Stored with a dialect-specific upsert; the SQL
dialect stays in here.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.accounts.model import IdentityKind
from gateway.accounts.tables import Identity, WechatSession
from gateway.store.models import utcnow

PREVIOUS_KEY_SECONDS = 300


async def keep(s: AsyncSession, appid: str, openid: str, sealed: str) -> None:
    now = utcnow()
    bind = s.bind
    insert = pg_insert if bind is not None and bind.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(WechatSession).values(
        id=uuid.uuid4(), appid=appid, openid=openid, session_key_sealed=sealed, updated_at=now
    )
    table = WechatSession.__table__.c  # type: ignore[attr-defined]
    await s.execute(
        stmt.on_conflict_do_update(
            index_elements=["appid", "openid"],
            set_={
                "session_key_sealed": sealed,
                "updated_at": now,
                "previous_key_sealed": table.session_key_sealed,  # the row's value until now
                "previous_until": now + timedelta(seconds=PREVIOUS_KEY_SECONDS),
            },
        )
    )


async def openid_of(s: AsyncSession, account_id: uuid.UUID, appid: str) -> str | None:
    query = select(col(Identity.subject)).where(
        col(Identity.account_id) == account_id,
        col(Identity.kind) == IdentityKind.WECHAT_OPENID,
        col(Identity.scope) == appid,
    )
    return (await s.execute(query)).scalar_one_or_none()


async def sealed_keys(s: AsyncSession, appid: str, openid: str) -> tuple[str, str | None] | None:
    """The sealed current key, and the previous one while it is still kept."""
    query = select(
        col(WechatSession.session_key_sealed),
        col(WechatSession.previous_key_sealed),
        col(WechatSession.previous_until),
    ).where(col(WechatSession.appid) == appid, col(WechatSession.openid) == openid)
    row = (await s.execute(query)).first()
    if row is None:
        return None
    current, previous, until = row
    return current, previous if until is not None and until > utcnow() else None
