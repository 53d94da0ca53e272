"""Trusted documents' fast path (gateway.api.prepared) answers exactly as the reference path.

"A rule is written once; where speed needs a second path, a test proves it equal to the
reference": every request here is sent twice on the same state, once with the view's
prepared documents (parsed and validated once, executed by graphql-core directly) and once
with none (strawberry's full path, the reference), and the two answers must be the same:
status, the headers a client reads, and the body (data and errors). Values that differ by
nature between two calls (fresh tokens and their times) are compared by shape.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from strawberry.http import GraphQLRequestData

from gateway.api.plan import Step
from gateway.api.trusted import sdk_documents
from gateway.compat.strawberry import graphql_schema
from gateway.web.documents import PAGE_DOCUMENTS
from tests.support.harness import Harness
from tests.support.prepared import Paths, both_logins, sdk, view
from tests.support.sessions import gateway_key, segments
from tests.support.trusted import (  # noqa: F401  (the fixture make_gw)
    Make,
    persisted,
    sha,
    trusted_gateways,
    write_manifest,
)

VIEWER = "query AppViewer { viewer { id nickname identities { kind app { key } } } }"
APPS = "{ apps { key name kind } }"


def direct(gw: Harness, step: Step) -> bool:
    """The step calls its field's resolver directly, not through strawberry's wrapper."""
    query = graphql_schema(view(gw).schema).query_type
    assert query is not None
    return step.resolve is not query.fields[step.key].resolve


def expired(gw: Harness, token: str) -> str:
    header, claims = segments(token)
    now = int(time.time())
    return jwt.encode(
        header, {**claims, "iat": now - 3600, "exp": now - 60}, gateway_key(gw, header["kid"])
    )


async def test_the_fast_path_answers_as_the_reference_does(
    make_gw: Make, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = write_manifest(tmp_path, VIEWER, APPS)
    gw = await make_gw(f'\n[api]\ntrusted_documents_file = "{manifest.name}"\n')
    paths = Paths(gw)
    # every listed document prepared: the SDK's, the hosted login page's, the manifest's two
    assert len(paths.fast) == len(sdk_documents()) + len(PAGE_DOCUMENTS) + 2

    client = {"platform": "ios"}
    login = await gw.login("shop-mp", "ann")  # ann returns in every login below
    token = login["accessToken"]

    # the SDK's operations: successes (typed results), typed errors, request errors
    async def code() -> dict[str, Any]:
        return {
            "input": {"app": "shop-mp", "code": await gw.mint("shop-mp", "ann"), "client": client}
        }

    for variables in (
        {"input": {"app": "shop-mp", "code": "no-such-code", "client": client}},
        {"input": {"app": "no-such-app", "code": "x", "client": client}},
        {},  # a required variable missing: a request error, no data
        {"input": {"app": 42}},  # a variable of the wrong type
    ):
        await paths.same(sdk("loginByCode"), variables)
    answer = await paths.same(sdk("refreshToken"), {"refreshToken": "nonsense", "client": client})
    assert answer["data"]["refreshToken"]["code"] == "INVALID_REFRESH_TOKEN"
    answer = await paths.same(sdk("logout"), {"everywhere": False})
    assert answer["data"]["logout"]["code"] == "NOT_LOGGED_IN"
    answer = await paths.same(sdk("updateProfile"), {"input": {"nickname": "x" * 65}}, token)
    assert answer["data"]["updateProfile"]["code"] == "INVALID_INPUT"
    answer = await paths.same(sdk("updateProfile"), {"input": {"nickname": "Ann"}}, token)
    assert answer["data"]["updateProfile"]["account"]["nickname"] == "Ann"
    for field in ("bindPhoneNumber", "bindUnionId", "loginByPhoneCode"):
        await paths.same(sdk(field), {"input": {}})  # missing input fields: request errors
    # a login, by text and by hash: a fresh code for each post
    for by_hash in (True, False):
        first = await both_logins(paths, sdk("loginByCode"), code, by_hash)
        assert first["data"]["loginByCode"]["isNewAccount"] is False

    # the app's own documents: the viewer with a live, an expired and a forged token
    answer = await paths.same(VIEWER, None, token)
    assert answer["data"]["viewer"]["nickname"] == "Ann"
    await paths.same(VIEWER, None, token, by_hash=False)
    answer = await paths.same(VIEWER, None, expired(gw, token))
    assert answer["errors"][0]["extensions"]["code"] == "TOKEN_EXPIRED"
    answer = await paths.same(VIEWER, None, token[:-4] + "AAAA")
    assert answer["errors"][0]["extensions"]["code"] == "INVALID_TOKEN"
    assert (await paths.same(VIEWER))["data"]["viewer"] is None
    assert (await paths.same(APPS, {}))["data"]["apps"]

    # an unexpected failure (here the token check itself): masked the same way, with its path
    async def broken(token: str) -> None:
        raise RuntimeError("the session store is on fire")

    monkeypatch.setattr(gw.app.state.api.sessions, "authenticate", broken)
    answer = await paths.same(VIEWER, None, token)
    assert answer["errors"][0]["message"] == "Internal server error."  # English: the default
    assert "fire" not in str(answer)
    monkeypatch.undo()
    # plans (gateway.api.plan): the viewer's (a list, nested objects) has one; so has any
    # other plain text once prepared, and a plan that cannot answer leaves it to graphql-core
    request = GraphQLRequestData(VIEWER, None, None, None, "http")
    found = paths.fast.find(request)
    assert found is not None
    assert found.plan is not None
    assert direct(gw, found.plan.steps[0])  # the viewer: its resolver without the wrapper
    for text in (
        "{ sandbox }",
        "{ viewer { id nickname avatarUrl } }",
        "{ viewer { identities { id label } authorizedSites { name } sessions { id ip } } }",
        "{ a: sandbox b: apps { key } }",
    ):
        await paths.same(text, {}, token, by_hash=False)
        found = paths.fast.find(GraphQLRequestData(text, None, None, None, "http"))
        assert found is not None, text
        assert found.plan is not None, text
    await paths.same("{ viewer { id } }", None, expired(gw, token), by_hash=False)
    await paths.same("{ viewer { id } }", None, token[:-4] + "AAAA", by_hash=False)
    await paths.same("{ viewer { id __typename } }", None, token, by_hash=False)  # no plan

    # an operation the document does not have: the reference path answers it, both times
    await paths.same(VIEWER, None, token, name="Other", fast=False)
    await paths.same(VIEWER, None, token, name="AppViewer")
