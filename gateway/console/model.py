"""The console's domain types: roles, operators as the pages see them, what a new one gets."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class Role(StrEnum):
    """Each role may do what the one before it may, and more."""

    VIEWER = "viewer"  # reads, with phone numbers and WeChat ids masked
    SUPPORT = "support"  # revokes sessions, disables/enables, unlinks, cancels deletions
    ADMIN = "admin"  # exports personal data, requests deletion

    @property
    def rank(self) -> int:
        return list(Role).index(self)


class ConsoleError(Exception):
    """A refusal the console shows as a message (never a 5xx)."""


class UnknownOperator(ConsoleError):
    pass


class OperatorExists(ConsoleError):
    pass


class InvalidName(ConsoleError):
    """Operator names are 1-64 letters, digits, '.', '_', '@' or '-' (they go into audit rows
    and URLs as they are)."""


class LoginRefused(ConsoleError):
    """Wrong name, password or code, or a disabled operator: one answer for all."""


@dataclass(frozen=True)
class OperatorView:
    id: uuid.UUID
    name: str
    role: Role
    must_change: bool
    disabled: bool
    created_at: datetime

    def may(self, role: Role) -> bool:
        return self.role.rank >= role.rank

    @property
    def may_admin(self) -> bool:
        return self.may(Role.ADMIN)

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "role": self.role.value,
            "mustChangePassword": self.must_change,
            "disabled": self.disabled,
            "createdAt": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class Credentials:
    """What ``gateway operators add|reset`` prints once: a one-time password (changed at the
    first login) and the TOTP secret for an authenticator app. Neither is kept in clear."""

    name: str
    role: Role
    password: str
    totp_secret: str

    def as_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "role": self.role.value,
            "password": self.password,
            "totp_secret": self.totp_secret,
        }
