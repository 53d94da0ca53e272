"""The latest WeChat ``session_key`` per (appid, openid), sealed at rest, and the one before.

WeChat rotates the key at every wx.login. Open data a client fetched just before calling
wx.login again is sealed with the previous key, so that key is kept for
``PREVIOUS_KEY_SECONDS`` after it is replaced. Stored with a dialect-specific upsert; the SQL
dialect stays in here.
"""

from __future__ import annotations

import functools
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.accounts.model import IdentityKind
from gateway.accounts.tables import Identity, WechatSession
from gateway.store.db import execute_core
from gateway.store.models import utcnow

PREVIOUS_KEY_SECONDS = 300


async def keep(s: AsyncSession, appid: str, openid: str, sealed: str) -> None:
    bind = s.bind
    dialect = bind.dialect.name if bind is not None else "sqlite"
    await execute_core(s, upsert(dialect), params(appid, openid, sealed, utcnow()))


def params(appid: str, openid: str, sealed: str, now: datetime) -> dict[str, Any]:
    """The bound values of the upsert (``keep``, ``keep_when``)."""
    return {
        "key_id": uuid.uuid4(),
        "appid": appid,
        "openid": openid,
        "sealed": sealed,
        "now": now,
        "until": now + timedelta(seconds=PREVIOUS_KEY_SECONDS),
    }


_TABLE: Any = WechatSession.__table__  # type: ignore[attr-defined]
_VALUES = {
    "id": bindparam("key_id", type_=_TABLE.c.id.type),
    "appid": bindparam("appid", type_=_TABLE.c.appid.type),
    "openid": bindparam("openid", type_=_TABLE.c.openid.type),
    "session_key_sealed": bindparam("sealed", type_=_TABLE.c.session_key_sealed.type),
    "updated_at": bindparam("now", type_=_TABLE.c.updated_at.type),
}


@functools.cache
def upsert(dialect: str) -> Any:
    """Every WeChat login writes the key: the statement is built once per dialect."""
    return _on_conflict(dialect_insert(dialect)(WechatSession).values(**_VALUES))


def dialect_insert(dialect: str) -> Any:
    """The dialect's INSERT with ON CONFLICT, imported when first needed: SQLAlchemy's
    PostgreSQL dialect is ~2.2 MiB that a SQLite process never needs (issue 29)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


@functools.cache
def keep_when(owner_id: Any) -> Any:
    """``keep``'s upsert as a CTE of one PostgreSQL statement, made when ``owner_id`` (a
    column of one of its CTEs: the account signed in to) has a row."""
    rows = select(*_VALUES.values()).where(exists(select(owner_id)))
    stmt = dialect_insert("postgresql")(WechatSession).from_select(list(_VALUES), rows)
    return _on_conflict(stmt).cte("key_kept")


def _on_conflict(stmt: Any) -> Any:
    table = _TABLE.c
    return stmt.on_conflict_do_update(
        index_elements=["appid", "openid"],
        set_={
            "session_key_sealed": stmt.excluded.session_key_sealed,
            "updated_at": stmt.excluded.updated_at,
            "previous_key_sealed": table.session_key_sealed,  # the row's value until now
            "previous_until": bindparam("until"),
        },
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
