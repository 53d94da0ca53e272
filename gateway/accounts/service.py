"""``AccountGraph``: the one interface to accounts, identities, credentials and session keys.

Login strategies, sessions and partners call this and never SQL. Writes take the caller's
unit of work (``db.run_in_transaction(work)``) so that a login's account, session and
audit rows land together; reads that stand alone open their own. The dialect (advisory locks,
upserts) stays behind it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.accounts import (
    at_once,
    avatars,
    credentials,
    graph,
    lifecycle,
    links,
    merge,
    profile,
    session_keys,
    views,
)
from gateway.accounts.model import (
    AccountConflict,
    AccountGone,
    AccountStatus,
    AccountView,
    IdentityKey,
    IdentityView,
    PasswordRecord,
    Resolution,
    WechatSessionKeys,
    follow_to_survivor,
)
from gateway.accounts.tables import Account
from gateway.audit import Actor, ClientInfo
from gateway.errors import AccountDisabled, LastIdentity, NotFound, UsernameTaken, declares
from gateway.store.db import Database
from gateway.store.driver import SyncDriver
from gateway.store.secretbox import SealError, SecretBox

log = logging.getLogger(__name__)


ProfileField = profile.ProfileField
_LIVE = (AccountStatus.ACTIVE, AccountStatus.DISABLED)  # what an erasure may still erase
EraseHook = Callable[[AsyncSession, list[uuid.UUID]], Awaitable[None]]
"""``(session, erased account ids)``: forget what you keep per account."""
"""What ``set_profile`` may change: ``nickname``, ``avatar_url``."""


class SessionKey(NamedTuple):
    """A WeChat ``session_key`` as code2session gave it, for the account's openid in an app."""

    appid: str
    openid: str
    key: str


class AccountGraph:
    def __init__(self, db: Database, box: SecretBox) -> None:
        self._db = db
        self._box = box
        self._merge_hooks: list[merge.MergeHook] = []
        self._erase_hooks: list[EraseHook] = []

    def on_merge(self, hook: merge.MergeHook) -> None:
        """Rows another owner keeps per account (login sessions) follow a merge."""
        self._merge_hooks.append(hook)

    def on_erase(self, hook: EraseHook) -> None:
        """Rows another owner keeps per account (a site's consents) go with an erasure, in
        its transaction: nothing of the person outlives it."""
        self._erase_hooks.append(hook)

    # -- resolving identifiers -------------------------------------------------------------
    async def owners(self, s: AsyncSession, keys: list[IdentityKey]) -> set[uuid.UUID]:
        return await graph.owners(s, keys)

    async def resolve(
        self,
        s: AsyncSession,
        keys: list[IdentityKey],
        app_key: str | None,
        *,
        merge_reason: str | None = None,
        client: ClientInfo | None = None,
    ) -> Resolution:
        """Find or create the account of ``keys``. With ``merge_reason`` (the caller holds
        proof that the keys are one person), keys on several accounts merge them. The account
        stays locked against an erasure (``lifecycle.login_state``) until the caller commits,
        before the caller writes anything an erasure would wait for (its session key); an
        erased one is ``AccountGone``."""
        resolution = await self._find_or_create(s, keys, app_key, merge_reason, client)
        state = await lifecycle.login_state(s, resolution.account_id)
        if state is not None and state[0].status == AccountStatus.DELETED:
            raise AccountGone(resolution.account_id)
        return resolution

    async def _find_or_create(
        self,
        s: AsyncSession,
        keys: list[IdentityKey],
        app_key: str | None,
        merge_reason: str | None,
        client: ClientInfo | None,
    ) -> Resolution:
        if merge_reason is None:
            return await graph.find_or_create(s, keys, app_key)

        async def merger(owners: set[uuid.UUID]) -> uuid.UUID:
            return await merge.merge_accounts(
                s,
                owners,
                reason=merge_reason,
                client=client,
                app_key=app_key,
                hooks=self._merge_hooks,
            )

        return await graph.find_or_create(s, keys, app_key, merge=merger)

    async def link(
        self, s: AsyncSession, account_id: uuid.UUID, keys: list[IdentityKey], app_key: str | None
    ) -> tuple[IdentityKey, ...]:
        """Attach ``keys``; ``AccountConflict`` when one belongs to another account."""
        return await graph.link(s, account_id, keys, app_key)

    @declares(NotFound, LastIdentity)
    async def unlink(
        self,
        actor: Actor,
        identity_id: uuid.UUID,
        client: ClientInfo,
        *,
        reauthenticated: str,
        **detail: str | None,
    ) -> None:
        """Remove a way in; the caller has re-authenticated the actor (``gateway.rights.factors``)
        and ``reauthenticated`` says how, for the audit trail (``detail``: an operator's name
        and reason, when one acts for the person)."""
        await links.unlink(self._db, actor, identity_id, client, reauthenticated, **detail)

    async def survivor(self, s: AsyncSession, account_id: uuid.UUID) -> uuid.UUID:
        """Follow merge pointers, so that what points at a merged account acts on its heir."""

        async def load(key: uuid.UUID) -> AccountView | None:
            account = await s.get(Account, key)
            return views.to_account_view(account) if account else None

        found, _ = await follow_to_survivor(load, account_id)
        return found.id if found else account_id

    async def keep_profile(
        self, s: AsyncSession, account_id: uuid.UUID, nickname: str | None, avatar: str | None
    ) -> bool:
        return await profile.keep_profile(s, account_id, nickname, avatar)

    # -- the profile a person sets (updateProfile, the avatar upload) ------------------------
    async def set_profile(
        self,
        s: AsyncSession,
        account_id: uuid.UUID,
        changes: Mapping[profile.ProfileField, str | None],
    ) -> None:
        await profile.set_profile(s, account_id, changes)

    async def add_avatar(
        self, s: AsyncSession, account_id: uuid.UUID, media_type: str, data: bytes
    ) -> uuid.UUID:
        return await avatars.add(s, account_id, media_type, data)

    async def choose_avatar(
        self, s: AsyncSession, account_id: uuid.UUID, avatar_id: uuid.UUID
    ) -> str | None:
        return await avatars.choose(s, account_id, avatar_id)

    async def forget_avatars(self, s: AsyncSession, account_id: uuid.UUID) -> None:
        await avatars.forget(s, [account_id])

    async def avatar(self, avatar_id: uuid.UUID) -> tuple[str, bytes] | None:
        """An avatar's media type and bytes, for serving."""
        return await avatars.read(self._db, avatar_id)

    # -- reads (batched by the API's DataLoaders) -------------------------------------------
    async def accounts(self, ids: Sequence[uuid.UUID]) -> list[AccountView | None]:
        return await views.accounts_by_id(self._db, ids)

    async def identities(self, ids: Sequence[uuid.UUID]) -> list[list[IdentityView]]:
        return await views.identities_by_account(self._db, ids)

    async def identities_by_key(self, keys: Sequence[IdentityKey]) -> list[IdentityView | None]:
        return await views.identities_by_key(self._db, keys)

    # The account as part of a statement sessions composes (the token check, a refresh): the
    # join and the columns are written here, where the table is; sessions hands the row back
    # to ``read_account``, which reads it by the columns' labels, never by their position.
    join_account = staticmethod(views.with_account)
    read_account = staticmethod(views.read_account)
    account_id_in = staticmethod(views.account_id_in)
    merged_in = staticmethod(views.merged_in)

    # -- a WeChat login in one statement (PostgreSQL; see accounts.at_once) ------------------
    @staticmethod
    def login_at_once(count: int, with_session_key: bool) -> at_once.SignInPart:
        """The graph's part of one login statement (``at_once.SignInPart``: the account signed
        in to, created or found, with no row when the transactional path must decide; the
        writes that go with it; the reading of its row). Built once per shape; values from
        ``at_once_params``."""
        return at_once.account(count, with_session_key)

    def at_once_params(
        self,
        keys: list[IdentityKey],
        app_key: str,
        session_key: SessionKey | None,
        now: datetime,
    ) -> dict[str, Any]:
        values = at_once.params(keys, app_key, now)
        if session_key is not None:
            sealed = self._box.seal(session_key.key, f"{session_key.appid}:{session_key.openid}")
            values |= session_keys.params(session_key.appid, session_key.openid, sealed, now)
        return values

    def sign_in_on(
        self,
        conn: SyncDriver,
        keys: list[IdentityKey],
        app_key: str,
        session_key: SessionKey | None,
        now: datetime,
    ) -> tuple[AccountView, bool] | None:
        """SQLite's ``login_at_once``, on a synchronous connection in a write transaction run
        on a worker thread (``Database.write_in_thread``): see ``at_once.sign_in_on``."""
        key_params = None
        if session_key is not None:
            sealed = self._box.seal(session_key.key, f"{session_key.appid}:{session_key.openid}")
            key_params = session_keys.params(session_key.appid, session_key.openid, sealed, now)
        return at_once.sign_in_on(conn, keys, app_key, key_params, now)

    # -- WeChat session keys ----------------------------------------------------------------
    async def keep_session_key(
        self, s: AsyncSession, appid: str, openid: str, session_key: str
    ) -> None:
        """Sealed, bound to (appid, openid); replaces the previous one."""
        sealed = self._box.seal(session_key, f"{appid}:{openid}")
        await session_keys.keep(s, appid, openid, sealed)

    async def session_keys(self, account_id: uuid.UUID, appid: str) -> WechatSessionKeys | None:
        """Its openid in ``appid`` and session keys; its survivor's if merged since read."""
        async with self._db.reader() as s:
            openid = await session_keys.openid_of(s, account_id, appid)
            if openid is None and (heir := await self.survivor(s, account_id)) != account_id:
                openid = await session_keys.openid_of(s, heir, appid)
            sealed = await session_keys.sealed_keys(s, appid, openid) if openid else None
        if openid is None or sealed is None:
            return None
        bound_to = f"{appid}:{openid}"
        try:
            current = self._box.open(sealed[0], bound_to)
            previous = self._box.open(sealed[1], bound_to) if sealed[1] else None
        except SealError:
            log.error("a stored session_key does not open: was GATEWAY_SECRET_KEY changed?")
            return None
        return WechatSessionKeys(openid, current, previous)

    # -- username credentials ---------------------------------------------------------------
    async def password_by_username(self, username: str) -> PasswordRecord | None:
        async with self._db.reader() as s:
            return await credentials.by_username(s, username)

    async def passwords_of(self, account_id: uuid.UUID) -> list[PasswordRecord]:
        async with self._db.reader() as s:
            return await credentials.of_account(s, account_id)

    @declares(UsernameTaken)
    async def add_username(
        self,
        s: AsyncSession,
        account_id: uuid.UUID | None,
        username: str,
        digest: str,
        app_key: str | None,
    ) -> Resolution:
        """A username with its password hash: on ``account_id``, or on a new account."""
        key = IdentityKey.username(username)
        try:
            async with s.begin_nested():
                if await lifecycle.username_reserved(s, username):
                    raise UsernameTaken()
                if account_id is None:
                    if await graph.find(s, [key]):
                        raise UsernameTaken()
                    resolution = await graph.find_or_create(s, [key], app_key)
                    if not resolution.is_new:  # lost a race for the same name
                        raise UsernameTaken()
                else:
                    added = await graph.link(s, account_id, [key], app_key)
                    resolution = Resolution(account_id, False, added)
                await credentials.add(s, resolution.account_id, username, digest)
        except (AccountConflict, IntegrityError):
            raise UsernameTaken() from None
        return resolution

    async def set_password_hash(
        self, s: AsyncSession, credential_id: uuid.UUID, digest: str
    ) -> None:
        await credentials.set_hash(s, credential_id, digest)

    # -- an account's life: disable, deletion, erasure --------------------------------------
    @declares(AccountDisabled)
    async def admit_login(
        self, s: AsyncSession, account_id: uuid.UUID
    ) -> tuple[AccountView | None, bool]:
        """Inside a login's transaction: ``AccountDisabled`` for a disabled account,
        ``AccountGone`` for an erased one (never revived: the caller starts over); a pending
        deletion is cancelled. Answers the account as the login leaves it, and whether a
        deletion was cancelled. Locks the account against an erasure (``lifecycle.login_state``)."""
        state = await lifecycle.login_state(s, account_id)
        if state is None:
            return None, False
        account, pending = state
        if account.status == AccountStatus.DISABLED:
            raise AccountDisabled()
        if account.status == AccountStatus.DELETED:
            raise AccountGone(account_id)
        # a disable that commits after this read still wins: its token check refuses
        cancelled = await lifecycle.cancel_deletion(s, account_id) if pending else False
        return account, cancelled

    @declares(NotFound)
    async def set_disabled(
        self, s: AsyncSession, account_id: uuid.UUID, disabled: bool, reason: str | None
    ) -> None:
        """Locked first, as an erasure: a login in flight commits before (and the caller's
        revocation sees its session), a later one sees the new state."""
        await lifecycle.locked(s, account_id)
        if not await lifecycle.set_disabled(s, account_id, disabled, reason):
            raise NotFound("No live account with this id.")

    async def mark_for_deletion(
        self, s: AsyncSession, account_id: uuid.UUID, requested_at: datetime, due_at: datetime
    ) -> None:
        """Locked first, as an erasure: a login in flight commits before the mark (and the
        caller's revocation then sees its session); a later one sees the mark and cancels it."""
        await lifecycle.locked(s, account_id)
        await lifecycle.mark_for_deletion(s, account_id, requested_at, due_at)

    async def cancel_deletion(self, s: AsyncSession, account_id: uuid.UUID) -> bool:
        """An operator's cancellation of a pending deletion (a login cancels one by itself);
        True when there was one. Locked first, as an erasure."""
        await lifecycle.locked(s, account_id)
        return await lifecycle.cancel_deletion(s, account_id)

    async def release_erased(self, s: AsyncSession, account_id: uuid.UUID) -> None:
        """Before a login starts over after ``AccountGone``: nothing of the person stays on
        the erased account (``lifecycle.release_erased``)."""
        await lifecycle.release_erased(s, account_id)

    @declares(NotFound)
    async def erase(
        self, s: AsyncSession, account_id: uuid.UUID, reserve_until: datetime | None
    ) -> list[uuid.UUID]:
        """Erase a live account and what merged into it (their ids); the row stays, as a
        pseudonym, with status ``deleted``."""
        account = await lifecycle.locked(s, account_id)
        if account is None or account.status not in _LIVE:
            raise NotFound("No live account with this id.")
        erased = await lifecycle.erase(s, account_id, reserve_until)
        for hook in self._erase_hooks:
            await hook(s, erased)
        return erased

    async def still_due(self, s: AsyncSession, account_id: uuid.UUID, now: datetime) -> bool:
        """Locks the account: is its deletion still due (no login cancelled it meanwhile)?"""
        account = await lifecycle.locked(s, account_id)
        if account is None or account.status not in _LIVE:
            return False
        return account.deletion_due_at is not None and account.deletion_due_at <= now

    async def due_for_deletion(self, now: datetime, limit: int = 100) -> list[uuid.UUID]:
        async with self._db.reader() as s:
            return await lifecycle.due_for_deletion(s, now, limit)

    async def by_nickname_prefix(self, prefix: str, limit: int = 50) -> list[AccountView]:
        """Live accounts whose nickname starts with ``prefix`` (the console's search)."""
        return await views.by_nickname_prefix(self._db, prefix, limit)

    async def merged_into(self, account_id: uuid.UUID) -> list[AccountView]:
        """The accounts that were merged into this one (its merge history)."""
        return await views.merged_into(self._db, account_id)
