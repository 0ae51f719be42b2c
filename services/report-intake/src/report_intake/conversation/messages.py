"""Messages between the control room and a citizen: a dispatcher's question, the citizen's answers."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from burgermelding_shared import idempotency
from burgermelding_shared.app import Runtime
from burgermelding_shared.catalogue import CITIZEN_MESSAGE, DISPATCHER_MESSAGE
from burgermelding_shared.contracts import CitizenMessage, DispatcherMessage
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.messaging import Precedence, enqueue, first_delivery
from burgermelding_shared.timeutil import utcnow
from report_intake import retries, texts
from report_intake.models import Message, Report, messaging
from report_intake.reports import access as reports_access
from report_intake.reports import submission
from report_intake.reports.changes import refuse_if_closed
from report_intake.reports.timeline import add_timeline, notify
from report_intake.schemas import (
    MessageIn,
    MessageView,
)


async def list_messages(runtime: Runtime, report_id: str, access: reports_access.Access) -> list[MessageView]:
    async with runtime.db.sessions() as session:
        await reports_access.authorised_report(runtime, session, report_id, access)
        rows = (
            (
                await session.execute(
                    select(Message)
                    .where(Message.report_id == report_id)
                    .order_by(col(Message.sent_at), col(Message.id))
                )
            )
            .scalars()
            .all()
        )
    return [message_view(m) for m in rows]


def message_view(message: Message) -> MessageView:
    direction = message.direction
    match direction:
        case "to_citizen" | "from_citizen":
            return MessageView(
                id=message.id,
                direction=direction,
                text=message.text,
                in_reply_to=message.in_reply_to,
                sent_at=message.sent_at,
            )
    raise ValueError(f"message {message.id} goes in no direction the API knows: {direction!r}")


async def send_message(
    runtime: Runtime, report_id: str, access: reports_access.Access, message: MessageIn, key: str
) -> MessageView:
    """A citizen's message or answer: stored, and sent to the bridge (a note on the incident)."""
    async with runtime.db.sessions() as session:
        report = await reports_access.authorised_report(runtime, session, report_id, access, changing=True)
    refuse_if_closed(report)

    async def work(session: AsyncSession) -> idempotency.StoredResponse:
        if message.in_reply_to is not None:
            question = await session.get(Message, message.in_reply_to)
            if question is None or question.report_id != report_id or question.direction != "to_citizen":
                raise ServiceError(
                    422,
                    "unknown_question",
                    "in_reply_to names no question on this report",
                    detail_nl="in_reply_to verwijst niet naar een vraag bij deze melding",
                )
        stored = Message(
            id=str(uuid.uuid4()),
            report_id=report_id,
            direction="from_citizen",
            text=message.text,
            in_reply_to=message.in_reply_to,
            sent_at=utcnow(),
        )
        session.add(stored)
        outgoing = CitizenMessage(
            report_id=report_id,
            message_id=stored.id,
            text=stored.text,
            in_reply_to=stored.in_reply_to,
            sent_at=stored.sent_at,
        )
        await enqueue(session, messaging, CITIZEN_MESSAGE, outgoing, precedence=Precedence.urgent_if(report.urgent))
        view = MessageView(
            id=stored.id,
            direction="from_citizen",
            text=stored.text,
            in_reply_to=stored.in_reply_to,
            sent_at=stored.sent_at,
        )
        return idempotency.StoredResponse(201, view.model_dump(mode="json"))

    response = await retries.run_once(
        runtime,
        f"message:{report_id}",
        key,
        submission.fingerprint(message.model_dump(), []),
        work,
    )
    return MessageView.model_validate(response.body)


async def receive_dispatcher_message(
    runtime: Runtime, incoming: DispatcherMessage, message_id: str, source: str
) -> str:
    async with runtime.db.transaction() as session:
        if not await first_delivery(
            session, messaging, message=DISPATCHER_MESSAGE, message_id=message_id, source=source
        ):
            return "duplicate"
        report = (await session.execute(select(Report).where(Report.id == incoming.report_id))).scalars().first()
        if report is None:
            raise ServiceError(404, "report_not_found", "no such report", detail_nl="deze melding bestaat niet")
        session.add(
            Message(
                id=incoming.message_id,
                report_id=report.id,
                direction="to_citizen",
                text=incoming.text,
                sent_at=incoming.sent_at,
            )
        )
        add_timeline(
            session, report.id, "message", texts.QUESTION[0] + incoming.text, texts.QUESTION[1] + incoming.text
        )
    notify(runtime, incoming.report_id)
    return "applied"
