"""The shape of a WeChat one-time code, checked before it costs an upstream call."""

from __future__ import annotations

import re

from gateway.errors import InvalidInput

_CODE = re.compile(r"^[\x21-\x7e]{1,128}$")


def check_code(code: str) -> None:
    if not _CODE.match(code):
        raise InvalidInput("code", "The code must be 1 to 128 printable ASCII characters.")
