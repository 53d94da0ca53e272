"""Strings the database refuses never reach it (issue 12, item 2): a NUL or an unpaired surrogate
in any string input is ``INVALID_INPUT`` naming the field, lengths are bounded, and an audit row is
never lost to the input it records. On SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col
from starlette.types import Message

from gateway.store.models import AuditEvent
from tests.support.accounts import AUTHORIZATION_URL, BIND, open_data, variables
from tests.support.harness import LOGIN, Harness
from tests.support.passwords import (
    CHANGE_PASSWORD,
    CLIENT,
    GOOD_PASSWORD,
    PASSWORD_LOGIN,
    REGISTER,
    password_login,
    registered,
)

LONE_SURROGATE = "ab\udfff"
NUL = "io\u0000s"
BAD = [LONE_SURROGATE, NUL]
REFRESH = """
mutation($token: String!, $client: ClientInput) {
  refreshToken(refreshToken: $token, client: $client) {
    __typename ... on Error { code message } ... on InvalidInputError { field }
  }
}
"""


async def post(
    gw: Harness, query: str, variables: dict[str, Any], token: str | None = None
) -> dict[str, Any]:
    """``json.dumps`` escapes lone surrogates (``\\udfff``), as an attacker's client would."""
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    body = json.dumps({"query": query, "variables": variables}).encode()
    response = await gw.client.post("/graphql", content=body, headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert "errors" not in answer, answer
    (result,) = answer["data"].values()
    return result  # type: ignore[no-any-return]


def assert_invalid(result: dict[str, Any], field: str) -> None:
    assert (result["__typename"], result["code"]) == ("InvalidInputError", "INVALID_INPUT"), result
    assert result.get("field", field) == field, result  # some queries do not select `field`
    assert result["message"].startswith(field), result


def login_vars(**override: Any) -> dict[str, Any]:
    return {"app": "shop-mp", "code": "some-code", "client": {"platform": "ios"}, **override}


def password_vars(**override: Any) -> dict[str, Any]:
    return {
        "username": "quinn",
        "password": GOOD_PASSWORD,
        "app": "shop-mp",
        "client": CLIENT,
        **override,
    }


CASES: list[tuple[str, str, dict[str, Any], str]] = []
for bad in BAD:
    CASES += [
        ("loginByCode", LOGIN, login_vars(client={"platform": bad}), "client.platform"),
        ("loginByCode", LOGIN, login_vars(client={"platform": "ios", "deviceParam": bad}),
         "client.device_param"),
        ("loginByCode", LOGIN, login_vars(client={"platform": "ios", "channel": bad}),
         "client.channel"),
        ("loginByCode", LOGIN, login_vars(code=bad), "code"),
        ("loginByCode", LOGIN, login_vars(app=bad), "app"),
        ("register", REGISTER, password_vars(username=bad), "username"),
        ("register", REGISTER, password_vars(password=GOOD_PASSWORD + bad), "password"),
        ("login", PASSWORD_LOGIN, password_vars(password=bad), "password"),
        ("login", PASSWORD_LOGIN, password_vars(client={"platform": bad}), "client.platform"),
        ("refresh", REFRESH, {"token": bad}, "refreshToken"),
        ("authorizationUrl", AUTHORIZATION_URL, {"app": "news-oa", "redirect": bad}, "redirectUri"),
    ]  # fmt: skip
CASES += [
    ("loginByCode", LOGIN, login_vars(code="c" * 513), "code"),
    ("loginByCode", LOGIN, login_vars(app="a" * 257), "app"),
    ("loginByCode", LOGIN, login_vars(client={"platform": "p" * 33}), "client.platform"),
    ("login", PASSWORD_LOGIN, password_vars(username="u" * 257), "username"),
    ("login", PASSWORD_LOGIN, password_vars(password="p" * 513), "password"),
]


@pytest.mark.parametrize(
    ("query", "variables", "field"),
    [case[1:] for case in CASES],
    ids=[f"{name}-{field}-{n}" for n, (name, _, _, field) in enumerate(CASES)],
)
async def test_every_string_input_is_checked_at_the_edge(
    gw: Harness, query: str, variables: dict[str, Any], field: str
) -> None:
    assert_invalid(await post(gw, query, variables), field)


async def test_authenticated_inputs_are_checked_too(gw: Harness) -> None:
    created = await registered(gw, "rosa")
    token = created["accessToken"]
    change = {"current": GOOD_PASSWORD, "new": "x" + NUL + "-Tractor-88", "client": CLIENT}
    assert_invalid(await post(gw, CHANGE_PASSWORD, change, token), "new_password")
    login = await gw.login("shop-mp", "sam")
    data = variables(await open_data(gw, "shop-mp", "sam"))
    for name, field in [("iv", "iv"), ("sig", "signature"), ("raw", "raw_data")]:
        tampered = {**data, name: data[name] + LONE_SURROGATE}
        assert_invalid(await post(gw, BIND, tampered, login["accessToken"]), field)
    bound = await post(gw, BIND, data, login["accessToken"])
    assert bound["__typename"] == "BindUnionIdSuccess", bound


async def test_bad_client_facts_neither_count_nor_crash_and_are_not_audited_as_logins(
    gw: Harness,
) -> None:
    """The issue's twelve wrong passwords with a surrogate platform: all refused as input, none
    counted by the throttle (10 free failures by default), so the owner still logs in."""
    await registered(gw, "tess")
    for n in range(12):
        bad = password_vars(
            username="tess", password=f"wrong-{n}-pw", client={"platform": BAD[n % 2]}
        )
        assert_invalid(await post(gw, PASSWORD_LOGIN, bad), "client.platform")
    assert (await password_login(gw, "tess"))["__typename"] == "LoginSuccess"


async def test_unusual_but_storable_text_is_recorded_in_the_audit(gw: Harness) -> None:
    """Emoji, CJK, right-to-left and a platform at its bound: stored and audited as sent."""
    await registered(gw, "uma")
    client = {
        "platform": "鸿蒙-😀" + "x" * 26,
        "channel": "\u202equ\u00e9",
        "deviceParam": "型号=🀄" * 50,
    }
    failed = await post(
        gw, PASSWORD_LOGIN, password_vars(username="uma", password="wrong-pw-1", client=client)
    )
    assert failed["code"] == "INVALID_CREDENTIALS", failed
    async with gw.app.state.services.db.reader() as s:
        query = select(AuditEvent).where(col(AuditEvent.kind) == "login_failed")
        (event,) = (await s.execute(query)).scalars()
    assert (event.platform, event.channel, event.device_param) == (
        client["platform"], client["channel"], client["deviceParam"]
    )  # fmt: skip


async def test_a_nul_in_the_user_agent_does_not_lose_the_audit_row(gw: Harness) -> None:
    await registered(gw, "vera")
    variables_ = password_vars(username="vera", password="wrong-pw-2")
    body = json.dumps({"query": PASSWORD_LOGIN, "variables": variables_}).encode()
    headers = [(b"content-type", b"application/json"), (b"user-agent", b"curl\x00/8")]
    sent = await _raw_post(gw, body, headers)
    assert sent["data"]["loginWithPassword"]["code"] == "INVALID_CREDENTIALS", sent
    async with gw.app.state.services.db.reader() as s:
        query = select(AuditEvent).where(col(AuditEvent.kind) == "login_failed")
        (event,) = (await s.execute(query)).scalars()
    assert event.user_agent == "curl\ufffd/8"


async def _raw_post(gw: Harness, body: bytes, headers: list[tuple[bytes, bytes]]) -> Any:
    """Straight to the ASGI app: HTTP clients refuse to send a NUL in a header."""
    sent: list[Message] = []
    chunks = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/graphql", "raw_path": b"/graphql", "query_string": b"",
        "root_path": "", "headers": headers, "client": ("192.0.2.9", 5000),
        "server": ("gateway", 80), "state": {},
    }  # fmt: skip
    await gw.app(scope, receive, send)
    assert sent[0]["status"] == 200, sent
    return json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
