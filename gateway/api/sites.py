"""The websites a person let log them in (OpenID Connect consents, ``gateway.clients``):
listed on the viewer (``Account.authorizedSites``); ``api.site_mutations`` revokes one."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

import strawberry

if TYPE_CHECKING:
    from gateway.api.types import Info


@strawberry.type(description="A website you allowed to log you in (see revokeSiteConsent).")
class AuthorizedSite:
    client_id: str = strawberry.field(description="The site's OpenID Connect client_id.")
    name: str
    scopes: list[str] = strawberry.field(description="What it may read: openid, profile, phone.")
    granted_at: datetime


async def authorized_sites(info: Info, account_id: str) -> list[AuthorizedSite]:
    """The viewer's own consents (none on anyone else's account)."""
    viewer = await info.context.viewer()
    if viewer is None or str(viewer.account_id) != account_id:
        return []
    consents = await info.context.services.consents.of(uuid.UUID(account_id))
    return [
        AuthorizedSite(
            client_id=c.client_id,
            name=c.client_name,
            scopes=list(c.scopes),
            granted_at=c.granted_at,
        )
        for c in consents
    ]
