"""The 112 watch: an urgent incident the meldkamer has not accepted in time, and its citizens are told to call 112."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func
from sqlmodel import col, select

from burgermelding_shared.app import Runtime
from burgermelding_shared.background import BackgroundLoop
from burgermelding_shared.messaging import Precedence
from burgermelding_shared.metrics import Metrics
from burgermelding_shared.timeutil import utcnow
from burgermelding_shared.urgency import MeldkamerPriority
from dispatch_bridge.citizens import news
from dispatch_bridge.config import BridgeSettings
from dispatch_bridge.models import BridgeReport, Incident
from dispatch_bridge.states import NOT_ACCEPTED, DeliveryState


class Call112Watch(BackgroundLoop):
    name = "call-112-watch"

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self.runtime = runtime
        settings: BridgeSettings = runtime.settings
        self.deadline = timedelta(seconds=settings.call_112_deadline_seconds)
        self.poll_seconds = max(0.2, min(5.0, settings.call_112_deadline_seconds / 4))

    async def run_once(self) -> int:
        overdue_before = utcnow() - self.deadline
        async with self.runtime.db.transaction() as session:
            overdue = (
                (
                    await session.execute(
                        select(Incident)
                        .where(
                            Incident.priority == MeldkamerPriority.URGENT,
                            col(Incident.delivery_state).in_(NOT_ACCEPTED),
                            col(Incident.merged_into).is_(None),
                            col(Incident.call_112_sent_at).is_(None),
                            Incident.created_at < overdue_before,
                        )
                        .limit(50)
                        .with_for_update(skip_locked=True)
                    )
                )
                .scalars()
                .all()
            )
            for incident in overdue:
                incident.call_112_sent_at = utcnow()
                session.add(incident)
                reports = (
                    (await session.execute(select(BridgeReport).where(BridgeReport.incident_id == incident.id)))
                    .scalars()
                    .all()
                )
                for report in reports:
                    await news.tell_citizen(session, report.report_id, "call_112", precedence=Precedence.URGENT)
        return len(overdue)


async def deadline_scraper(runtime: Runtime, metrics: Metrics) -> None:
    """For the on-call team: 112 deadlines missed so far, and urgent incidents still not accepted past it."""
    async with runtime.db.sessions() as session:
        missed = (
            await session.execute(
                select(func.count()).select_from(Incident).where(col(Incident.call_112_sent_at).is_not(None))
            )
        ).scalar_one()
        # Still on its way: one the meldkamer refused or that was given up on is the dead-letter alert's.
        waiting = (
            await session.execute(
                select(func.count())
                .select_from(Incident)
                .where(
                    col(Incident.call_112_sent_at).is_not(None),
                    col(Incident.merged_into).is_(None),
                    col(Incident.delivery_state).in_([DeliveryState.QUEUED, DeliveryState.SENT]),
                )
            )
        ).scalar_one()
    metrics.gauge(
        "bm_call_112_deadlines_missed",
        "Urgent incidents the meldkamer did not accept within the 112 "
        "deadline, all time (the citizens were told to call 112); it only grows",
    ).set(missed)
    metrics.gauge(
        "bm_call_112_overdue_incidents",
        "Urgent incidents past the 112 deadline and still not accepted by the meldkamer",
    ).set(waiting)
