"""What the provider takes from the hosted login page (``gateway.web``): the browser's login
(who, since when, how) and the pages' renderer."""

from __future__ import annotations

from datetime import datetime

from gateway.web.browser import BrowserLogin, BrowserSessions
from gateway.web.pages import Pages

__all__ = ["BrowserLogin", "BrowserSessions", "Pages", "epoch"]


def epoch(value: datetime | float) -> int:
    """A login's ``auth_time`` in seconds since the epoch."""
    return int(value.timestamp()) if isinstance(value, datetime) else int(value)
