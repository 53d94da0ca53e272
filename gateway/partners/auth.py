"""Who a partner token speaks for: a live partner, with no more scopes than it still has."""

from __future__ import annotations

from dataclasses import replace

from gateway.partners.registry import Partners, PartnerView
from gateway.partners.tokens import PartnerTokens
from gateway.sessions.tokens import TokenRejected


class PartnerAuth:
    def __init__(self, tokens: PartnerTokens, registry: Partners) -> None:
        self._tokens = tokens
        self._registry = registry

    async def authenticate(self, token: str) -> PartnerView:
        """The partner behind ``token`` (never a frontend token), if still enabled;
        ``TokenRejected`` otherwise."""
        claims = self._tokens.check(token)
        partner = await self._registry.get(claims.client_id)
        if partner is None or partner.disabled:
            raise TokenRejected("INVALID_TOKEN")
        # the token's scopes, never more than the partner still has
        return replace(partner, scopes=partner.scopes & claims.scopes)
