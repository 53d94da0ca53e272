"""GraphQL over HTTP at the edge: methods, media types, request errors, limits, masking."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from gateway.store.db import create_engine
from tests.support.harness import LOGIN, Harness, MakeConfig, running

GRAPHQL_RESPONSE = "application/graphql-response+json"
APPS = "{ apps { key kind } }"
VIEWER = "{ viewer { id } }"
VALIDATION_ERROR = "{ apps { nope } }"
SYNTAX_ERROR = "{ apps { key "


def _client(code: str) -> dict[str, Any]:
    return {"app": "shop-mp", "code": code, "client": {"platform": "ios"}}


async def _post(gw: Harness, payload: Any, **headers: str) -> httpx.Response:
    return await gw.client.post("/graphql", json=payload, headers=headers)


async def _count(gw: Harness, table: str) -> int:
    engine = create_engine(gw.config.database_url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())
    finally:
        await engine.dispose()


# --- methods -------------------------------------------------------------------------------


async def test_post_json_executes_a_query(gw: Harness) -> None:
    response = await _post(gw, {"query": APPS})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    keys = {a["key"] for a in response.json()["data"]["apps"]}
    assert keys == {"shop-mp", "club-mp", "news-oa", "solo-mp"}
    assert "errors" not in response.json()


async def test_get_executes_a_query(gw: Harness) -> None:
    response = await gw.client.get(
        "/graphql", params={"query": APPS}, headers={"accept": "application/json"}
    )
    assert response.status_code == 200
    assert len(response.json()["data"]["apps"]) == 4


async def test_get_with_variables_and_operation_name(gw: Harness) -> None:
    query = "query A { apps { key } } query B($n: ID!) { node(id: $n) { id } }"
    response = await gw.client.get(
        "/graphql",
        params={"query": query, "operationName": "B", "variables": json.dumps({"n": "eA=="})},
        headers={"accept": "application/json"},
    )
    assert response.status_code == 200
    assert response.json()["data"] == {"node": None}


async def test_get_with_a_mutation_is_405_and_never_executes(gw: Harness) -> None:
    code = await gw.mint("shop-mp", "alice")
    response = await gw.client.get(
        "/graphql",
        params={"query": LOGIN, "variables": json.dumps(_client(code))},
        headers={"accept": "application/json"},
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert await gw.upstream_calls("/sns/jscode2session") == 0
    # the code is still good: the GET did not spend it
    body = await gw.gql(LOGIN, _client(code))
    assert body["data"]["loginByCode"]["__typename"] == "LoginSuccess"


async def test_get_mutation_is_405_with_graphql_response_accept_too(gw: Harness) -> None:
    response = await gw.client.get(
        "/graphql",
        params={"query": "mutation { logout { __typename } }"},
        headers={"accept": GRAPHQL_RESPONSE},
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


async def test_other_methods_are_refused(gw: Harness) -> None:
    response = await gw.client.put("/graphql", json={"query": APPS})
    assert response.status_code == 405
    assert "data" not in response.text


# --- media types and request errors --------------------------------------------------------


async def test_graphql_response_json_is_answered_when_asked(gw: Harness) -> None:
    response = await _post(gw, {"query": APPS}, accept=GRAPHQL_RESPONSE)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert len(response.json()["data"]["apps"]) == 4


@pytest.mark.parametrize("query", [SYNTAX_ERROR, VALIDATION_ERROR], ids=["syntax", "validation"])
async def test_graphql_response_json_request_error_is_400_without_data(
    gw: Harness, query: str
) -> None:
    response = await _post(gw, {"query": query}, accept=GRAPHQL_RESPONSE)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    body = response.json()
    assert "data" not in body
    assert body["errors"]
    assert body["errors"][0]["message"] != MASKED


@pytest.mark.parametrize("query", [SYNTAX_ERROR, VALIDATION_ERROR], ids=["syntax", "validation"])
async def test_plain_json_request_error_is_200_with_errors(gw: Harness, query: str) -> None:
    response = await _post(gw, {"query": query}, accept="application/json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["errors"]
    assert body.get("data") is None


async def test_graphql_response_json_variable_coercion_failure_is_400_without_data(
    gw: Harness,
) -> None:
    """GraphQL-over-HTTP, 'Variable coercion failure': a request error, so no `data`."""
    response = await _post(
        gw,
        {"query": LOGIN, "variables": {"app": "shop-mp", "code": 7}},
        accept=GRAPHQL_RESPONSE,
    )
    assert response.json()["errors"]
    assert "data" not in response.json()
    assert response.status_code == 400
    legacy = await _post(
        gw, {"query": LOGIN, "variables": {"app": "shop-mp", "code": 7}}, accept="application/json"
    )
    assert legacy.status_code == 200
    assert legacy.json()["errors"]


async def test_malformed_bodies_are_400(gw: Harness) -> None:
    bad_json = await gw.client.post(
        "/graphql", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400
    wrong_type = await gw.client.post(
        "/graphql", content=APPS.encode(), headers={"content-type": "text/plain"}
    )
    assert wrong_type.status_code == 400
    no_query = await _post(gw, {"variables": {}})
    assert no_query.status_code == 400
    query_not_string = await _post(gw, {"query": ["{ apps { key } }"]})
    assert query_not_string.status_code == 400


async def test_batching_is_refused(gw: Harness) -> None:
    """strawberry refuses a JSON list body unless the schema sets a batching config."""
    code = await gw.mint("shop-mp", "bob")
    response = await _post(
        gw,
        [{"query": APPS}, {"query": LOGIN, "variables": _client(code)}],
    )
    assert response.status_code == 400
    assert "batching" in response.text.lower()
    assert await gw.upstream_calls("/sns/jscode2session") == 0


# --- body size -----------------------------------------------------------------------------


def _padded(size: int) -> bytes:
    """A valid JSON GraphQL request of exactly ``size`` bytes (padding is insignificant)."""
    head = json.dumps({"query": APPS}).encode()
    pad = size - len(head)
    assert pad >= 0
    return head[:-1] + b" " * pad + b"}"


async def test_body_at_the_limit_is_accepted_and_one_byte_more_is_413(gw: Harness) -> None:
    limit = gw.config.settings.max_body_bytes
    assert limit == 64 * 1024
    at_limit = await gw.client.post(
        "/graphql", content=_padded(limit), headers={"content-type": "application/json"}
    )
    assert at_limit.status_code == 200, at_limit.text
    assert at_limit.json()["data"]["apps"]
    over = await gw.client.post(
        "/graphql", content=_padded(limit + 1), headers={"content-type": "application/json"}
    )
    assert over.status_code == 413


async def test_streamed_body_without_content_length_over_the_limit_is_413(gw: Harness) -> None:
    limit = gw.config.settings.max_body_bytes
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        body = _padded(limit * 4)
        for start in range(0, len(body), 4096):
            sent += 4096
            yield body[start : start + 4096]

    response = await gw.client.post(
        "/graphql", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "content-length" not in {k.lower() for k in response.request.headers}
    # the gateway stopped reading soon after the limit, not at the end of the stream
    assert sent <= limit + 2 * 4096


async def test_streamed_body_under_the_limit_is_accepted(gw: Harness) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        body = _padded(10_000)
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    response = await gw.client.post(
        "/graphql", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200
    assert response.json()["data"]["apps"]


async def test_body_limit_follows_configuration(database_url: str, make_config: MakeConfig) -> None:
    config = make_config(database_url, max_body_bytes=2048)
    async with running(config) as gw:
        ok = await gw.client.post(
            "/graphql", content=_padded(2048), headers={"content-type": "application/json"}
        )
        assert ok.status_code == 200
        over = await gw.client.post(
            "/graphql", content=_padded(2049), headers={"content-type": "application/json"}
        )
        assert over.status_code == 413


# --- query limits --------------------------------------------------------------------------


async def test_too_deep_a_query_is_a_validation_error_and_not_executed(gw: Harness) -> None:
    limit = gw.config.settings.max_query_depth
    code = await gw.mint("shop-mp", "carol")
    deep = "account { identities { app { " + "x { " * limit + "y" + " }" * (limit + 3)
    mutation = LOGIN.replace("account { id identities { kind app { key } } }", deep)
    assert deep in mutation
    response = await _post(gw, {"query": mutation, "variables": _client(code)})
    assert response.status_code == 200
    body = response.json()
    assert body.get("data") is None
    messages = [e["message"] for e in body["errors"]]
    assert any(f"exceeds maximum operation depth of {limit}" in m for m in messages), messages
    assert await gw.upstream_calls("/sns/jscode2session") == 0
    assert await _count(gw, "login_sessions") == 0


async def test_configured_depth_limit_applies(database_url: str, make_config: MakeConfig) -> None:
    """Two apps with different limits in one process (the schema is built per limits)."""
    async with running(make_config(database_url)) as default:
        assert (await _post(default, {"query": APPS})).status_code == 200
    async with running(make_config(database_url, max_query_depth=3)) as gw:
        code = await gw.mint("shop-mp", "carol")
        response = await _post(gw, {"query": LOGIN, "variables": _client(code)})
        messages = [e["message"] for e in response.json()["errors"]]
        assert any("exceeds maximum operation depth of 3" in m for m in messages)
        assert await gw.upstream_calls("/sns/jscode2session") == 0


async def test_default_depth_limit_refuses_a_deep_query(gw: Harness) -> None:
    limit = gw.config.settings.max_query_depth
    deep = "{ viewer " + "{ identities " * limit + "{ id }" + " }" * (limit + 1)
    response = await _post(gw, {"query": deep}, accept=GRAPHQL_RESPONSE)
    assert response.status_code == 400
    messages = [e["message"] for e in response.json()["errors"]]
    assert any(f"maximum operation depth of {limit}" in m for m in messages), messages


async def test_deep_introspection_is_refused(gw: Harness) -> None:
    nested = "possibleTypes { interfaces { " * 6 + "name" + " } }" * 6
    query = '{ __type(name: "Node") { ' + nested + " } }"
    response = await _post(gw, {"query": query}, accept=GRAPHQL_RESPONSE)
    assert response.status_code == 400
    assert "introspection depth" in response.json()["errors"][0]["message"]


async def test_too_many_aliases_is_a_validation_error_and_not_executed(gw: Harness) -> None:
    limit = gw.config.settings.max_aliases
    code = await gw.mint("shop-mp", "dave")
    fields = " ".join(
        f'a{i}: loginByCode(input: {{app: "shop-mp", code: "{code}", client: {{platform: "ios"}}}})'
        " { __typename }"
        for i in range(limit + 1)
    )
    response = await _post(gw, {"query": f"mutation {{ {fields} }}"})
    assert response.status_code == 200
    body = response.json()
    assert body.get("data") is None
    assert any("aliases" in e["message"] for e in body["errors"]), body
    assert await gw.upstream_calls("/sns/jscode2session") == 0
    assert await _count(gw, "audit_events") == 0


async def test_aliases_up_to_the_limit_are_fine(gw: Harness) -> None:
    limit = gw.config.settings.max_aliases
    fields = " ".join(f"a{i}: apps {{ key }}" for i in range(limit))
    response = await _post(gw, {"query": f"{{ {fields} }}"})
    body = response.json()
    assert "errors" not in body
    assert len(body["data"]) == limit


async def test_introspection_can_be_switched_off(
    database_url: str, make_config: MakeConfig
) -> None:
    async with running(make_config(database_url, introspection=False)) as gw:
        response = await _post(gw, {"query": "{ __schema { types { name } } }"})
        body = response.json()
        assert body.get("data") is None
        assert "introspection" in body["errors"][0]["message"].lower()
        assert "types" not in (body.get("data") or {})
        ok = await _post(gw, {"query": APPS})
        assert ok.json()["data"]["apps"]


async def test_no_field_suggestions_when_introspection_is_off(
    database_url: str, make_config: MakeConfig
) -> None:
    async with running(make_config(database_url, introspection=False)) as gw:
        response = await _post(gw, {"query": "{ apps { nam } }"})
        messages = " ".join(e["message"] for e in response.json()["errors"])
        assert "nam" in messages
        assert "Did you mean" not in messages


# --- masking -------------------------------------------------------------------------------

# in English, the default language (tests/test_messages_i18n.py: the Chinese)
MASKED = "Internal server error."
UNAVAILABLE = "Service temporarily unavailable; retry shortly."
VIEWER_KINDS = "{ viewer { id identities { kind } } }"
MARKER = "LEAKMARK-future-kind"


async def _sql(gw: Harness, statement: str) -> None:
    engine = create_engine(gw.config.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def _crashing_viewer(gw: Harness) -> str:
    """A logged-in account one of whose identities has a kind this version does not know, as
    a newer gateway would write during a rolling deploy: reading it raises a plain ValueError
    in the identities resolver. Honest, through the real DB and the public API, no mocks."""
    login = await gw.login("shop-mp", "erin")
    await _sql(gw, f"UPDATE identities SET kind = '{MARKER}' WHERE kind = 'wechat_unionid'")
    return str(login["accessToken"])


def _assert_no_leak(text_: str) -> None:
    lowered = text_.lower()
    for leak in (MARKER.lower(), "identitykind", "valueerror", "traceback", "not a valid"):
        assert leak not in lowered, leak


async def test_resolver_crash_is_masked_without_leaking_details(
    gw: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    token = await _crashing_viewer(gw)
    with caplog.at_level(logging.ERROR, logger="gateway.api"):
        response = await gw.client.post(
            "/graphql",
            json={"query": VIEWER_KINDS},
            headers={"authorization": f"Bearer {token}", "accept": GRAPHQL_RESPONSE},
        )
    # a field error, not a request error: 200 and `data`, even with graphql-response+json
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"viewer": None}
    assert [e["message"] for e in body["errors"]] == [MASKED]
    assert body["errors"][0]["path"][:2] == ["viewer", "identities"]
    assert "extensions" not in body["errors"][0]
    _assert_no_leak(response.text)
    # operators still see what happened, in the log
    crash = [r for r in caplog.records if r.name == "gateway.api" and r.exc_info]
    assert crash, "the masked error was not logged"
    exc_info = crash[0].exc_info
    assert exc_info is not None
    assert MARKER in str(exc_info[1])

    # the same token still answers what does not touch the bad row
    plain = await gw.gql(VIEWER, token=token)
    assert plain["data"]["viewer"]["id"]


async def test_resolver_crash_is_masked_while_other_requests_run(gw: Harness) -> None:
    """Masking must hold per request: a crash that resolves while other requests are in
    flight is still answered "Internal server error." and nothing more. (Regression: with
    extension instances shared by all requests, a concurrent request swapped MaskErrors'
    execution context and the crash went out unmasked, SQL and parameters included.)"""
    token = await _crashing_viewer(gw)
    crash = gw.client.post(
        "/graphql", json={"query": VIEWER_KINDS}, headers={"authorization": f"Bearer {token}"}
    )
    others = [_post(gw, {"query": APPS}) for _ in range(3)]
    responses = await asyncio.gather(crash, *others)
    crashed = responses[0].json()
    assert [e["message"] for e in crashed["errors"]] == [MASKED], crashed
    _assert_no_leak(responses[0].text)
    for other in responses[1:]:
        assert "errors" not in other.json()


async def test_lost_table_leaks_no_sql(gw: Harness) -> None:
    """The database loses a table under the running gateway (a bad migration, an operator's
    mistake): the answer is masked or a retryable UNAVAILABLE, never SQL. The table is put
    back afterwards so the shared PostgreSQL database stays usable."""
    login = await gw.login("shop-mp", "fay")
    await _sql(gw, "ALTER TABLE login_sessions RENAME TO login_sessions_gone")
    try:
        response = await gw.client.post(
            "/graphql",
            json={"query": VIEWER},
            headers={"authorization": f"Bearer {login['accessToken']}"},
        )
    finally:
        await _sql(gw, "ALTER TABLE login_sessions_gone RENAME TO login_sessions")
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"viewer": None}
    assert [e["message"] for e in body["errors"]] in ([MASKED], [UNAVAILABLE])
    assert body["errors"][0]["path"] == ["viewer"]
    lowered = response.text.lower()
    for leak in ("login_sessions", "select", "traceback", "sqlalchemy", "table", "relation"):
        assert leak not in lowered, leak
    # restored: the same token authenticates again
    again = await gw.gql(VIEWER, token=login["accessToken"])
    assert again["data"]["viewer"]["id"] == login["account"]["id"]


async def test_mutation_crash_is_masked_and_leaves_nothing_half_done(gw: Harness) -> None:
    code = await gw.mint("shop-mp", "gus")
    await _sql(gw, "ALTER TABLE wechat_sessions RENAME TO wechat_sessions_gone")
    try:
        response = await _post(gw, {"query": LOGIN, "variables": _client(code)})
    finally:
        await _sql(gw, "ALTER TABLE wechat_sessions_gone RENAME TO wechat_sessions")
    body = response.json()
    assert response.status_code == 200
    assert body["data"] is None
    assert [e["message"] for e in body["errors"]] in ([MASKED], [UNAVAILABLE])
    assert "wechat_sessions" not in response.text
    assert "insert" not in response.text.lower()
    # one transaction: no account, session or audit row survived the failure
    for table in ("accounts", "identities", "login_sessions"):
        assert await _count(gw, table) == 0, table

    # an expected failure stays a typed result, not a masked error
    typed = await gw.gql(LOGIN, {**_client("unknown-code"), "app": "nope"})
    assert typed["data"]["loginByCode"]["code"] == "UNKNOWN_APP"
    assert "errors" not in typed


# --- GraphiQL ------------------------------------------------------------------------------


async def test_browser_get_renders_graphiql(gw: Harness) -> None:
    response = await gw.client.get("/graphql", headers={"accept": "text/html,*/*;q=0.8"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()
    assert "SANDBOX MODE" not in response.text


async def test_graphiql_shows_the_sandbox_banner_in_sandbox_mode(
    database_url: str, tmp_path: Any
) -> None:
    from gateway.config import Settings, load_config
    from gateway.sessions.keys import SigningKeys, new_key, write_keys_file

    keys = tmp_path / "sandbox-keys.json"
    write_keys_file(keys, SigningKeys([new_key()]))
    config = load_config(
        Settings(
            database_url=database_url,
            secret_key="test-secret-key-0123456789-abcdefghijkl",
            signing_keys=keys,
        )
    )
    assert config.sandbox
    async with running(config) as gw:
        response = await gw.client.get("/graphql", headers={"accept": "text/html"})
        assert response.status_code == 200
        assert "SANDBOX MODE" in response.text
        assert "http://gateway/sandbox/code" in response.text


async def test_get_with_a_query_and_html_accept_executes_instead(gw: Harness) -> None:
    response = await gw.client.get(
        "/graphql", params={"query": APPS}, headers={"accept": "text/html,*/*"}
    )
    assert response.status_code == 200
    assert response.json()["data"]["apps"]
