"""The latest WeChat ``session_key`` per (appid, openid), sealed at rest.

Stored with a dialect-specific upsert (WeChat may rotate the key at every wx.login, and only
the latest decrypts); the SQL dialect stays in here.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.accounts.model import IdentityKind
from gateway.accounts.tables import Identity, WechatSession
from gateway.store.models import utcnow


async def keep(s: AsyncSession, appid: str, openid: str, sealed: str) -> None:
    now = utcnow()
    bind = s.bind
    insert = pg_insert if bind is not None and bind.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(WechatSession).values(
        id=uuid.uuid4(), appid=appid, openid=openid, session_key_sealed=sealed, updated_at=now
    )
    await s.execute(
        stmt.on_conflict_do_update(
            index_elements=["appid", "openid"],
            set_={"session_key_sealed": sealed, "updated_at": now},
        )
    )


async def openid_of(s: AsyncSession, account_id: uuid.UUID, appid: str) -> str | None:
    query = select(col(Identity.subject)).where(
        col(Identity.account_id) == account_id,
        col(Identity.kind) == IdentityKind.WECHAT_OPENID,
        col(Identity.scope) == appid,
    )
    return (await s.execute(query)).scalar_one_or_none()


async def sealed_key(s: AsyncSession, appid: str, openid: str) -> str | None:
    query = select(col(WechatSession.session_key_sealed)).where(
        col(WechatSession.appid) == appid, col(WechatSession.openid) == openid
    )
    return (await s.execute(query)).scalar_one_or_none()
