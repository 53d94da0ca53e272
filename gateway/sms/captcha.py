"""A check before a code is sent: a captcha ticket the client got from a captcha service
(Tencent Cloud Captcha, Aliyun Captcha) proves a person asked, not a script pumping SMS.

The gateway ships the no-op default; a deployment plugs its own ``CaptchaCheck`` in at the
composition root (``gateway.bootstrap``), see the README (SMS codes, "A captcha").
"""

from __future__ import annotations

from typing import Protocol

from gateway.audit import ClientInfo


class CaptchaCheck(Protocol):
    async def passed(self, ticket: str | None, client: ClientInfo) -> bool:
        """True when ``ticket`` (the client's ``captchaTicket``, None when it sent none) is a
        fresh, valid answer for this client's address."""
        ...


class NoCaptcha:
    """Every request passes: the limits alone guard the budget."""

    async def passed(self, ticket: str | None, client: ClientInfo) -> bool:
        return True
