"""Audit events and the client facts every mutation records for risk control."""

from __future__ import annotations

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
            platform=client.platform if client else None,
            channel=client.channel if client else None,
            device_param=client.device_param if client else None,
            ip=client.ip if client else None,
            user_agent=client.user_agent if client else None,
            detail=detail,
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
