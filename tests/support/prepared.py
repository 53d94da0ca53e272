"""Sending one request down the prepared (fast) path and the reference path, and comparing
what a client reads of the two answers: for the tests that prove the GraphQL fast paths equal
to strawberry's (tests/test_prepared_documents.py, tests/test_mutation_plans.py)."""

from __future__ import annotations

from typing import Any

import httpx
from strawberry.http import GraphQLRequestData

from gateway.api.http import GatewayGraphQL
from gateway.api.prepared import PreparedDocuments
from gateway.api.trusted import sdk_documents
from tests.support.harness import Harness
from tests.support.trusted import persisted, sha

FRESH = {"accessToken", "refreshToken", "expiresAt", "refreshExpiresAt"}


def sdk(field: str) -> str:
    (document,) = [d for d in sdk_documents().values() if f"{field}(" in d]
    return document


def view(gw: Harness) -> GatewayGraphQL:
    for route in gw.app.routes:
        endpoint = getattr(route, "app", None)
        if isinstance(endpoint, GatewayGraphQL):
            return endpoint
    raise AssertionError("no GraphQL view")


def shape(value: Any) -> Any:
    """The answer with fresh tokens and their times replaced by a marker."""
    if isinstance(value, dict):
        return {k: "<fresh>" if k in FRESH and v else shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return value


def seen(answer: httpx.Response) -> tuple[int, str, str | None, Any]:
    return (
        answer.status_code,
        answer.headers["content-type"],
        answer.headers.get("www-authenticate"),
        shape(answer.json()),
    )


class Paths:
    """Posts each request down the fast path, then the reference path."""

    def __init__(self, gw: Harness) -> None:
        self.gw = gw
        self.view = view(gw)
        self.fast = self.view.prepared
        self.reference = PreparedDocuments(self.view.schema, [])

    async def post(self, body: dict[str, Any], token: str | None) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return await self.gw.client.post("/graphql", json=body, headers=headers)

    async def same(
        self,
        document: str,
        variables: dict[str, Any] | None = None,
        token: str | None = None,
        *,
        by_hash: bool = True,
        name: str | None = None,
        fast: bool = True,
    ) -> Any:
        """Both answers, asserted equal; the fast one's body."""
        body: dict[str, Any] = {"variables": variables} if variables is not None else {}
        if name is not None:
            body["operationName"] = name
        body = persisted(sha(document), **body) if by_hash else {**body, "query": document}
        request = GraphQLRequestData(document, variables, name, None, "http")
        assert (self.fast.find(request) is not None) is fast, document
        self.view.prepared = self.fast
        first = await self.post(body, token)
        self.view.prepared = self.reference
        second = await self.post(body, token)
        self.view.prepared = self.fast
        assert seen(first) == seen(second), (first.text, second.text)
        return first.json()


async def both_logins(paths: Paths, document: str, code: Any, by_hash: bool) -> Any:
    """A login down each path, each with a fresh code of the same returning user."""
    answers = []
    for prepared in (paths.fast, paths.reference):
        paths.view.prepared = prepared
        variables = await code()
        body = (
            persisted(sha(document), variables=variables)
            if by_hash
            else {"query": document, "variables": variables}
        )
        answers.append(await paths.post(body, None))
    paths.view.prepared = paths.fast
    assert seen(answers[0]) == seen(answers[1]), (answers[0].text, answers[1].text)
    return answers[0].json()
