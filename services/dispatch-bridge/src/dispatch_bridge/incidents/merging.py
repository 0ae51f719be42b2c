"""Merging incidents that are one event (verification's groups, a dispatcher's decision)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from burgermelding_shared.app import Runtime
from burgermelding_shared.catalogue import (
    GROUPS_MERGED,
)
from burgermelding_shared.contracts import (
    GroupsMerged,
    ReportSubmitted,
)
from burgermelding_shared.messaging import Precedence, cancel_unsent, first_delivery
from burgermelding_shared.timeutil import utcnow
from dispatch_bridge.citizens.news import tell_citizen
from dispatch_bridge.config import BridgeSettings
from dispatch_bridge.incidents import events
from dispatch_bridge.meldkamer.requests import media_for, merge_component, request_message_id, update_incident
from dispatch_bridge.models import BridgeReport, Incident, messaging
from dispatch_bridge.records import holds
from dispatch_bridge.states import (
    DELIVERY_STATES,
    DeliveryState,
)

log = logging.getLogger(__name__)


async def merge_with_group(
    session: AsyncSession, settings: BridgeSettings, incident: Incident, group_reports: list[str]
) -> None:
    """Verification found more reports of the incident's event: if some went to another open incident, the
    two are one event and become one."""
    if not group_reports:
        return
    others = [
        other
        for other in (
            await session.execute(
                select(col(BridgeReport.incident_id))
                .where(
                    col(BridgeReport.report_id).in_(group_reports),
                    col(BridgeReport.incident_id).is_not(None),
                    BridgeReport.incident_id != incident.id,
                )
                .distinct()
            )
        ).scalars()
        if other is not None
    ]
    await merge_incidents(session, settings, [incident.id, *others])


async def merge_incidents(
    session: AsyncSession, settings: BridgeSettings, incident_ids: list[str], *, respect_splits: bool = True
) -> Incident | None:
    """Merge the open ones of these incidents into the oldest: its reports, photos and witnesses become one
    incident, the meldkamer is told which incident was merged into which (EIDO mergeComponent on both), and
    the citizens of the merged reports hear that theirs is handled with the others.

    A dispatcher who split an incident off another said they are different events: `respect_splits` (the
    automatic merges) keeps such a pair apart, whichever way the split went; a dispatcher's own merge passes
    False and may join them again."""
    found = []
    for incident_id in sorted(set(incident_ids)):  # a fixed order of row locks: no deadlock between merges
        incident = await session.get(Incident, incident_id, with_for_update=True)
        while incident is not None and incident.merged_into is not None:  # follow earlier merges
            incident = await session.get(Incident, incident.merged_into, with_for_update=True)
        if incident is not None and events.is_open(incident) and incident not in found:
            found.append(incident)
    if len(found) < 2:
        return found[0] if found else None
    # The one the meldkamer has accepted goes on (it is being worked on), else the oldest.
    survivor, *candidates = sorted(
        found, key=lambda i: (i.delivery_state != DeliveryState.ACCEPTED, i.created_at, i.id)
    )
    absorbed: list[Incident] = []
    all_moved: list[BridgeReport] = []
    for other in candidates:
        if respect_splits and any(split_apart(other, kept) for kept in (survivor, *absorbed)):
            log.info(
                "incidents kept apart: split by a dispatcher", extra={"incident_id": other.id, "survivor": survivor.id}
            )
            continue
        absorbed.append(other)
    for other in absorbed:
        moved = await events.reports_of(session, other.id)
        all_moved += moved
        for stored in moved:
            stored.incident_id = survivor.id
            session.add(stored)
        other.merged_into, other.updated_at = survivor.id, utcnow()
        survivor.priority = min(survivor.priority, other.priority)
        session.add_all([other, survivor])
        if await cancel_unsent(session, messaging, request_message_id(other.id)):
            # Never sent: the meldkamer never hears of it, and gets its reports with the survivor.
            other.delivery_state = DELIVERY_STATES.move(other.delivery_state, DeliveryState.CANCELLED)
            other.delivery_cause = f"merged into {survivor.id} before sending"
        else:
            await update_incident(
                session,
                settings,
                other,
                "merged",
                f"Merged into incident {survivor.id}: the same event.",
                merge_items=[merge_component(settings, other, survivor, "REPLACED")],
                with_summary=False,
            )
        media_items: list[dict[str, Any]] = []
        for stored in moved:
            if stored.state != "withdrawn":
                report = ReportSubmitted.model_validate_json(stored.submission)
                media_items += media_for(settings, report, report.photos, survivor.id)
        replacing = (
            []
            if other.delivery_state == DeliveryState.CANCELLED
            else [merge_component(settings, survivor, other, "REPLACING")]
        )
        await update_incident(
            session,
            settings,
            survivor,
            "merged",
            f"Incident {other.id} ({len(moved)} report(s)) is the same event and was merged into this one.",
            media_items,
            merge_items=replacing,
        )
        for stored in moved:
            if stored.state != "withdrawn":
                await tell_citizen(
                    session,
                    stored.report_id,
                    "joined",
                    survivor.meldkamer_incident_id,
                    precedence=Precedence.of(survivor.priority),
                )
    if absorbed:
        await holds.follow_merge(session, survivor, absorbed, all_moved)  # a hold holds, whoever survives
        log.info("incidents merged", extra={"incident_id": survivor.id, "merged": [o.id for o in absorbed]})
    return survivor


def split_apart(one: Incident, other: Incident) -> bool:
    """Whether a dispatcher split one of these incidents off the other."""
    return one.split_from == other.id or other.split_from == one.id


async def receive_group_merge(runtime: Runtime, merge: GroupsMerged, message_id: str, source: str) -> str:
    """Verification's merge pass found two groups to be one event: so are their incidents."""
    async with runtime.db.transaction() as session:
        await events.decide_one_at_a_time(session)
        if not await first_delivery(session, messaging, message=GROUPS_MERGED, message_id=message_id, source=source):
            return "duplicate"
        reports = (
            (
                await session.execute(
                    select(BridgeReport)
                    .where(col(BridgeReport.report_id).in_([*merge.report_ids, *merge.merged_report_ids]))
                    .with_for_update()
                )
            )
            .scalars()
            .all()
        )
        for stored in reports:
            stored.group_id = merge.group_id
            session.add(stored)
        survivor = await merge_incidents(session, runtime.settings, [r.incident_id for r in reports if r.incident_id])
    return "merged" if survivor is not None else "applied"
