"""What a viewer may not see: phone numbers (``139****5678``) and WeChat ids.

Masking is done on the data a viewer's page is made from, and once more on the finished
response (any mainland mobile number left in it, in an audit row's detail say), so the full
number never reaches a viewer's browser in any page or export.
"""

from __future__ import annotations

import re

_MOBILE = re.compile(
    r"(?<![0-9A-Za-z])(?:(?:\+|%2B)?86[ -]?)?(1[3-9][0-9])[0-9]{4}([0-9]{4})(?![0-9A-Za-z])"
)


def phone(e164: str) -> str:
    """``+8613912345678`` -> ``139****5678``; another country's: all but the last four hidden."""
    national = e164.removeprefix("+86") if e164.startswith("+86") else e164
    if len(national) == 11 and national.isdigit():
        return f"{national[:3]}****{national[-4:]}"
    return f"****{e164[-4:]}" if len(e164) > 4 else "****"


def identifier(value: str) -> str:
    """An openid or unionid: its first four characters, enough to tell two apart."""
    return f"{value[:4]}****" if len(value) > 4 else "****"


def text(body: str) -> str:
    """Every mainland mobile number in ``body``, masked."""
    return _MOBILE.sub(r"\1****\2", body)
