"""The bridge's audit log: who looked at or did what, when (every view of a report or photo, every action,
every login, failed login, lockout and change to an account)."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from burgermelding_shared.timeutil import utcnow
from dispatch_bridge.models import AuditEntry


class Who(Protocol):
    username: str
    role: str


def audit(session: AsyncSession, actor: Who, action: str, target_type: str, target_id: str,
          detail: str | None = None) -> None:
    session.add(AuditEntry(at=utcnow(), username=actor.username[:64], role=actor.role, action=action,
                           target_type=target_type, target_id=target_id[:80], detail=detail))
