"""Every string a client sends is checked here, at the edge, before any use case sees it.

A NUL or an unpaired UTF-16 surrogate (``"\\udfff"`` in JSON) cannot be stored by PostgreSQL or
SQLite, hashed or logged as UTF-8, so it is ``INVALID_INPUT`` naming the field; so is a string
longer than its bound. The walk covers the arguments of every typed field (see
``results.TypedErrors``) and the input objects and lists inside them, so a new argument is checked
without anyone remembering to. Fields are named as the use cases know them: the argument, or
for a field of an input object its path without ``input`` (``client.device_param``, ``username``);
an argument by its GraphQL name (``refreshToken``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from gateway.audit import UNSTORABLE
from gateway.compat.strawberry import camel_case
from gateway.credentials.passwords import MAX_LENGTH as MAX_PASSWORD
from gateway.errors import InvalidInput

DEFAULT_LIMIT = 256
LIMITS: dict[str, int] = {
    "platform": 32,
    "channel": 64,
    "device_param": 512,
    "password": MAX_PASSWORD * 4,  # longer is WEAK_PASSWORD (register) or simply wrong (login)
    "current_password": MAX_PASSWORD * 4,
    "new_password": MAX_PASSWORD * 4,
    "code": 512,
    "state": 512,
    "refresh_token": 128,
    "encrypted_data": 16 * 1024,
    "raw_data": 8 * 1024,
    "redirect_uri": 2048,
}


def check_arguments(arguments: dict[str, Any]) -> None:
    """Raise ``InvalidInput`` for the first string that cannot be stored or is too long."""
    for name, value in arguments.items():
        _check(value, "" if name == "input" else camel_case(name), name)


def _check(value: Any, path: str, name: str) -> None:
    if isinstance(value, str):
        _check_string(value, path, name)
    elif isinstance(value, list | tuple):
        for item in value:
            _check(item, path, name)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            inner = f"{path}.{field.name}" if path else field.name
            _check(getattr(value, field.name), inner, field.name)


def _check_string(value: str, path: str, name: str) -> None:
    if UNSTORABLE.search(value):
        raise InvalidInput(path, "%(name)s contains a NUL or an unpaired surrogate.", name=path)
    limit = LIMITS.get(name, DEFAULT_LIMIT)
    if len(value) > limit:
        raise InvalidInput(path, "%(name)s is longer than %(limit)s.", name=path, limit=limit)
