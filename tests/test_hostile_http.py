"""Hostile requests at the HTTP edge (issue 12): each is a 4xx with a JSON GraphQL error body and
one short log line, never a 500 or a traceback."""

from __future__ import annotations

import json
import logging
from urllib.parse import quote

import httpx
import pytest

from tests.support.harness import Harness

APPS = "{ apps { key } }"
JSON = {"content-type": "application/json"}


def _nested(levels: int, opening: str = "[", closing: str = "]") -> str:
    return opening * levels + closing * levels


def assert_request_error(response: httpx.Response, caplog: pytest.LogCaptureFixture) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"errors"}
    assert body["errors"][0]["message"]
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    refused = [r for r in caplog.records if "refused GraphQL request" in r.getMessage()]
    assert len(refused) == 1
    assert len(refused[0].getMessage()) < 200


@pytest.mark.parametrize(
    "body",
    [
        b'"{apps{key}}"',
        b"42",
        b"null",
        b"true",
        b'{"query": "{ apps { key } }", "x": "\xff"}',
        b"\xff",
        _nested(30_000).encode(),
        ('{"query": "{ apps { key } }", "variables": {"a": ' + _nested(20_000) + "}}").encode(),
        (
            '{"query": "{ apps { key } }", "extensions": '
            + _nested(5_000, '{"a":', "}")[:-5_000]
            + "1"
            + "}" * 5_000
            + "}"
        ).encode(),
        ('{"query": "{ apps { key } }", "variables": {"a": ' + _nested(100) + "}}").encode(),
    ],
    ids=[
        "string", "number", "null", "bool", "bad-utf8-in-string", "bad-utf8",
        "deep-array", "deep-variables", "deep-extensions", "over-the-depth-limit",
    ],
)  # fmt: skip
async def test_malformed_bodies_are_400_json_without_a_traceback(
    gw: Harness, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    assert len(body) <= gw.config.settings.max_body_bytes
    caplog.set_level(logging.INFO)
    caplog.clear()
    assert_request_error(await gw.client.post("/graphql", content=body, headers=JSON), caplog)
    assert (await gw.client.post("/graphql", json={"query": APPS})).status_code == 200


@pytest.mark.parametrize("name", ["variables", "extensions"])
async def test_deep_get_parameters_are_400(
    gw: Harness, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    deep = '{"a":' * 3_000 + "1" + "}" * 3_000
    url = f"/graphql?query={quote(APPS)}&{name}={quote(deep)}"
    assert_request_error(await gw.client.get(url, headers={"accept": "application/json"}), caplog)


async def test_graphql_response_media_type_is_kept_for_request_errors(gw: Harness) -> None:
    accept = "application/graphql-response+json"
    response = await gw.client.post("/graphql", content=b"42", headers={**JSON, "accept": accept})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(accept)
    assert json.loads(response.content)["errors"]


async def test_sensible_nesting_in_variables_is_still_accepted(gw: Harness) -> None:
    variables = {"unused": json.loads(_nested(20))}
    response = await gw.client.post("/graphql", json={"query": APPS, "variables": variables})
    assert response.status_code == 200, response.text
