"""Unlinking identities from an account; never the last one (DESIGN §2, invariant 5)."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.accounts import announce
from gateway.accounts.model import IdentityKey, IdentityKind
from gateway.accounts.tables import Account, Credential, Identity, WechatSession
from gateway.audit import Actor, ClientInfo, record_by
from gateway.errors import LastIdentity, NotFound, declares
from gateway.store.db import Database, UnitOfWork


@declares(NotFound, LastIdentity)
async def unlink(
    db: Database,
    viewer: Actor,
    identity_id: uuid.UUID,
    client: ClientInfo,
    reauthenticated: str,
    **detail: str | None,
) -> None:
    async def work(s: UnitOfWork) -> None:
        identity = await _removable(s, viewer.account_id, identity_id)
        await _forget_secrets(s, identity)
        key = IdentityKey(IdentityKind(identity.kind), identity.scope, identity.subject)
        await announce.unlinked(
            s, viewer.account_id, identity.id, key, identity.app_key, identity.created_at
        )
        await s.delete(identity)
        record_by(
            s,
            "unlink",
            client,
            viewer,
            identity_kind=identity.kind,
            via_app=identity.app_key,
            reauthenticated=reauthenticated,
            **detail,
        )

    await db.run_in_transaction(work)


async def _removable(s: AsyncSession, account_id: uuid.UUID, identity_id: uuid.UUID) -> Identity:
    """The account's identity, when it is not the account's last; the account stays locked
    for the transaction, so two concurrent unlinks cannot both pass the "not last" check."""
    await s.execute(select(col(Account.id)).where(col(Account.id) == account_id).with_for_update())
    identity = await s.get(Identity, identity_id)
    if identity is None or identity.account_id != account_id:
        raise NotFound("No identity with this id on your account.", field="id")
    count = (
        await s.execute(select(func.count()).where(col(Identity.account_id) == account_id))
    ).scalar_one()
    if count <= 1:
        raise LastIdentity()
    return identity


async def _forget_secrets(s: AsyncSession, identity: Identity) -> None:
    """What only this identity opened: its password, and a WeChat openid's session key."""
    await s.execute(delete(Credential).where(col(Credential.identity_id) == identity.id))
    if identity.kind == IdentityKind.WECHAT_OPENID:
        await s.execute(
            delete(WechatSession).where(
                col(WechatSession.appid) == identity.scope,
                col(WechatSession.openid) == identity.subject,
            )
        )
