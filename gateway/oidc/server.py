"""authlib's authorization server, fed with what the endpoints prefetched.

authlib calls back synchronously (``query_client``, ``query_authorization_code``,
``save_authorization_code``, ``generate_token`` ...); every such answer was read before the
call (``Prefetched``), and every write is done by the endpoint after authlib validated the
request. PKCE (S256 only: ``plain`` is refused, so no downgrade), the client authentication
methods, the redirect URI's exact match, ``prompt`` and ``nonce`` handling and the id_token's
claims and signature are authlib's (signed with joserfc and the gateway's ES256 keys).
"""

from __future__ import annotations

import contextvars
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, InvalidRequestError
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, RefreshTokenGrant
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import AuthorizationCodeMixin, UserInfo
from authlib.oidc.core.grants import OpenIDCode
from starlette.responses import JSONResponse, Response

from gateway.clients.grants import CODE_SECONDS, CodeGrant, RefreshGrant
from gateway.clients.registry import ClientView
from gateway.sessions.keys import ALGORITHM, SigningKeys
from gateway.sessions.model import IssuedTokens
from gateway.store.models import utcnow

ID_TOKEN_SECONDS = 3600
NONCE_MAX = 255
SECRET_METHODS = ("client_secret_basic", "client_secret_post")
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass
class Prefetched:
    """What authlib will ask for in this request, read before it runs."""

    issuer: str
    clients: dict[str, ClientView] = field(default_factory=dict)
    code: CodeGrant | None = None
    refresh: RefreshGrant | None = None
    user: Subject | None = None
    issued: IssuedTokens | None = None
    saved_code: tuple[str, CodeGrant] | None = None
    auth_time: int = 0
    # how the browser logged in on the hosted page: pwd, sms, wechat_qr, wechat_oauth,
    # wechat_miniprogram_scan (``gateway.web``)
    amr: tuple[str, ...] = ()


@dataclass(frozen=True)
class Subject:
    """The person a grant is for: the account, and the ``sub`` this client sees."""

    account_id: uuid.UUID
    sub: str


_CURRENT: contextvars.ContextVar[Prefetched] = contextvars.ContextVar("oidc_prefetched")


def current() -> Prefetched:
    return _CURRENT.get()


class GatewayClient(ClientMixin):  # type: ignore[misc]
    """A registered client as authlib sees it."""

    def __init__(self, view: ClientView) -> None:
        self.view = view

    def get_client_id(self) -> str:
        return self.view.client_id

    def get_default_redirect_uri(self) -> None:
        return None  # always named, always matched exactly

    def get_allowed_scope(self, scope: str) -> str:
        asked = scope.split() if scope else ["openid"]
        return " ".join(s for s in dict.fromkeys(asked) if s in self.view.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.view.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return self.view.check_secret(client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "none" if self.view.public else method in SECRET_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token")


class StoredCode(AuthorizationCodeMixin):  # type: ignore[misc]
    def __init__(self, grant: CodeGrant) -> None:
        self.grant = grant
        self.code_challenge = grant.code_challenge
        self.code_challenge_method = grant.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.grant.redirect_uri

    def get_scope(self) -> str:
        return self.grant.scope

    def get_nonce(self) -> str | None:
        return self.grant.nonce

    def get_auth_time(self) -> int:
        return self.grant.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> list[str]:
        return list(self.grant.amr)


class S256Only(CodeChallenge):  # type: ignore[misc]
    """PKCE with S256 only, required for public clients from the authorize step on (RFC 9700
    §2.1.1): a public client without a challenge, or any ``plain`` one, is refused there."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        client = grant.request.client
        if client is not None and client.view.public and not data.get("code_challenge"):
            raise InvalidRequestError("a public client must use PKCE (S256)")
        super().validate_code_challenge(grant, redirect_uri)


class CodeGrantFlow(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = [*SECRET_METHODS, "none"]

    def save_authorization_code(self, code: str, request: Any) -> None:
        data, fetched = request.payload.data, current()
        fetched.saved_code = (
            code,
            CodeGrant(
                client_id=request.client.get_client_id(),
                account_id=request.user.account_id,
                redirect_uri=request.payload.redirect_uri,
                scope=request.scope,
                nonce=data.get("nonce"),
                code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
                auth_time=fetched.auth_time,
                amr=fetched.amr,
                expires_at=utcnow() + _seconds(CODE_SECONDS),
            ),
        )

    def query_authorization_code(self, code: str, client: GatewayClient) -> StoredCode | None:
        grant = current().code
        if grant is None or grant.client_id != client.get_client_id():
            return None
        return StoredCode(grant)  # spent or expired ones are refused when redeemed

    def delete_authorization_code(self, authorization_code: StoredCode) -> None:
        """Spent already, in the transaction that opened the session."""

    def authenticate_user(self, authorization_code: StoredCode) -> Subject | None:
        return current().user

    def generate_token(self, **_: Any) -> dict[str, Any]:
        return token_body(current(), self.request.authorization_code.get_scope())

    def save_token(self, token: dict[str, Any]) -> None:
        """The login session holds it (``Sessions.start``)."""


class RefreshFlow(RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = [*SECRET_METHODS, "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshGrant | None:
        return current().refresh

    def authenticate_user(self, credential: RefreshGrant) -> Subject | None:
        return current().user

    def generate_token(self, scope: str | None = None, **_: Any) -> dict[str, Any]:
        return token_body(current(), scope or "")

    def revoke_old_credential(self, refresh_token: RefreshGrant) -> None:
        """Rotation spent it (``Sessions.refresh``)."""

    def save_token(self, token: dict[str, Any]) -> None:
        """The login session holds it."""


def token_body(fetched: Prefetched, scope: str) -> dict[str, Any]:
    issued = fetched.issued
    if issued is None:  # the endpoint issues before authlib builds the answer
        raise RuntimeError("tokens are issued before the response is built")
    expires_in = max(1, int(issued.expires_at.timestamp() - time.time()))
    return {
        "token_type": "Bearer",
        "access_token": issued.access_token,
        "refresh_token": issued.refresh_token,
        "expires_in": expires_in,
        "scope": scope,
    }


class IdTokens(OpenIDCode):  # type: ignore[misc]
    """authlib's id_token for the code flow: ES256 with the gateway's newest key."""

    def __init__(self, keys: SigningKeys) -> None:
        super().__init__(require_nonce=False)
        self._keys = keys

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        return False  # a nonce is the client's to check; codes are single use anyway

    def validate_openid_authorization_request(self, grant: Any, redirect_uri: str) -> None:
        """A nonce is kept with the code until it is redeemed: printable, at most 255."""
        nonce = grant.request.payload.data.get("nonce")
        if nonce is not None and not (len(nonce) <= NONCE_MAX and nonce.isprintable()):
            raise InvalidRequestError("nonce must be printable and at most 255 characters")
        super().validate_openid_authorization_request(grant, redirect_uri)

    def resolve_client_private_key(self, client: GatewayClient) -> Any:
        return self._keys.current

    def get_client_algorithm(self, client: GatewayClient) -> str:
        return ALGORITHM

    def get_encode_header(self, client: GatewayClient) -> dict[str, str]:
        return {"alg": ALGORITHM, "kid": str(self._keys.current.kid), "typ": "JWT"}

    def get_client_claims(self, client: GatewayClient) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": current().issuer,
            "aud": client.get_client_id(),
            "iat": now,
            "exp": now + ID_TOKEN_SECONDS,
        }

    def generate_user_info(self, user: Subject, scope: str) -> UserInfo:
        return UserInfo(sub=user.sub)


class Provider(AuthorizationServer):  # type: ignore[misc]
    """The authorization server; its answers are starlette responses."""

    def __init__(self, keys: SigningKeys) -> None:
        super().__init__(scopes_supported=["openid", "profile", "phone", "offline_access"])
        self.register_grant(CodeGrantFlow, [S256Only(required=True), IdTokens(keys)])
        self.register_grant(RefreshFlow)

    def query_client(self, client_id: str) -> GatewayClient | None:
        view = current().clients.get(client_id)
        return GatewayClient(view) if view is not None and not view.disabled else None

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """The login session holds it."""

    def create_oauth2_request(self, request: Any) -> Any:
        """The endpoints build the ``PlainRequest`` themselves (``gateway.compat.authlib``)."""
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> Response:
        headers = dict(headers)
        if isinstance(body, dict):
            return JSONResponse(body, status_code=status, headers={**headers, **_NO_STORE})
        return Response(body or b"", status_code=status, headers=headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signals."""

    @staticmethod
    def bind(fetched: Prefetched) -> contextvars.Token[Prefetched]:
        return _CURRENT.set(fetched)

    @staticmethod
    def unbind(token: contextvars.Token[Prefetched]) -> None:
        _CURRENT.reset(token)


def _seconds(n: int) -> Any:
    from datetime import timedelta

    return timedelta(seconds=n)
