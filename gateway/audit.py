"""Audit events and the client facts every mutation records for risk control."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.store.models import AuditEvent


@dataclass(frozen=True)
class ClientInfo:
    platform: str
    channel: str | None = None
    device_param: str | None = None
    ip: str | None = None
    user_agent: str | None = None


UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
"""What no database (PostgreSQL refuses NUL) or UTF-8 encoder (lone surrogates) accepts."""


def storable(text: str | None) -> str | None:
    """``text`` as every database and log can hold it: NUL and lone surrogates replaced. The API
    refuses such input already; this keeps an audit row from being lost to one that slipped by."""
    return UNSTORABLE.sub("\ufffd", text) if text else text


def record(
    session: AsyncSession,
    kind: str,
    client: ClientInfo | None,
    *,
    account_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
    app_key: str | None = None,
    **detail: Any,
) -> None:
    """Add an event to the caller's transaction: it lands exactly when the change it describes."""
    session.add(
        AuditEvent(
            kind=kind,
            account_id=account_id,
            session_id=session_id,
            app_key=app_key,
            platform=storable(client.platform) if client else None,
            channel=storable(client.channel) if client else None,
            device_param=storable(client.device_param) if client else None,
            ip=storable(client.ip) if client else None,
            user_agent=storable(client.user_agent) if client else None,
            detail={k: storable(v) if isinstance(v, str) else v for k, v in detail.items()},
        )
    )


class Actor(Protocol):
    """Who acts in an authenticated mutation (a logged-in viewer)."""

    @property
    def account_id(self) -> uuid.UUID: ...

    @property
    def session_id(self) -> uuid.UUID: ...

    @property
    def app_key(self) -> str: ...


def record_by(
    session: AsyncSession, kind: str, client: ClientInfo | None, actor: Actor, **detail: Any
) -> None:
    record(
        session,
        kind,
        client,
        account_id=actor.account_id,
        session_id=actor.session_id,
        app_key=actor.app_key,
        **detail,
    )
