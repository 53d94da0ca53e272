"""What the sessions module hands the layers above: issued tokens, the authenticated caller,
and a login session as the person may see it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from gateway.accounts.model import AccountView


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_at: datetime
    refresh_expires_at: datetime
    account_id: uuid.UUID
    session_id: uuid.UUID
    deletion_cancelled: bool = False  # this login cancelled the account's pending deletion
    # the account as read while issuing, when nothing about it changed (a refresh): the API
    # answers with it instead of reading it again
    account: AccountView | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Viewer:
    """The authenticated caller of a request."""

    account_id: uuid.UUID
    session_id: uuid.UUID
    app_key: str
    expires_at: datetime
    account: AccountView | None = field(default=None, compare=False, repr=False)
    session_created_at: datetime | None = None  # when this login happened (re-authentication)


@dataclass(frozen=True)
class SessionView:
    id: uuid.UUID
    app_key: str
    platform: str
    channel: str | None
    device_param: str | None
    ip: str | None
    user_agent: str | None
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
