"""The OpenID Connect provider's tables: clients, consents, authorization codes.

No foreign key to ``accounts``: an erased account's rows must not hold its erasure up (its
consents and codes are removed with ``Consents.forget``), and a code's account is checked
when the code is redeemed anyway.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from gateway.store.models import UTCDateTime, at_field, id_field


class OidcClient(SQLModel, table=True):
    """A relying party. Its secret (256 random bits) is kept as a SHA-256 only: nothing
    reversible, and a high-entropy secret needs no slow hash."""

    __tablename__ = "oidc_clients"

    client_id: str = Field(max_length=64, primary_key=True)
    name: str = Field(max_length=128)
    secret_hash: str | None = Field(default=None, max_length=64)
    public: bool = Field(default=False)
    first_party: bool = Field(default=False)
    redirect_uris: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    post_logout_redirect_uris: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    scopes: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = at_field()
    updated_at: datetime = at_field()


class OidcConsent(SQLModel, table=True):
    """What a person allowed a client (not first-party) to have; revoked ones are kept."""

    __tablename__ = "oidc_consents"

    id: uuid.UUID = id_field()
    account_id: uuid.UUID = Field(index=True)
    client_id: str = Field(max_length=64)
    scopes: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    granted_at: datetime = at_field()
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class OidcCode(SQLModel, table=True):
    """An authorization code, kept as its SHA-256: single use, short-lived. Once redeemed it
    names the login session it opened (so that a reuse ends it), and that session's grant
    (scope) is read here again at refresh and at userinfo."""

    __tablename__ = "oidc_codes"

    code_hash: str = Field(max_length=64, primary_key=True)
    client_id: str = Field(max_length=64)
    account_id: uuid.UUID
    redirect_uri: str = Field(max_length=2048)
    scope: str = Field(max_length=512)
    nonce: str | None = Field(default=None, max_length=512)
    code_challenge: str | None = Field(default=None, max_length=128)
    code_challenge_method: str | None = Field(default=None, max_length=8)
    auth_time: int
    amr: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    browser_session: str | None = Field(default=None, max_length=64)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    session_id: uuid.UUID | None = Field(default=None, index=True)
    created_at: datetime = at_field()
