"""The records ``sessions.repository`` answers with and takes: a session as issuing a pair
needs it, one about to be opened, one held for a refresh, one read for a token check. Typed,
so no row (and no column order) leaves the repository."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import NamedTuple

from gateway.accounts.model import AccountView
from gateway.audit import ClientInfo


class Facts(NamedTuple):
    """What issuing a pair needs to know of its session."""

    id: uuid.UUID
    account_id: uuid.UUID
    app_key: str
    expires_at: datetime


class Opening(NamedTuple):
    """A session about to be opened by a one-step sign-in, before the database says whose
    account it is; ``digest`` is its first refresh token's."""

    id: uuid.UUID
    app_key: str
    expires_at: datetime
    client: ClientInfo
    digest: str
    now: datetime

    def facts(self, account_id: uuid.UUID) -> Facts:
        return Facts(self.id, account_id, self.app_key, self.expires_at)


class Held(NamedTuple):
    """A live session held (locked) for a refresh, with the token presented and the account."""

    token_id: uuid.UUID
    session_id: uuid.UUID
    app_key: str
    expires_at: datetime
    account: AccountView

    @property
    def facts(self) -> Facts:
        return Facts(self.session_id, self.account.id, self.app_key, self.expires_at)


class LiveToken(NamedTuple):
    """What a token check reads of a live session, with its account."""

    app_key: str
    expires_at: datetime
    created_at: datetime
    account: AccountView
