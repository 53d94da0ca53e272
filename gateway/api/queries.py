"""Queries for frontends."""

from __future__ import annotations

import strawberry
from strawberry import relay

from gateway.api.types import Account, App, Info, load_account


@strawberry.type
class Query:
    node: relay.Node | None = relay.node(description="Fetch your own account or identity by id.")

    @strawberry.field(description="The logged-in account, or null without a valid access token.")
    async def viewer(self, info: Info) -> Account | None:
        viewer = await info.context.viewer()
        return await load_account(info, viewer.account_id) if viewer else None

    @strawberry.field(description="The apps this gateway serves.")
    def apps(self, info: Info) -> list[App]:
        return [App.from_config(a) for a in info.context.services.config.apps]

    @strawberry.field(description="True when this gateway runs against its WeChat sandbox.")
    def sandbox(self, info: Info) -> bool:
        return info.context.services.config.sandbox
