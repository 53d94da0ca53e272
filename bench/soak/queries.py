"""The GraphQL documents the soak's users send (variables carry codes, tokens and the client)."""

from __future__ import annotations

from bench.stack import APP_KEY

ERROR = "... on Error { code message }"
LOGIN = (
    "mutation($code: String!, $client: ClientInput!) { loginByCode(input: "
    f'{{app: "{APP_KEY}", code: $code, client: $client}}) {{ __typename '
    "... on LoginSuccess { accessToken refreshToken isNewAccount account { id } } "
    f"{ERROR} }} }}"
)
VIEWER = "{ viewer { id } }"
REFRESH = (
    "mutation($token: String!, $client: ClientInput!) { refreshToken(refreshToken: $token, "
    "client: $client) { __typename ... on RefreshSuccess { accessToken refreshToken } "
    f"{ERROR} }} }}"
)
BIND_UNIONID = (
    "mutation($encryptedData: String!, $iv: String!, $rawData: String, $signature: String, "
    "$client: ClientInput!) { bindUnionId(input: {encryptedData: $encryptedData, iv: $iv, "
    "rawData: $rawData, signature: $signature, client: $client}) { __typename "
    f"... on BindUnionIdSuccess {{ merged linked }} {ERROR} }} }}"
)
BIND_PHONE = (
    "mutation($code: String!, $client: ClientInput!) { bindPhoneNumber(input: "
    "{code: $code, client: $client}) { __typename "
    f"... on BindPhoneNumberSuccess {{ linked }} {ERROR} }} }}"
)
_PASSWORD_INPUT = f'{{username: $u, password: $p, app: "{APP_KEY}", client: $client}}'
REGISTER = (
    "mutation($u: String!, $p: String!, $client: ClientInput!) { registerWithPassword(input: "
    f"{_PASSWORD_INPUT}) {{ __typename ... on LoginSuccess {{ account {{ id }} }} {ERROR} }} }}"
)
PASSWORD_LOGIN = (
    "mutation($u: String!, $p: String!, $client: ClientInput!) { loginWithPassword(input: "
    f"{_PASSWORD_INPUT}) {{ __typename ... on LoginSuccess {{ account {{ id }} }} {ERROR} }} }}"
)
LOOKUP = (
    "query($id: ID!) { partner { __typename ... on PartnerQuery { account(id: $id) { "
    f"__typename ... on AccountLookup {{ found }} {ERROR} }} }} {ERROR} }} }}"
)

SUCCESS = {
    "login": "LoginSuccess",
    "viewer": None,  # a query: its answer is { viewer { id } }
    "refresh": "RefreshSuccess",
    "refresh (2 tabs)": "RefreshSuccess",
    "bindUnionId": "BindUnionIdSuccess",
    "bindPhoneNumber": "BindPhoneNumberSuccess",
    "registerWithPassword": "LoginSuccess",
    "loginWithPassword": "LoginSuccess",
    "loginWithPassword (wrong)": None,
    "partner lookup": None,
}
"""The result type each operation must answer with (None: checked by ``answers.classify``)."""

EXPECTED = {
    "loginWithPassword (wrong)": {"INVALID_CREDENTIALS"},
    "registerWithPassword": {"USERNAME_TAKEN"},  # the first try's answer was lost in a kill
}
"""Typed refusals that are the right answer: the client asked for them."""
