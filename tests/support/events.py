"""Account events (issue 24): the pull feed's document, a reader of a partner's whole feed, and
events appended to the outbox as the account graph writes them (``outbox.append`` in a unit of
work), for tests that need events of a given type or audience."""

from __future__ import annotations

from typing import Any

from gateway.outbox import Audience, EventType, append
from tests.support.accounts import account_uuid
from tests.support.harness import Harness

FEED = """query($after: String, $first: Int! = 100) { partner { __typename
  ... on PartnerQuery { events(after: $after, first: $first) { __typename
    ... on PartnerEventConnection {
      edges { cursor node { id type occurredAt accountId data } }
      pageInfo { hasNextPage endCursor } }
    ... on Error { code message } ... on InvalidInputError { field } } }
  ... on Error { code } } }"""

LOOKUP = """query($id: ID!) { partner { ... on PartnerQuery {
  account(id: $id) { __typename ... on AccountLookup { found } ... on Error { code } } } } }"""


async def feed(
    gw: Harness, token: str, after: str | None = None, first: int = 100
) -> dict[str, Any]:
    """One page of the feed (the ``events`` field's answer, whatever its type)."""
    body = await gw.gql(FEED, {"after": after, "first": first}, token=token)
    assert "errors" not in body, body
    page: dict[str, Any] = body["data"]["partner"]["events"]
    return page


async def whole_feed(gw: Harness, token: str, first: int = 100) -> list[dict[str, Any]]:
    """Every edge, page by page, following ``endCursor``."""
    edges: list[dict[str, Any]] = []
    after = None
    while True:
        page = await feed(gw, token, after, first)
        assert page["__typename"] == "PartnerEventConnection", page
        edges += page["edges"]
        if not page["pageInfo"]["hasNextPage"]:
            return edges
        after = page["pageInfo"]["endCursor"]


async def can_look_up(gw: Harness, token: str, account_id: str) -> bool:
    body = await gw.gql(LOOKUP, {"id": account_id}, token=token)
    answer = body["data"]["partner"]["account"]
    assert answer["__typename"] == "AccountLookup", answer
    return bool(answer["found"])


async def emit(
    gw: Harness,
    type: EventType,
    account: str,
    *,
    apps: tuple[str, ...] = (),
    platforms: tuple[str, ...] = (),
    data: dict[str, Any] | None = None,
) -> None:
    """Append one event for the account of global id ``account``, reachable through ``apps``
    (keys) and ``platforms``, committed in its own unit of work."""
    audience = Audience(frozenset(gw.appid(a) for a in apps), frozenset(platforms))
    async with gw.app.state.services.db.transaction() as s:
        await append(s, type, account_uuid(account), audience, data)
