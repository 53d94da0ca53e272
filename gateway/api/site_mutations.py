"""``revokeSiteConsent``: a person withdraws a website's OpenID Connect consent, which also
ends the site's login sessions of the account (``clients.grants.Consents.revoke``)."""

from __future__ import annotations

import strawberry

from gateway.api import results
from gateway.api.mutations import ClientInput, client_info
from gateway.api.types import Info
from gateway.errors import InvalidInput, NotFound, NotLoggedIn


@strawberry.type
class RevokeSiteConsentSuccess:
    revoked: bool


@strawberry.type
class SiteMutation:
    @results.mutation(
        "RevokeSiteConsentResult",
        RevokeSiteConsentSuccess,
        NotLoggedIn,
        NotFound,
        InvalidInput,
        description="Withdraw a website's consent (see viewer.authorizedSites): it must ask "
        "again, and its login sessions of your account end now.",
    )
    async def revoke_site_consent(
        self, info: Info, client_id: str, client: ClientInput | None = None
    ) -> RevokeSiteConsentSuccess:
        viewer = await info.context.require_viewer()
        if not 0 < len(client_id) <= 64:
            raise InvalidInput("clientId", "not a client id")
        consents = info.context.services.consents
        if not await consents.revoke(viewer.account_id, client_id, client_info(info, client)):
            raise NotFound("No such authorized site.")
        return RevokeSiteConsentSuccess(revoked=True)
