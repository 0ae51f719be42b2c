"""The conversation between the control room and a citizen: questions asked, messages and answers received."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from burgermelding_shared.app import Runtime
from burgermelding_shared.catalogue import (
    CITIZEN_MESSAGE,
    DISPATCHER_MESSAGE,
)
from burgermelding_shared.contracts import (
    CitizenMessage,
    DispatcherMessage,
)
from burgermelding_shared.messaging import Precedence, enqueue, first_delivery
from burgermelding_shared.timeutil import utcnow
from dispatch_bridge.incidents.routing import incident_of
from dispatch_bridge.meldkamer.requests import update_incident
from dispatch_bridge.models import BridgeMessage, messaging
from dispatch_bridge.reports.receiving import known_report
from dispatch_bridge.states import (
    ReportState,
)


async def receive_citizen_message(runtime: Runtime, message: CitizenMessage, message_id: str, source: str) -> str:
    async with runtime.db.transaction() as session:
        stored = await known_report(session, message.report_id)
        if not await first_delivery(session, messaging, message=CITIZEN_MESSAGE, message_id=message_id, source=source):
            return "duplicate"
        session.add(
            BridgeMessage(
                id=message.message_id,
                report_id=message.report_id,
                direction="from_citizen",
                text=message.text,
                in_reply_to=message.in_reply_to,
                sent_at=message.sent_at,
            )
        )
        if stored.incident_id and stored.state != ReportState.WITHDRAWN:
            incident = await incident_of(session, stored)
            prefix = "Answer" if message.in_reply_to else "Message"
            await update_incident(
                session,
                runtime.settings,
                incident,
                "citizen_note",
                f"{prefix} from the citizen ({stored.reference}): {message.text}",
            )
    return "applied"


async def ask_citizen(
    session: AsyncSession, report_id: str, text: str, author: str | None, question_id: str | None = None
) -> BridgeMessage:
    """A dispatcher's question: kept here and sent to the citizen through intake."""
    question = BridgeMessage(
        id=question_id or str(uuid.uuid4()),
        report_id=report_id,
        direction="to_citizen",
        text=text,
        author=author,
        sent_at=utcnow(),
    )
    session.add(question)
    payload = DispatcherMessage(report_id=report_id, message_id=question.id, text=text, sent_at=question.sent_at)
    await enqueue(session, messaging, DISPATCHER_MESSAGE, payload, precedence=Precedence.URGENT)
    return question
