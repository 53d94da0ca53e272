"""The account graph's tables. Only ``gateway.accounts`` imports this module (an import
contract holds it): everything else reaches accounts, identities, credentials and WeChat
session keys through the interface in ``gateway.accounts``.

Identifiers follow Ory Kratos: every way to reach an account is an ``Identity`` row under one
unique index ``(kind, scope, subject)``, so "one identity belongs to exactly one account" is a
database guarantee, not a convention.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from gateway.accounts.model import AccountStatus
from gateway.store.models import UTCDateTime, at_field, id_field


class Account(SQLModel, table=True):
    __tablename__ = "accounts"

    id: uuid.UUID = id_field()
    status: str = Field(default=AccountStatus.ACTIVE.value, max_length=16)
    merged_into_id: uuid.UUID | None = Field(default=None, foreign_key="accounts.id")
    nickname: str | None = Field(default=None, max_length=128)
    avatar_url: str | None = Field(default=None, max_length=512)
    created_at: datetime = at_field()
    disabled_reason: str | None = Field(default=None, max_length=256)
    deletion_requested_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    deletion_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class UsernameReservation(SQLModel, table=True):
    """A deleted account's username stays taken for a while, kept only as a SHA-256."""

    __tablename__ = "username_reservations"

    digest: str = Field(primary_key=True, max_length=64)
    until: datetime = Field(sa_type=UTCDateTime, nullable=False)


class Identity(SQLModel, table=True):
    __tablename__ = "identities"
    __table_args__ = (
        sa.UniqueConstraint("kind", "scope", "subject", name="uq_identities_kind_scope_subject"),
    )

    id: uuid.UUID = id_field()
    account_id: uuid.UUID = Field(foreign_key="accounts.id", index=True)
    kind: str = Field(max_length=24)
    scope: str = Field(default="", max_length=64)
    subject: str = Field(max_length=128)
    app_key: str | None = Field(default=None, max_length=64)
    created_at: datetime = at_field()


class Credential(SQLModel, table=True):
    """A password (argon2id hash) for a username identity; it moves with the identity."""

    __tablename__ = "credentials"

    id: uuid.UUID = id_field()
    identity_id: uuid.UUID = Field(foreign_key="identities.id", unique=True)
    password_hash: str = Field(max_length=256)
    created_at: datetime = at_field()
    updated_at: datetime = at_field()


class WechatSession(SQLModel, table=True):
    """The latest session_key per (appid, openid), sealed with the gateway's secret key, and
    the previous one for a few minutes."""

    __tablename__ = "wechat_sessions"
    __table_args__ = (sa.UniqueConstraint("appid", "openid", name="uq_wechat_sessions_app_openid"),)

    id: uuid.UUID = id_field()
    appid: str = Field(max_length=64)
    openid: str = Field(max_length=128)
    session_key_sealed: str = Field(max_length=256)
    updated_at: datetime = at_field()
    # the key before the latest exchange, kept briefly: open data fetched just before a new
    # wx.login is sealed with it (WeChat rotates the key at every wx.login)
    previous_key_sealed: str | None = Field(default=None, max_length=256)
    previous_until: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Avatar(SQLModel, table=True):
    """A profile picture a person uploaded, re-encoded (no metadata), served at a URL named
    by its id. ``in_use``: the account's current avatar; an account keeps at most it and one
    upload not yet chosen. Erased with the account."""

    __tablename__ = "avatars"

    id: uuid.UUID = id_field()
    account_id: uuid.UUID = Field(foreign_key="accounts.id", index=True)
    media_type: str = Field(max_length=32)
    data: bytes = Field(sa_type=sa.LargeBinary, nullable=False)
    in_use: bool = Field(default=False)
    created_at: datetime = at_field()
