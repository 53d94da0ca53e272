"""Access tokens are signed without joserfc's per-call machinery (``tokens.CompactSigner``):
held here to be the token ``joserfc.jwt.encode`` writes for the same header, claims and key.

ES256 signatures are randomised, so two signings of one input differ in their third segment
only: the header and claims segments must be byte-equal to joserfc's, and the signature must
verify (with joserfc, against the published key set) as a signature of exactly those bytes.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from joserfc import jws, jwt
from joserfc.errors import BadSignatureError

from gateway.sessions.keys import ALGORITHM, SigningKeys, new_key
from gateway.sessions.tokens import ACCESS_TOKEN_TYPE, AccessClaims, AccessTokens, CompactSigner

ISSUER = "https://gateway.test"


def _claims(app_key: str = "mp-demo") -> AccessClaims:
    expires = datetime.now(UTC) + timedelta(minutes=5)
    return AccessClaims(uuid.uuid4(), uuid.uuid4(), app_key, expires)


@pytest.mark.parametrize("app_key", ["mp-demo", "应用-ü", 'quote"and\\slash'])
def test_issued_token_is_joserfcs_token(app_key: str) -> None:
    keys = SigningKeys([new_key(), new_key()])  # the newest signs
    tokens = AccessTokens(keys, ISSUER)
    claims, now = _claims(app_key), datetime.now(UTC)
    payload = tokens.claims_of(claims, now)
    header = {"alg": ALGORITHM, "kid": keys.current.kid, "typ": ACCESS_TOKEN_TYPE}
    ours = CompactSigner(keys.current, header).sign(payload).split(".")
    theirs = jwt.encode(header, payload, keys.current).split(".")
    assert ours[:2] == theirs[:2]
    # the signature is over those bytes, by the current key, as raw r||s
    jws.deserialize_compact(".".join(ours), keys.key_set, algorithms=[ALGORITHM])
    with pytest.raises(BadSignatureError):
        jws.deserialize_compact(".".join(ours), SigningKeys([new_key()]).current)


def test_issued_token_checks_back() -> None:
    keys = SigningKeys([new_key()])
    tokens = AccessTokens(keys, ISSUER)
    claims = _claims()
    token = tokens.issue(claims, datetime.now(UTC))
    decoded = jwt.decode(token, keys.key_set, algorithms=[ALGORITHM])
    assert decoded.header == {"typ": ACCESS_TOKEN_TYPE, "alg": ALGORITHM, "kid": keys.current.kid}
    assert tokens.check(token) == AccessClaims(
        claims.account_id,
        claims.session_id,
        claims.app_key,
        datetime.fromtimestamp(int(claims.expires_at.timestamp()), UTC),
    )


def test_every_token_differs() -> None:
    tokens = AccessTokens(SigningKeys([new_key()]), ISSUER)
    claims, now = _claims(), datetime.now(UTC)
    assert len({tokens.issue(claims, now) for _ in range(20)}) == 20
