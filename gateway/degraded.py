"""One warning when a shared dependency (Redis) fails, one note when it is back; not a flood."""

from __future__ import annotations

import logging

log = logging.getLogger("gateway.degraded")


class Degraded:
    def __init__(self, what: str, fallback: str) -> None:
        self._what = what
        self._fallback = fallback
        self.down = False

    def failed(self, exc: BaseException) -> None:
        if not self.down:
            self.down = True
            log.warning("%s unavailable (%s): %s", self._what, type(exc).__name__, self._fallback)

    def ok(self) -> None:
        if self.down:
            self.down = False
            log.warning("%s is back", self._what)
