"""`partner { events(after, first) }`: the pull feed, as a connection. The use case
(``gateway.events.feed``) decides what the partner receives and renders it; these types only
carry it."""

from __future__ import annotations

from datetime import datetime
from typing import cast

import strawberry
from strawberry.scalars import JSON

from gateway.addresses import client_address
from gateway.api.types import Info
from gateway.events.feed import FeedItem, FeedPage, FeedRequest
from gateway.partners.registry import PartnerView


@strawberry.type(
    description="An account event as you receive it: the same `type`, time and `data` as the "
    "webhook body, and `id` is the webhook's `webhook-id` (one id everywhere)."
)
class PartnerEvent:
    id: strawberry.ID
    type: str = strawberry.field(description="e.g. account.created, account.merged.")
    occurred_at: datetime
    account_id: strawberry.ID = strawberry.field(description="The account's opaque id.")
    data: JSON = strawberry.field(
        description="The webhook body's `data`: always `accountId`; `survivorId` and "
        "`mergedId` on account.merged; identifiers only where you are entitled."
    )


@strawberry.type
class PartnerEventEdge:
    cursor: str
    node: PartnerEvent


@strawberry.type
class PartnerEventsPageInfo:
    has_next_page: bool
    end_cursor: str | None = strawberry.field(
        description="Pass as `after` for the next page; when the page is empty, the `after` "
        "you sent, so a poller can always pass it back."
    )


@strawberry.type(description="Your events, oldest first.")
class PartnerEventConnection:
    edges: list[PartnerEventEdge]
    page_info: PartnerEventsPageInfo


def feed_request(info: Info, partner: PartnerView, after: str | None, first: int) -> FeedRequest:
    return FeedRequest(partner, after, first, client_address(info.context.request.scope))


def connection(found: FeedPage) -> PartnerEventConnection:
    return PartnerEventConnection(
        edges=[PartnerEventEdge(cursor=i.cursor, node=_node(i)) for i in found.items],
        page_info=PartnerEventsPageInfo(has_next_page=found.has_next, end_cursor=found.end_cursor),
    )


def _node(item: FeedItem) -> PartnerEvent:
    return PartnerEvent(
        id=strawberry.ID(str(item.id)),
        type=item.type,
        occurred_at=item.occurred_at,
        account_id=strawberry.ID(item.account_id),
        data=cast(JSON, item.data),
    )
