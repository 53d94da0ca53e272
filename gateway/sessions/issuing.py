"""Issuing a login pair: the facts of a session, the rows it and its refresh token are written
as, and the signed access token with the refresh token a client gets back."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

from gateway.audit import ClientInfo
from gateway.config import TokenLifetimes
from gateway.sessions.model import IssuedTokens
from gateway.sessions.statements import SESSION_CLIENT_FACTS
from gateway.sessions.tokens import AccessClaims, AccessTokens, expiry, new_refresh_token


class Facts(NamedTuple):
    """What issuing a pair needs to know of its session."""

    id: uuid.UUID
    account_id: uuid.UUID
    app_key: str
    expires_at: datetime


def session_row(facts: Facts, client: ClientInfo, now: datetime) -> dict[str, Any]:
    row = {"id": facts.id, "account_id": facts.account_id, "app_key": facts.app_key}
    row |= {name: getattr(client, name) for name in SESSION_CLIENT_FACTS}
    return row | {"created_at": now, "last_used_at": now, "expires_at": facts.expires_at}


def token_row(facts: Facts, digest: str, now: datetime) -> dict[str, Any]:
    """A refresh token's row: only its digest is stored."""
    return {
        "id": uuid.uuid4(),
        "session_id": facts.id,
        "token_hash": digest,
        "created_at": now,
        "expires_at": facts.expires_at,
    }


class Issuer:
    """Lifetimes per kind of app, and the signing of access tokens."""

    def __init__(
        self,
        tokens: AccessTokens,
        lifetimes: TokenLifetimes,
        kind_of: Callable[[str], str | None],
    ) -> None:
        self._tokens = tokens
        self._lifetimes = lifetimes
        self._kind_of = kind_of

    def session_end(self, app_key: str, now: datetime) -> datetime:
        """When a session opened now for ``app_key`` ends (its refresh tokens with it)."""
        return expiry(now, self._lifetimes.for_kind(self._kind_of(app_key))[1])

    def issue(self, login: Facts, now: datetime) -> tuple[IssuedTokens, dict[str, Any]]:
        """A new pair for a session, and the row of its refresh token (hashed) to write."""
        refresh, digest = new_refresh_token()
        return self.pair(login, now, refresh), token_row(login, digest, now)

    def pair(self, login: Facts, now: datetime, refresh: str) -> IssuedTokens:
        """The pair a client gets: a signed access token and ``refresh`` (already stored)."""
        access_seconds = self._lifetimes.for_kind(self._kind_of(login.app_key))[0]
        access_expires = min(expiry(now, access_seconds), login.expires_at)
        claims = AccessClaims(login.account_id, login.id, login.app_key, access_expires)
        return IssuedTokens(
            access_token=self._tokens.issue(claims, now),
            refresh_token=refresh,
            expires_at=access_expires,
            refresh_expires_at=login.expires_at,
            account_id=login.account_id,
            session_id=login.id,
        )
