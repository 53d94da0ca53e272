"""Who a partner token speaks for: a live partner, with no more scopes than it still has."""

from __future__ import annotations

from dataclasses import replace

from gateway.partners.registry import Partners, PartnerView
from gateway.partners.tokens import PartnerTokens


class PartnerAuth:
    def __init__(self, tokens: PartnerTokens, registry: Partners) -> None:
        self._tokens = tokens
        self._registry = registry

    async def authenticate(self, token: str) -> PartnerView | None:
        """The partner behind ``token`` (never a frontend token), if still enabled."""
        claims = self._tokens.verify(token)
        if claims is None:
            return None
        partner = await self._registry.get(claims.client_id)
        if partner is None or partner.disabled:
            return None
        # the token's scopes, never more than the partner still has
        return replace(partner, scopes=partner.scopes & claims.scopes)
