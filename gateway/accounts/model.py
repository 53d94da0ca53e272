"""The account graph's domain: kinds, keys and read models, and the read interface readers
above it depend on (``GraphReads``). No SQL: this and ``service`` are the package's public face.

Everything above ``accounts`` (login strategies, sessions, partners, the API) speaks in these
types; the tables behind them are ``accounts.tables``, which nothing else imports.
"""

from __future__ import annotations

import hashlib
import unicodedata
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from gateway.errors import InvalidInput

USERNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")


class AccountStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"
    MERGED = "merged"
    DELETED = "deleted"  # erased: the row stays as a pseudonym for audit events


class IdentityKind(StrEnum):
    WECHAT_OPENID = "wechat_openid"  # scope: appid
    WECHAT_UNIONID = "wechat_unionid"  # scope: open-platform id
    USERNAME = "username"  # scope: ""
    PHONE = "phone"  # scope: ""


@dataclass(frozen=True)
class IdentityKey:
    """``(kind, scope, subject)``: unique across the database, so one key, one account."""

    kind: IdentityKind
    scope: str
    subject: str

    @classmethod
    def openid(cls, appid: str, openid: str) -> IdentityKey:
        return cls(IdentityKind.WECHAT_OPENID, appid, openid)

    @classmethod
    def unionid(cls, platform: str, unionid: str) -> IdentityKey:
        return cls(IdentityKind.WECHAT_UNIONID, platform, unionid)

    @classmethod
    def username(cls, username: str) -> IdentityKey:
        return cls(IdentityKind.USERNAME, "", username)

    @classmethod
    def phone(cls, e164: str) -> IdentityKey:
        return cls(IdentityKind.PHONE, "", e164)

    def lock_id(self) -> int:
        """A stable 64-bit number for this key (PostgreSQL advisory locks)."""
        digest = hashlib.sha256(f"{self.kind}\0{self.scope}\0{self.subject}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)


def wechat_keys(
    appid: str, openid: str, platform: str | None, unionid: str | None
) -> list[IdentityKey]:
    """What one WeChat answer identifies, unionid first: it joins the doors of a platform."""
    keys = []
    if unionid and platform:
        keys.append(IdentityKey.unionid(platform, unionid))
    keys.append(IdentityKey.openid(appid, openid))
    return keys


def normalize_username(raw: str) -> str:
    """NFKC then casefold, so lookalikes (fullwidth, ligatures, case) cannot register twice."""
    username = unicodedata.normalize("NFKC", raw).casefold().strip()
    if not 3 <= len(username) <= 32 or not set(username) <= USERNAME_CHARS:
        raise InvalidInput("username", "username: 3 to 32 of a-z, 0-9, '.', '_', '-'.")
    return username


@dataclass(frozen=True)
class Resolution:
    account_id: uuid.UUID
    is_new: bool
    new_identities: tuple[IdentityKey, ...] = ()
    merged: bool = False


class AccountConflict(Exception):
    """The identifiers belong to different accounts; what to do is the caller's rule."""

    def __init__(self, account_ids: set[uuid.UUID]) -> None:
        super().__init__("identifiers belong to different accounts")
        self.account_ids = account_ids


class AccountGone(Exception):
    """A login reached an erased account (it lost a race to the erasure, whose commit it
    waited for): the caller starts over, and finds the person new."""

    def __init__(self, account_id: uuid.UUID) -> None:
        super().__init__("the account was erased")
        self.account_id = account_id


class MergeRefused(Exception):
    """A merge that would make a disabled account's identities usable: refused, nothing moved
    (the rule: a merge involving a disabled account never happens; README, "Disabled
    accounts"). ``disabled`` are the disabled ones among ``account_ids``."""

    def __init__(self, account_ids: set[uuid.UUID], disabled: set[uuid.UUID]) -> None:
        super().__init__("a merge involving a disabled account is refused")
        self.account_ids = account_ids
        self.disabled = disabled


@dataclass(frozen=True)
class AccountView:
    id: uuid.UUID
    status: str
    created_at: datetime
    merged_into_id: uuid.UUID | None
    nickname: str | None
    avatar_url: str | None
    disabled_reason: str | None = None
    deletion_requested_at: datetime | None = None
    deletion_due_at: datetime | None = None
    deleted_at: datetime | None = None

    @property
    def live(self) -> bool:
        """Neither merged away nor deleted."""
        return self.status in (AccountStatus.ACTIVE, AccountStatus.DISABLED)


@dataclass(frozen=True)
class IdentityView:
    id: uuid.UUID
    account_id: uuid.UUID
    kind: IdentityKind
    scope: str
    subject: str
    app_key: str | None
    created_at: datetime

    @property
    def key(self) -> IdentityKey:
        return IdentityKey(self.kind, self.scope, self.subject)


@dataclass(frozen=True)
class WechatSessionKeys:
    """A user's session keys in one mini-program: the latest WeChat gave, and the one before
    while it is still kept (data fetched just before a new wx.login is sealed with it)."""

    openid: str
    current: str = field(repr=False)
    previous: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class PasswordRecord:
    """A username identity with its password hash."""

    identity: IdentityView
    credential_id: uuid.UUID
    password_hash: str


def username_digest(username: str) -> str:
    """What a deleted account's username is reserved by: its hash, not the name itself."""
    return hashlib.sha256(f"username\0{username}".encode()).hexdigest()


def survivor_order(accounts: list[tuple[datetime, uuid.UUID]]) -> uuid.UUID:
    """Which of several accounts proven to be one person survives a merge: the oldest (ties by
    id), so that the answer is the same whichever request runs the merge."""
    return min(accounts, key=lambda a: (a[0], str(a[1])))[1]


# -- the read interface, and following a merged account to its survivor ------------------
# Readers above ``accounts`` (the partner use case, the API) depend on ``GraphReads`` only; the
# API's per-request DataLoaders implement it, so reads batch without the use case knowing.
MAX_MERGE_HOPS = 16
"""Merges re-point earlier merges at the survivor, so chains stay short; this only bounds a
corrupt cycle."""


class GraphReads(Protocol):
    async def account(self, account_id: uuid.UUID) -> AccountView | None: ...

    async def identities(self, account_id: uuid.UUID) -> list[IdentityView]: ...

    async def identities_by_key(self, keys: Sequence[IdentityKey]) -> list[IdentityView | None]: ...


async def follow_to_survivor(
    load: Callable[[uuid.UUID], Awaitable[AccountView | None]], account_id: uuid.UUID
) -> tuple[AccountView | None, bool]:
    """The live account ``account_id`` became, and whether a merge pointer was followed.
    A deleted account (or one merged into it) is no account at all: None."""
    merged = False
    view = await load(account_id)
    for _ in range(MAX_MERGE_HOPS):
        if view is None or view.merged_into_id is None:
            break
        merged = True
        view = await load(view.merged_into_id)
    if view is not None and view.status == AccountStatus.DELETED:
        return None, False
    return view, merged
