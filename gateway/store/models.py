"""SQLModel tables of sessions, audit and partners, and the column types every table shares.

The account graph's tables live in ``gateway.accounts.tables``, which only ``accounts`` imports.
Only services import these; the GraphQL layer never sees a row.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite would hand back naive ones)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def id_field() -> Any:
    return Field(default_factory=uuid.uuid4, primary_key=True)


def at_field() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class LoginSession(SQLModel, table=True):
    """What the gateway issued, with the client facts risk control needs."""

    __tablename__ = "login_sessions"

    id: uuid.UUID = id_field()
    account_id: uuid.UUID = Field(foreign_key="accounts.id", index=True)
    app_key: str = Field(max_length=64)
    platform: str = Field(max_length=32)
    channel: str | None = Field(default=None, max_length=64)
    device_param: str | None = Field(default=None, max_length=512)
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=512)
    created_at: datetime = at_field()
    last_used_at: datetime = at_field()
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class RefreshToken(SQLModel, table=True):
    """Refresh tokens by SHA-256 only: they carry 256 random bits, so no slow hash is needed."""

    __tablename__ = "refresh_tokens"

    id: uuid.UUID = id_field()
    session_id: uuid.UUID = Field(foreign_key="login_sessions.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = at_field()
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AuditEvent(SQLModel, table=True):
    """Who did what, when, from where; never a secret, token or raw identifier."""

    __tablename__ = "audit_events"

    id: uuid.UUID = id_field()
    kind: str = Field(max_length=32, index=True)
    account_id: uuid.UUID | None = Field(default=None, index=True)
    session_id: uuid.UUID | None = Field(default=None)
    app_key: str | None = Field(default=None, max_length=64)
    platform: str | None = Field(default=None, max_length=32)
    channel: str | None = Field(default=None, max_length=64)
    device_param: str | None = Field(default=None, max_length=512)
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=512)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    # `gateway audit --since` and `audit prune` range over it
    created_at: datetime = Field(
        default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=True
    )


class Partner(SQLModel, table=True):
    """A partner service (client credentials). Its secret is kept only as a SHA-256: secrets are
    256 random bits from ``gateway partners add``, or operator-chosen ones from the config."""

    __tablename__ = "partners"

    id: uuid.UUID = id_field()
    client_id: str = Field(max_length=64, unique=True)
    secret_hash: str = Field(max_length=64)
    apps: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    platforms: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    scopes: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    rate_limit_per_minute: int = Field(default=600)
    source: str = Field(default="cli", max_length=16)
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = at_field()
    updated_at: datetime = at_field()
    # account events (``gateway.events``): where they go, and the signing secret sealed with
    # the gateway's secret key (signing needs the secret itself, unlike client authentication)
    webhook_url: str | None = Field(default=None, max_length=2048)
    webhook_secret_sealed: str | None = Field(default=None, max_length=256)


class AccountEventRow(SQLModel, table=True):
    """The outbox: one row per change of the account graph, written in the change's own
    transaction (``gateway.outbox``). ``seq`` orders them as written; ``appids`` and
    ``platforms`` are the account's doors when it was written, from which the dispatcher
    decides, by the partners' entitlements, who receives it (``partner_events``)."""

    __tablename__ = "account_events"

    seq: int | None = Field(
        default=None,
        sa_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
    )
    id: uuid.UUID = Field(default_factory=uuid.uuid4, unique=True)
    type: str = Field(max_length=40)
    account_id: uuid.UUID = Field(index=True)
    occurred_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    appids: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    platforms: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    dispatched: bool = Field(default=False, index=True)


class PartnerEventRow(SQLModel, table=True):
    """An event as one partner receives it. ``position`` is the partner's feed cursor: rows
    are inserted by one dispatcher at a time, in the order their events committed, so a
    reader never sees a lower position appear after a higher one. ``status``: ``pending``
    (a webhook will carry it), ``delivered``, ``failed`` (retries exhausted) or ``feed``
    (the partner had no webhook when it was dispatched: the pull feed only)."""

    __tablename__ = "partner_events"
    __table_args__ = (
        sa.Index("ix_partner_events_partner_position", "partner_id", "position"),
        sa.Index("ix_partner_events_due", "status", "next_attempt_at"),
        sa.Index("ix_partner_events_order", "partner_id", "account_id", "status"),
    )

    position: int | None = Field(
        default=None,
        sa_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
    )
    partner_id: str = Field(max_length=64)
    event_seq: int = Field(
        sa_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        foreign_key="account_events.seq",
        index=True,
    )
    account_id: uuid.UUID
    status: str = Field(max_length=16)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    last_status_code: int | None = Field(default=None)
    last_error: str | None = Field(default=None, max_length=256)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = at_field()


class SmsCodeRow(SQLModel, table=True):
    """The one live SMS code of a number for a purpose (``gateway.sms.codes``): its HMAC, never
    the code; a new request replaces it. ``expires_at`` is seconds since the epoch on the SMS
    clock (the sandbox's, where it has one), so expiry can be tested without waiting."""

    __tablename__ = "sms_codes"

    phone: str = Field(max_length=20, primary_key=True)
    purpose: str = Field(max_length=8, primary_key=True)
    code_hash: str = Field(max_length=64)
    expires_at: float = Field(index=True)
    attempts: int = Field(default=0)


class WebLoginTicketRow(SQLModel, table=True):
    """A scan-to-log-in ticket (``gateway.weblogin``): what a browser waits on while a person
    confirms in the mini-program. The ticket and the browser's binding secret are kept as
    SHA-256 digests (both are 256-bit random, so a plain hash cannot be reversed); ``scene``
    is what the mini-program code carries. Times are seconds on the web-login clock (the
    sandbox's, where it has one); a row outlives its ``expires_at`` only until the next
    ticket is started."""

    __tablename__ = "web_login_tickets"

    ticket_hash: str = Field(max_length=64, primary_key=True)
    scene: str = Field(max_length=32, unique=True)
    app_key: str = Field(max_length=64)
    binding_hash: str = Field(max_length=64)
    status: str = Field(max_length=12)
    account_id: uuid.UUID | None = Field(default=None)
    origin: str | None = Field(default=None, max_length=256)
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=512)
    created_at: float
    expires_at: float = Field(index=True)


class OperatorRow(SQLModel, table=True):
    """A person who runs the service (``gateway.console``): not an end user. The password is
    an argon2id hash, the TOTP secret sealed with the secret key (bound to the operator's id);
    ``totp_step`` is the last 30-second step whose code was accepted, so a code works once."""

    __tablename__ = "operators"

    id: uuid.UUID = id_field()
    name: str = Field(max_length=64, unique=True)
    role: str = Field(max_length=16)
    password_hash: str = Field(max_length=256)
    must_change: bool = True
    totp_sealed: str = Field(max_length=256)
    totp_step: int | None = Field(default=None, sa_type=sa.BigInteger)
    disabled: bool = False
    created_at: datetime = at_field()


class OperatorSessionRow(SQLModel, table=True):
    """An operator's console session: the cookie's SHA-256 only (256 random bits), its
    operator, and when it was last seen (``[admin] idle_minutes`` ends it)."""

    __tablename__ = "operator_sessions"

    secret_hash: str = Field(max_length=64, primary_key=True)
    operator_id: uuid.UUID = Field(foreign_key="operators.id", index=True, ondelete="CASCADE")
    created_at: datetime = at_field()
    last_seen_at: datetime = at_field()
