"""The bridge's audit log: who looked at or did what, when (every view of a report or photo, every action,
every login, failed login, lockout and change to an account, every legal hold, export and deletion), and what
happened to each report and photo on its way (its custody). It is the bridge's tamper-evident audit chain
(`burgermelding_shared.auditchain`)."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from burgermelding_shared import auditchain
from dispatch_bridge.models import audit as audit_tables


class Who(Protocol):
    # Read-only members, so a frozen dataclass (auth.Actor) and a class with plain attributes (_Service) both fit.
    @property
    def username(self) -> str: ...

    @property
    def role(self) -> str: ...


class _Service:
    """The bridge itself, for what it does on its own (forwarding, the meldkamer's fetches and callbacks)."""

    username = "dispatch-bridge"
    role = "service"


BRIDGE = _Service()


def audit(
    session: AsyncSession,
    actor: Who,
    action: str,
    target_type: str,
    target_id: str,
    detail: Any = None,
    report_id: str | None = None,
) -> None:
    auditchain.record(
        session,
        audit_tables,
        actor=actor.username,
        role=actor.role,
        action=action,
        target_type=target_type,
        target_id=target_id,
        report_id=report_id,
        detail=detail,
    )
