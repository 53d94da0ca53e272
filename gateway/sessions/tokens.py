"""Access tokens (short-lived signed JWTs) and refresh tokens (opaque, stored hashed)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwk import ECKey

from gateway.sessions.keys import ALGORITHM, SigningKeys

ACCESS_TOKEN_TYPE = "at+jwt"  # RFC 9068: never confused with an ID token or a partner token
FRONTEND_AUDIENCE = "frontend"
VERIFIED_TOKENS = 4096
"""Access tokens whose signature a process remembers having checked (~0.4 KiB each: the
claims under the token's SHA-256, not the ~0.5 KiB token itself; issue 29)."""


class TokenRejected(Exception):
    """A bearer token that is not a live token: ``code`` is ``TOKEN_EXPIRED`` or
    ``INVALID_TOKEN`` (RFC 6750 ``invalid_token`` either way). ``ours`` is False when it is not
    a frontend access token at all, so that another verifier (partners) may still accept it."""

    def __init__(self, code: str, *, ours: bool = True) -> None:
        super().__init__(code)
        self.code = code
        self.ours = ours


@dataclass(frozen=True, slots=True)
class AccessClaims:
    account_id: uuid.UUID
    session_id: uuid.UUID
    app_key: str
    expires_at: datetime


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


class CompactSigner:
    """ES256 compact JWS for one key and one header, the bytes ``jwt.encode`` writes for them.

    joserfc spent almost half of an access token's signing CPU (~45 of ~100 us) on its
    per-call header and claims checks and key-operation lookups around the curve operation,
    on every login and refresh.
    Here the header segment is joserfc's own, serialised once; the claims are JSON as
    ``jwt.encode`` writes them; the signature is the curve operation on a key object built once
    from the JWK, as raw r||s (RFC 7518 3.4). ``tests/test_token_signing.py`` holds every
    segment but the (randomised) signature byte-equal to joserfc's, and its signature valid."""

    _SIZE = 32  # P-256: r and s are 32 bytes each

    def __init__(self, key: ECKey, header: dict[str, Any]) -> None:
        self.header_segment = jwt.encode(header, {}, key).split(".")[0].encode()
        d = base64.urlsafe_b64decode(str(key.as_dict(private=True)["d"]) + "==")
        self._key = ec.derive_private_key(int.from_bytes(d, "big"), ec.SECP256R1())
        self._ecdsa = ec.ECDSA(hashes.SHA256())

    def sign(self, claims: dict[str, object]) -> str:
        body = json.dumps(claims, ensure_ascii=False, separators=(",", ":")).encode()
        signing_input = self.header_segment + b"." + _b64(body)
        r, s = decode_dss_signature(self._key.sign(signing_input, self._ecdsa))
        raw = r.to_bytes(self._SIZE, "big") + s.to_bytes(self._SIZE, "big")
        return (signing_input + b"." + _b64(raw)).decode()


class AccessTokens:
    def __init__(self, keys: SigningKeys, issuer: str) -> None:
        self._keys = keys
        self._issuer = issuer
        current = keys.current
        header = {"alg": ALGORITHM, "kid": current.kid, "typ": ACCESS_TOKEN_TYPE}
        self._signer = CompactSigner(current, header)
        self._registry = jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": FRONTEND_AUDIENCE},
            exp={"essential": True},
            sub={"essential": True},
            sid={"essential": True},
        )
        self._verified: dict[bytes, AccessClaims] = {}

    def issue(self, claims: AccessClaims, now: datetime) -> str:
        return self._signer.sign(self.claims_of(claims, now))

    def claims_of(self, claims: AccessClaims, now: datetime) -> dict[str, object]:
        """The JWT claims of an access token issued ``now``."""
        return {
            "iss": self._issuer,
            "aud": FRONTEND_AUDIENCE,
            "sub": str(claims.account_id),
            "sid": str(claims.session_id),
            "app": claims.app_key,
            "iat": int(now.timestamp()),
            "exp": int(claims.expires_at.timestamp()),
            "jti": secrets.token_urlsafe(12),
        }

    def check(self, token: str) -> AccessClaims:
        """The claims of a live frontend token; ``TokenRejected`` saying why not otherwise.

        A token's signature is checked once per process (the ES256 verify and the JOSE
        parsing are most of a token check's CPU): the key set is fixed for the process's
        lifetime, the memo is keyed by the whole token (any other byte is another token), and
        expiry is checked again at every use. Revocation is the session check's business.
        The memo holds ``VERIFIED_TOKENS`` at most, first in first out (a token still in use
        when it leaves is verified once more), keyed by the token's SHA-256: a collision-free
        stand-in for the whole token at a tenth of its size."""
        digest = hashlib.sha256(token.encode()).digest()
        claims = self._verified.get(digest)
        if claims is None:
            claims = self._verify(token)
            self._remember(digest, claims)
        if claims.expires_at.timestamp() < time.time():
            raise TokenRejected("TOKEN_EXPIRED")
        return claims

    def _remember(self, digest: bytes, claims: AccessClaims) -> None:
        verified = self._verified
        while len(verified) >= VERIFIED_TOKENS:
            del verified[next(iter(verified))]  # the first remembered
        verified[digest] = claims

    def remembered(self) -> int:
        """How many verified tokens the memo holds (at most ``VERIFIED_TOKENS``)."""
        return len(self._verified)

    def _verify(self, token: str) -> AccessClaims:
        """Signature, type, audience and claims: what ``check`` remembers when they hold."""
        try:
            decoded = jwt.decode(token, self._keys.key_set, algorithms=[ALGORITHM])
        except (JoseError, ValueError, TypeError):
            raise TokenRejected("INVALID_TOKEN", ours=False) from None
        claims = decoded.claims
        if decoded.header.get("typ") != ACCESS_TOKEN_TYPE or claims.get("aud") != FRONTEND_AUDIENCE:
            raise TokenRejected("INVALID_TOKEN", ours=False)
        try:
            self._registry.validate(claims)
            return AccessClaims(
                account_id=uuid.UUID(claims["sub"]),
                session_id=uuid.UUID(claims["sid"]),
                app_key=str(claims.get("app", "")),
                expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            )
        except ExpiredTokenError:
            raise TokenRejected("TOKEN_EXPIRED") from None
        except (JoseError, ValueError, KeyError, TypeError):
            raise TokenRejected("INVALID_TOKEN") from None


def new_refresh_token() -> tuple[str, str]:
    """256 random bits; only the SHA-256 is stored."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def successor_key(secret_key: str) -> bytes:
    """The key refresh tokens' successors are derived with, from the gateway's secret key
    (a key of its own: the secret's other uses never see these inputs)."""
    label = b"gateway/refresh-token-successor/v1"
    return hmac.new(secret_key.encode(), label, hashlib.sha256).digest()


def successor_refresh_token(key: bytes, spent: str) -> tuple[str, str]:
    """The refresh token that follows ``spent`` at rotation: HMAC-SHA256 of it (256 bits, as
    unguessable as a random one without the key). Derived, not drawn, so a reuse of ``spent``
    inside the grace window is answered the same successor again, never a new chain, while
    only the successor's SHA-256 is stored."""
    mac = hmac.new(key, spent.encode(), hashlib.sha256).digest()
    token = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    return token, hash_refresh_token(token)


def expiry(now: datetime, seconds: int) -> datetime:
    return now + timedelta(seconds=seconds)
