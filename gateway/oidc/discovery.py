"""``/.well-known/openid-configuration`` (OpenID Connect Discovery 1.0): the issuer is the
origin the gateway was reached at, unless ``[web] issuer`` names one; the keys are the
gateway's own JWKS."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.oidc.service import OidcServices

SCOPES = ["openid", "profile", "phone", "offline_access"]
CLAIMS = [
    "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "amr", "at_hash",
    "nickname", "picture", "phone_number", "phone_number_verified",
]  # fmt: skip


async def configuration(request: Request, svc: OidcServices) -> Response:
    issuer = svc.issuer(request)
    base = issuer.rstrip("/")
    body = {
        "issuer": issuer,
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "userinfo_endpoint": f"{base}/oauth/userinfo",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "end_session_endpoint": f"{base}/oauth/logout",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "scopes_supported": SCOPES,
        "claims_supported": CLAIMS,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic", "client_secret_post", "none",
        ],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic", "client_secret_post", "none",
        ],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
    }  # fmt: skip
    return JSONResponse(body, headers={"cache-control": "public, max-age=300"})
