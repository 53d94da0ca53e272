"""``[web]``: the pages the gateway serves to browsers (``gateway.web``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

ISSUER_PATTERN = r"^https?://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._~!$&()*+=:@%/-]*)?$"
"""An http(s) URL without query, fragment, spaces or quotes: it goes into headers and JSON."""


class WebModel(BaseModel):
    """``[web]``: the pages the gateway serves to browsers (``gateway.web``). ``issuer``: the
    origin websites know the gateway by (OpenID Connect's ``iss``); unset, the origin each
    request reaches it at (scheme, host, port; behind trusted proxies, what they forward).
    ``session_days``: how long a browser stays logged in (its session cookie's Max-Age)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer: str | None = Field(default=None, pattern=ISSUER_PATTERN)
    session_days: int = Field(default=7, ge=1, le=400)

    @field_validator("issuer")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value


class AdminModel(BaseModel):
    """``[admin]``: the operator console (``/admin``). ``idle_minutes``: an operator's session
    ends after this long without a request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
