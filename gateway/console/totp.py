"""TOTP as RFC 6238 says and every authenticator app does: 6 digits, 30-second steps, SHA-1
(pyotp's defaults), one step of clock drift either way. The caller keeps the step of the last
accepted code, so each code works once (``repository.spend_step``)."""

from __future__ import annotations

import hmac
import re

import pyotp

STEP_SECONDS = 30
DRIFT_STEPS = 1
_CODE = re.compile(r"^[0-9]{6}$")


def new_secret() -> str:
    """A base32 secret of 160 bits (RFC 4226's recommended length)."""
    return pyotp.random_base32(32)


def matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step ``code`` belongs to, within one step of ``now``; None if none."""
    code = code.strip().replace(" ", "")
    if not _CODE.match(code):
        return None
    otp = pyotp.TOTP(secret)
    current = int(now // STEP_SECONDS)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(otp.generate_otp(step), code):
            return step
    return None
