"""Issuing a login pair: the facts of a session, and the signed access token with the refresh
token a client gets back (their rows are ``sessions.repository``'s)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from gateway.config import TokenLifetimes
from gateway.sessions.model import IssuedTokens
from gateway.sessions.records import Facts
from gateway.sessions.tokens import (
    AccessClaims,
    AccessTokens,
    expiry,
    new_refresh_token,
    successor_refresh_token,
)


class Issuer:
    """Lifetimes per kind of app, and the signing of access tokens."""

    def __init__(
        self,
        tokens: AccessTokens,
        lifetimes: TokenLifetimes,
        kind_of: Callable[[str], str | None],
        successor_key: bytes,
    ) -> None:
        self._successor_key = successor_key
        self._tokens = tokens
        self._lifetimes = lifetimes
        self._kind_of = kind_of

    def session_end(self, app_key: str, now: datetime) -> datetime:
        """When a session opened now for ``app_key`` ends (its refresh tokens with it)."""
        return expiry(now, self._lifetimes.for_kind(self._kind_of(app_key))[1])

    def issue(self, login: Facts, now: datetime) -> tuple[IssuedTokens, str]:
        """A new pair for a session, and its refresh token's digest (what is stored)."""
        refresh, digest = new_refresh_token()
        return self.pair(login, now, refresh), digest

    def successor(self, spent: str) -> tuple[str, str]:
        """The refresh token (and its digest) that follows ``spent``: always the same one."""
        return successor_refresh_token(self._successor_key, spent)

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
