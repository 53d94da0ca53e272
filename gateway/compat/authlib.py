"""authlib's server internals the OpenID Connect provider relies on (checked against authlib
1.9.10). Only ``gateway.oidc`` imports this module (an import-linter contract);
``tests/test_compat.py`` checks every assumption stated here against the installed authlib.

authlib's ``AuthorizationServer`` is synchronous and meant for a framework's request object,
while the gateway's reads and writes are async. The provider therefore prefetches what the
grant will ask for (the client, the code, the refresh token's grant), runs authlib's
validation, does the async work (spend the code, open or rotate the login session), then lets
authlib build the response (id_token included). That splits two of authlib's public one-shot
methods at the seams their own bodies have:

- ``create_token_response`` = ``get_token_grant`` + ``grant.validate_token_request()`` +
  ``grant.create_token_response()`` + ``handle_response``, ``OAuth2Error`` answered by
  ``handle_error_response``;
- a starlette request adapter sets ``OAuth2Request.payload`` (an ``OAuth2Payload``) and
  overrides ``form``/``args`` the way authlib's Flask and Django integrations do.

The id_token's per-request issuer goes in by ``LegacyMixin.get_client_claims`` (consulted by
``OpenIDToken.encode_id_token``), and its header by ``get_encode_header``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authlib.oauth2.rfc6749 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749.requests import OAuth2Payload


class FormPayload(OAuth2Payload):  # type: ignore[misc]
    """A query string's or form's fields, every value of each kept (authlib refuses repeated
    ``client_id``, ``redirect_uri``, ``code_challenge`` ... by the lists)."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._data: dict[str, str] = {}
        self._datalist: dict[str, list[str]] = {}
        for key, value in items:
            self._data.setdefault(key, value)
            self._datalist.setdefault(key, []).append(value)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> Any:
        return self._datalist


class PlainRequest(OAuth2Request):  # type: ignore[misc]
    """An ``OAuth2Request`` from a read request: method, URI, headers, query and form fields."""

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Mapping[str, str],
        query: list[tuple[str, str]],
        form: list[tuple[str, str]],
    ) -> None:
        super().__init__(method, uri, headers=headers)
        self._args = dict(query)
        self._form = dict(form)
        self.payload = FormPayload(form if method == "POST" else query)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


def validate_token_request(server: AuthorizationServer, request: OAuth2Request) -> Any:
    """The first half of ``create_token_response``: the grant, validated (``OAuth2Error``)."""
    grant = server.get_token_grant(request)
    grant.validate_token_request()
    return grant


def finish_token_request(server: AuthorizationServer, grant: Any) -> Any:
    """The second half: the token response (id_token by the grant's hooks)."""
    return server.handle_response(*grant.create_token_response())


def error_response(server: AuthorizationServer, request: OAuth2Request, error: Any) -> Any:
    return server.handle_error_response(request, error)
