"""Partner access tokens: short-lived ES256 JWTs for the ``partners`` audience only, so a
frontend token is never taken for a partner's, nor the reverse."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from joserfc import jwt
from joserfc.errors import ExpiredTokenError, JoseError

from gateway.sessions.keys import ALGORITHM, SigningKeys
from gateway.sessions.tokens import ACCESS_TOKEN_TYPE, TokenRejected

PARTNER_AUDIENCE = "partners"
LIFETIME_SECONDS = 300


@dataclass(frozen=True)
class PartnerClaims:
    client_id: str
    scopes: frozenset[str]


class PartnerTokens:
    def __init__(self, keys: SigningKeys, issuer: str) -> None:
        self._keys = keys
        self._issuer = issuer
        self._registry = jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": PARTNER_AUDIENCE},
            exp={"essential": True},
            sub={"essential": True},
        )

    def issue(self, client_id: str, scopes: list[str], now: datetime) -> str:
        key = self._keys.current
        header = {"alg": ALGORITHM, "kid": key.kid, "typ": ACCESS_TOKEN_TYPE}
        claims = {
            "iss": self._issuer,
            "aud": PARTNER_AUDIENCE,
            "sub": client_id,
            "client_id": client_id,
            "scope": " ".join(scopes),
            "iat": int(now.timestamp()),
            "exp": int(now.timestamp()) + LIFETIME_SECONDS,
            "jti": secrets.token_urlsafe(12),
        }
        return jwt.encode(header, claims, key)

    def check(self, token: str) -> PartnerClaims:
        """The claims of a live partner token; ``TokenRejected`` saying why not otherwise."""
        try:
            decoded = jwt.decode(token, self._keys.key_set, algorithms=[ALGORITHM])
            if decoded.header.get("typ") != ACCESS_TOKEN_TYPE:
                raise TokenRejected("INVALID_TOKEN")
            self._registry.validate(decoded.claims)
            scope = decoded.claims.get("scope", "")
            return PartnerClaims(str(decoded.claims["sub"]), frozenset(str(scope).split()))
        except ExpiredTokenError:
            raise TokenRejected("TOKEN_EXPIRED") from None
        except (JoseError, ValueError, KeyError, TypeError):
            raise TokenRejected("INVALID_TOKEN") from None
