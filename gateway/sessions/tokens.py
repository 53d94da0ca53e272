"""Access tokens (short-lived signed JWTs) and refresh tokens (opaque, stored hashed)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from joserfc import jwt
from joserfc.errors import JoseError

from gateway.sessions.keys import ALGORITHM, SigningKeys

ACCESS_TOKEN_TYPE = "at+jwt"  # RFC 9068: never confused with an ID token or a partner token
FRONTEND_AUDIENCE = "frontend"


@dataclass(frozen=True)
class AccessClaims:
    account_id: uuid.UUID
    session_id: uuid.UUID
    app_key: str
    expires_at: datetime


class AccessTokens:
    def __init__(self, keys: SigningKeys, issuer: str) -> None:
        self._keys = keys
        self._issuer = issuer
        self._registry = jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": FRONTEND_AUDIENCE},
            exp={"essential": True},
            sub={"essential": True},
            sid={"essential": True},
        )

    def issue(self, claims: AccessClaims, now: datetime) -> str:
        key = self._keys.current
        header = {"alg": ALGORITHM, "kid": key.kid, "typ": ACCESS_TOKEN_TYPE}
        payload = {
            "iss": self._issuer,
            "aud": FRONTEND_AUDIENCE,
            "sub": str(claims.account_id),
            "sid": str(claims.session_id),
            "app": claims.app_key,
            "iat": int(now.timestamp()),
            "exp": int(claims.expires_at.timestamp()),
            "jti": secrets.token_urlsafe(12),
        }
        return jwt.encode(header, payload, key)

    def verify(self, token: str) -> AccessClaims | None:
        """None for anything that is not a live token of ours: callers need no detail."""
        try:
            decoded = jwt.decode(token, self._keys.key_set, algorithms=[ALGORITHM])
            if decoded.header.get("typ") != ACCESS_TOKEN_TYPE:
                return None
            self._registry.validate(decoded.claims)
            return AccessClaims(
                account_id=uuid.UUID(decoded.claims["sub"]),
                session_id=uuid.UUID(decoded.claims["sid"]),
                app_key=str(decoded.claims.get("app", "")),
                expires_at=datetime.fromtimestamp(decoded.claims["exp"], UTC),
            )
        except (JoseError, ValueError, KeyError, TypeError):
            return None


def new_refresh_token() -> tuple[str, str]:
    """256 random bits; only the SHA-256 is stored."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def expiry(now: datetime, seconds: int) -> datetime:
    return now + timedelta(seconds=seconds)
