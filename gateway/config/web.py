"""What people meet in a browser or read: ``[web]`` (the pages the gateway serves,
``gateway.web``), ``[web_scan]`` (scan to log in), ``[admin]`` (the console) and ``[i18n]``
(the language of messages)."""

from __future__ import annotations

from typing import Literal

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


class WebScanModel(BaseModel):
    """``[web_scan]``: scan to log in with the mini-program (``gateway.weblogin``). ``page``
    is the mini-program page the code opens (it reads ``scene`` from its query and calls
    ``approveWebLogin``); ``check_path = false`` and ``env_version`` let a page not yet
    published (``trial``, ``develop``) be scanned."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    page: str = Field(
        default="pages/weblogin/confirm", pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$"
    )
    ticket_seconds: int = Field(default=120, ge=30, le=600)
    check_path: bool = True
    env_version: Literal["release", "trial", "develop"] = "release"
    code_width: int = Field(default=430, ge=280, le=1280)
    # codes started per client address a minute: each costs a WeChat call and a row
    starts_per_minute: int = Field(default=30, ge=1, le=100_000)


class I18nModel(BaseModel):
    """``[i18n]``: the language of messages people read (``gateway.i18n``) when the request's
    ``Accept-Language`` names none the gateway speaks: English unless set to ``"zh-CN"``.
    Codes never change with it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_locale: Literal["zh-CN", "en"] = "en"

    @field_validator("default_locale", mode="before")
    @classmethod
    def _bcp47(cls, value: object) -> object:
        """``zh_CN`` (gettext's spelling) is taken for ``zh-CN``."""
        return "zh-CN" if value == "zh_CN" else value
