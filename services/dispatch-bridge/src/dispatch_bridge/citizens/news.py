"""News on a citizen's timeline: what one transaction tells one citizen goes as one message when it commits."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from burgermelding_shared.catalogue import (
    REPORT_EVENTS,
)
from burgermelding_shared.contracts import (
    MAX_EVENTS_A_MESSAGE,
    ReportEvents,
    ReportEventType,
    ReportSubmitted,
    TimelineEvent,
)
from burgermelding_shared.db import before_commit
from burgermelding_shared.messaging import Precedence, enqueue
from burgermelding_shared.timeutil import utcnow
from dispatch_bridge.audit import BRIDGE, audit
from dispatch_bridge.citizens.texts import EVENT_TEXTS
from dispatch_bridge.models import BridgeReport, Incident, messaging
from dispatch_bridge.states import (
    DeliveryState,
)

CITIZEN_NEWS = "citizen-news"  # session.info: what this transaction tells each citizen, sent just before commit


async def tell_citizen(
    session: AsyncSession,
    report_id: str,
    event: ReportEventType,
    incident_number: str | None = None,
    precedence: Precedence = Precedence.ORDINARY,
    texts: tuple[str, str] | None = None,
) -> None:
    """Put an event on the citizen's timeline (in the event's standard words, or `texts`: English, Dutch). What
    one transaction tells one citizen (verified and forwarded, say) goes as one message when it commits: intake
    takes it in one request and one transaction."""
    text_en, text_nl = texts or EVENT_TEXTS[event]
    audit(
        session,
        BRIDGE,
        f"report.{event}",
        "report",
        report_id,
        {"incident_number": incident_number},
        report_id=report_id,
    )
    news = session.info.setdefault(CITIZEN_NEWS, {})
    before_commit(session, CITIZEN_NEWS, _send_citizen_news)
    events, most_urgent = news.get(report_id, ([], Precedence.ORDINARY))
    events.append(
        TimelineEvent(
            event=event, occurred_at=utcnow(), text_en=text_en, text_nl=text_nl, incident_number=incident_number
        )
    )
    news[report_id] = (events, max(most_urgent, precedence))


async def _send_citizen_news(session: AsyncSession) -> None:
    for report_id, (events, precedence) in session.info.pop(CITIZEN_NEWS, {}).items():
        for first in range(0, len(events), MAX_EVENTS_A_MESSAGE):
            payload = ReportEvents(report_id=report_id, events=events[first : first + MAX_EVENTS_A_MESSAGE])
            await enqueue(session, messaging, REPORT_EVENTS, payload, precedence=precedence)


async def tell_joined(session: AsyncSession, stored: BridgeReport, report: ReportSubmitted, incident: Incident) -> None:
    """The citizen of a report that joined an incident hears where the incident stands."""
    precedence = Precedence.of(incident.priority)
    await tell_citizen(session, stored.report_id, "forwarded", precedence=precedence)
    if incident.delivery_state == DeliveryState.ACCEPTED:
        await tell_citizen(session, stored.report_id, "accepted", incident.meldkamer_incident_id, precedence=precedence)
    elif incident.call_112_sent_at is not None and report.urgent:
        await tell_citizen(session, stored.report_id, "call_112", precedence=precedence)
