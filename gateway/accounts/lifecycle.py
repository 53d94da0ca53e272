"""An account's life after creation: disable and enable, deletion marked for a cooling-off
period (and cancelled), erasure, and the username reservations erasure leaves behind.

Erasure keeps the account row as a pseudonym (audit events point at it) with every personal
field cleared, and deletes what identifies the person: identities, password hashes, sealed
WeChat session keys. Accounts merged into it follow it: their profile fields go too.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.accounts import announce, avatars
from gateway.accounts.model import AccountStatus, AccountView, IdentityKind, username_digest
from gateway.accounts.tables import (
    Account,
    Credential,
    Identity,
    UsernameReservation,
    WechatSession,
)
from gateway.accounts.views import ACCOUNT_COLUMNS, account_view
from gateway.outbox import EventType, scrub
from gateway.store.broadcast import account_key, changed
from gateway.store.db import execute_core
from gateway.store.models import utcnow


async def locked(s: AsyncSession, account_id: uuid.UUID) -> Account | None:
    query = (
        select(Account)
        .where(col(Account.id) == account_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await s.execute(query)).scalar_one_or_none()


_LOGIN_STATE = (
    select(*ACCOUNT_COLUMNS, col(Account.deletion_due_at))
    .where(col(Account.id) == bindparam("account_id"))
    .with_for_update(key_share=True)
)


async def login_state(s: AsyncSession, account_id: uuid.UUID) -> tuple[AccountView, bool] | None:
    """(the account, deletion pending) in one indexed read: every login asks, and the login
    answers with this view instead of reading the account again. PostgreSQL: ``FOR KEY
    SHARE``, the lock the login's session row takes anyway through its foreign key, taken
    here, before the decision: an erasure or a deletion mark (``FOR UPDATE``, ``locked``)
    in flight is waited for and its outcome read, and one that comes later waits for this
    login's commit, then erases what it wrote."""
    row = (await execute_core(s, _LOGIN_STATE, {"account_id": account_id})).first()
    return (account_view(row), row[-1] is not None) if row else None


async def set_disabled(
    s: AsyncSession, account_id: uuid.UUID, disabled: bool, reason: str | None
) -> bool:
    """Disable (with a reason) or enable a live account; False when it is not live."""
    changed(s, [account_key(account_id)])
    values = (
        {"status": AccountStatus.DISABLED.value, "disabled_reason": reason}
        if disabled
        else {"status": AccountStatus.ACTIVE.value, "disabled_reason": None}
    )
    result = await s.execute(
        update(Account)
        .where(
            col(Account.id) == account_id,
            col(Account.status).in_([AccountStatus.ACTIVE, AccountStatus.DISABLED]),
        )
        .values(**values)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    kind = EventType.ACCOUNT_DISABLED if disabled else EventType.ACCOUNT_ENABLED
    await announce.announce(s, kind, account_id)
    return True


async def mark_for_deletion(
    s: AsyncSession, account_id: uuid.UUID, requested_at: datetime, due_at: datetime
) -> None:
    changed(s, [account_key(account_id)])
    await s.execute(
        update(Account)
        .where(col(Account.id) == account_id)
        .values(deletion_requested_at=requested_at, deletion_due_at=due_at)
    )
    data = {"due_at": due_at.isoformat()}
    await announce.announce(s, EventType.DELETION_REQUESTED, account_id, data)


async def cancel_deletion(s: AsyncSession, account_id: uuid.UUID) -> bool:
    """Clear a pending deletion; True when there was one."""
    changed(s, [account_key(account_id)])
    result = await s.execute(
        update(Account)
        .where(col(Account.id) == account_id, col(Account.deletion_due_at).is_not(None))
        .values(deletion_requested_at=None, deletion_due_at=None)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    await announce.announce(s, EventType.DELETION_CANCELLED, account_id)
    return True


async def due_for_deletion(s: AsyncSession, now: datetime, limit: int) -> list[uuid.UUID]:
    query = (
        select(col(Account.id))
        .where(
            col(Account.deletion_due_at) <= now,
            col(Account.status).in_([AccountStatus.ACTIVE, AccountStatus.DISABLED]),
        )
        .order_by(col(Account.deletion_due_at))
        .limit(limit)
    )
    return list((await s.execute(query)).scalars().all())


async def release_erased(s: AsyncSession, account_id: uuid.UUID) -> None:
    """Identities still on an erased account (left by a login that raced its erasure before
    this was fixed) are erased too, so that the person's login can find them new. No lock on
    the account (erased is final): the login takes its identifiers' locks next, and a
    concurrent login holding those may be waiting for this account's row."""
    status = select(col(Account.status)).where(col(Account.id) == account_id)
    if (await s.execute(status)).scalar_one_or_none() != AccountStatus.DELETED:
        return
    of_account = col(Identity.account_id) == account_id
    identities = (await s.execute(select(Identity).where(of_account))).scalars().all()
    if identities:
        changed(s, [account_key(account_id)])
        await _forget_identities(s, list(identities), None)


async def erase(
    s: AsyncSession, account_id: uuid.UUID, reserve_until: datetime | None
) -> list[uuid.UUID]:
    """Erase the account (locked by the caller) and what merged into it; returns their ids."""
    followers = (
        (await s.execute(select(col(Account.id)).where(col(Account.merged_into_id) == account_id)))
        .scalars()
        .all()
    )
    ids = [account_id, *followers]
    changed(s, map(account_key, ids))
    doors = await announce.audience(s, account_id)  # before the identities go
    await scrub(s, ids)
    await announce.deleted(s, ids, doors)
    identities = (
        (await s.execute(select(Identity).where(col(Identity.account_id) == account_id)))
        .scalars()
        .all()
    )
    await _forget_identities(s, list(identities), reserve_until)
    await avatars.forget(s, ids)
    now = utcnow()
    await s.execute(
        update(Account)
        .where(col(Account.id).in_(ids))
        .values(
            nickname=None,
            avatar_url=None,
            disabled_reason=None,
            deletion_requested_at=None,
            deletion_due_at=None,
            deleted_at=now,
        )
    )
    await s.execute(
        update(Account)
        .where(col(Account.id) == account_id)
        .values(status=AccountStatus.DELETED.value)
    )
    return ids


async def _forget_identities(
    s: AsyncSession, identities: list[Identity], reserve_until: datetime | None
) -> None:
    ids = [i.id for i in identities]
    openids = [(i.scope, i.subject) for i in identities if i.kind == IdentityKind.WECHAT_OPENID]
    if openids:
        pairs = [
            and_(col(WechatSession.appid) == appid, col(WechatSession.openid) == openid)
            for appid, openid in openids
        ]
        await s.execute(delete(WechatSession).where(or_(*pairs)))
    if ids:
        await s.execute(delete(Credential).where(col(Credential.identity_id).in_(ids)))
        await s.execute(delete(Identity).where(col(Identity.id).in_(ids)))
    if reserve_until is None:
        return
    for identity in identities:
        if identity.kind == IdentityKind.USERNAME:
            digest = username_digest(identity.subject)
            await s.merge(UsernameReservation(digest=digest, until=reserve_until))


async def username_reserved(s: AsyncSession, username: str) -> bool:
    query = select(col(UsernameReservation.until)).where(
        col(UsernameReservation.digest) == username_digest(username)
    )
    until = (await s.execute(query)).scalar_one_or_none()
    return until is not None and until > utcnow()
