"""authlib's server internals the OpenID Connect provider relies on (``gateway.compat.authlib``
and the subclasses in ``gateway.oidc.server``) still hold. Each check names the assumption, so
an authlib upgrade that moves one fails here, saying what to look at, instead of as a
provider that quietly skips a check (PKCE, the id_token's claims) or breaks at run time."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

from authlib.oauth2.rfc6749 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, RefreshTokenGrant
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.core.grants.code import OpenIDToken

from gateway.compat.authlib import PlainRequest
from gateway.oidc.server import CodeGrantFlow, IdTokens, RefreshFlow, S256Only


def _calls_in_order(function: Callable[..., Any], *names: str) -> None:
    source = inspect.getsource(function)
    positions = [source.find(f"{name}(") for name in names]
    assert -1 not in positions, f"{function.__qualname__} no longer calls all of {names}"
    assert positions == sorted(positions), f"{function.__qualname__} calls {names} in another order"


def test_create_token_response_is_the_two_halves_the_token_endpoint_splits() -> None:
    """compat.authlib.validate_token_request/finish_token_request: get_token_grant,
    validate_token_request, create_token_response, handle_response."""
    _calls_in_order(
        AuthorizationServer.create_token_response,
        "get_token_grant",
        "grant.validate_token_request",
        "grant.create_token_response",
        "handle_response",
    )
    assert "handle_error_response" in inspect.getsource(AuthorizationServer.create_token_response)


def test_an_oauth2_request_takes_its_fields_from_payload_form_and_args() -> None:
    """PlainRequest sets ``payload`` and overrides ``form``/``args`` like authlib's own
    framework integrations."""
    request = PlainRequest(
        "GET", "https://gw.test/oauth/authorize", {}, [("client_id", "a"), ("client_id", "b")], []
    )
    assert isinstance(request, OAuth2Request)
    assert request.payload.client_id == "a"
    assert request.payload.datalist["client_id"] == ["a", "b"]
    assert "self.payload = None" in inspect.getsource(OAuth2Request.__init__)


def test_the_grants_call_back_through_the_methods_the_provider_overrides() -> None:
    """The code grant asks ``query_authorization_code``, ``authenticate_user``,
    ``generate_token``, ``save_token``, ``delete_authorization_code``; the refresh grant
    ``authenticate_refresh_token``, ``authenticate_user``, ``issue_token`` ->
    ``generate_token``, ``revoke_old_credential``; both answer with what was prefetched."""
    code_source = inspect.getsource(AuthorizationCodeGrant)
    called = (
        "query_authorization_code", "authenticate_user", "save_authorization_code",
        "delete_authorization_code", "self.generate_token", "self.save_token",
    )  # fmt: skip
    for name in called:
        assert f"{name}(" in code_source, name
        assert name.removeprefix("self.") in vars(CodeGrantFlow), name
    refresh_source = inspect.getsource(RefreshTokenGrant)
    for name in ("authenticate_refresh_token", "authenticate_user", "revoke_old_credential"):
        assert f"{name}(" in refresh_source, name
        assert name in vars(RefreshFlow), name
    assert "self.generate_token(" in inspect.getsource(RefreshTokenGrant.issue_token)


def test_pkce_runs_on_the_hooks_the_s256_only_extension_extends() -> None:
    """CodeChallenge hooks ``validate_code_challenge`` after the authorization payload and
    ``validate_code_verifier`` after the token request; S256Only narrows the methods."""
    source = inspect.getsource(CodeChallenge.__call__)
    assert '"after_validate_authorization_request_payload"' in source
    assert "self.validate_code_challenge" in source
    assert '"after_validate_token_request"' in source
    assert "self.validate_code_verifier" in source
    assert "SUPPORTED_CODE_CHALLENGE_METHOD" in inspect.getsource(
        CodeChallenge.validate_code_challenge
    )
    assert "DEFAULT_CODE_CHALLENGE_METHOD" in inspect.getsource(
        CodeChallenge.validate_code_verifier
    )
    assert S256Only.SUPPORTED_CODE_CHALLENGE_METHOD == ["S256"]


def test_the_id_token_is_built_from_the_claims_header_and_key_the_provider_gives() -> None:
    """OpenIDToken.encode_id_token asks get_client_algorithm, get_encode_header,
    get_compatible_claims (-> get_client_claims: the per-request issuer and audience),
    generate_user_info (the sub) and resolve_client_private_key."""
    source = inspect.getsource(OpenIDToken.encode_id_token)
    for name in ("get_client_algorithm", "get_encode_header", "get_compatible_claims",
                 "generate_user_info", "resolve_client_private_key",
                 "get_authorization_code_claims"):  # fmt: skip
        assert f"self.{name}(" in source, name
    compatible = inspect.getsource(type(IdTokens(_keys())).get_compatible_claims)
    assert "self.get_client_claims(" in compatible
    assert issubclass(IdTokens, OpenIDCode)
    hooks = inspect.getsource(OpenIDCode.__call__)
    assert re.search(r'"after_create_token_response",\s*self.process_token', hooks)
    assert "validate_request_prompt" in hooks


def _keys() -> Any:
    from gateway.sessions.keys import SigningKeys, new_key

    return SigningKeys([new_key()])
