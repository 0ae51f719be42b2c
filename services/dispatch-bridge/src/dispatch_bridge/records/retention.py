"""Retention at the bridge: intake's orders to remove personal data, applied to this copy."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete
from sqlmodel import col

from burgermelding_shared.app import Runtime
from burgermelding_shared.catalogue import RETENTION_FOR_BRIDGE
from burgermelding_shared.contracts import ReportSubmitted, RetentionApplied, coarse
from burgermelding_shared.db import rowcount
from burgermelding_shared.messaging import first_delivery
from burgermelding_shared.retention import log_deletion
from dispatch_bridge.models import BridgeMessage, BridgeReport, deletions, messaging
from dispatch_bridge.models import audit as audit_tables


async def apply_retention(runtime: Runtime, order: RetentionApplied, message_id: str, source: str) -> str:
    async with runtime.db.transaction() as session:
        if not await first_delivery(
            session, messaging, message=RETENTION_FOR_BRIDGE, message_id=message_id, source=source
        ):
            return "duplicate"
        stored = await session.get(BridgeReport, order.report_id, with_for_update=True)
        removed: dict[str, Any] = {}
        if stored is not None:
            # Which incident it was in: an evidence export of that incident says what went (nothing personal).
            removed["incident_id"] = stored.incident_id
            submission = ReportSubmitted.model_validate_json(stored.submission)
            removed["contact"] = submission.contact is not None
            if order.action == "remove_contact":
                submission = submission.model_copy(update={"contact": None})
            else:
                removed["messages"] = rowcount(
                    await session.execute(delete(BridgeMessage).where(col(BridgeMessage.report_id) == stored.report_id))
                )
                removed["description"], removed["photos"] = True, len(submission.photos)
                submission = submission.anonymised()
                stored.lat = coarse(stored.lat) if stored.lat is not None else None
                stored.lon = coarse(stored.lon) if stored.lon is not None else None
                stored.submitter_tag = None
            if order.action == "purge":
                await session.delete(stored)
                removed["report"] = True
            else:
                stored.submission = submission.model_dump_json()
                session.add(stored)
        log_deletion(
            session,
            deletions,
            audit_tables,
            report_id=order.report_id,
            reference=stored.reference if stored else None,
            rule=order.rule,
            action=order.action,
            removed=removed,
        )
    return "applied"
