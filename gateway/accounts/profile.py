"""The display profile WeChat gives (nickname, avatar), kept only when it is real.

Since 2021 ``wx.getUserInfo`` and some OAuth flows answer an anonymous profile ("微信用户" and a
grey avatar): that must never overwrite a real one.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Literal

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.accounts.tables import Account
from gateway.store.broadcast import account_key, changed

ANONYMOUS_NICKNAMES = frozenset({"微信用户", "WeChat User"})


def is_real(nickname: str | None) -> bool:
    return bool(nickname and nickname.strip() and nickname.strip() not in ANONYMOUS_NICKNAMES)


async def keep_profile(
    s: AsyncSession, account_id: uuid.UUID, nickname: str | None, avatar_url: str | None
) -> bool:
    """Store a real profile; ignore an anonymous one. True when something was written."""
    if not is_real(nickname):
        return False
    nickname, avatar_url = (nickname or "")[:128], (avatar_url or None) and avatar_url[:512]
    result = await s.execute(
        update(Account)
        .where(
            col(Account.id) == account_id,
            or_(
                col(Account.nickname).is_distinct_from(nickname),
                col(Account.avatar_url).is_distinct_from(avatar_url),
            ),
        )
        .values(nickname=nickname, avatar_url=avatar_url)
    )
    if result.rowcount:  # type: ignore[attr-defined]
        changed(s, [account_key(account_id)])  # the same profile again broadcasts nothing
    return True


ProfileField = Literal["nickname", "avatar_url"]


async def set_profile(
    s: AsyncSession, account_id: uuid.UUID, changes: Mapping[ProfileField, str | None]
) -> None:
    """What the person set themselves (``updateProfile``): written as given, real or not."""
    if not changes:
        return
    values: dict[str, str | None] = {str(k): v for k, v in changes.items()}
    await s.execute(update(Account).where(col(Account.id) == account_id).values(**values))
    changed(s, [account_key(account_id)])
