"""Audit events and the client facts every mutation records for risk control."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

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
