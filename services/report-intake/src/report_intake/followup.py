"""What happens after a report is made: photos added, messages both ways, withdrawal, status events, and the
live stream a citizen's app follows."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from burgermelding_shared import idempotency
from burgermelding_shared.app import Runtime
from burgermelding_shared.catalogue import CITIZEN_MESSAGE, DISPATCHER_MESSAGE, REPORT_EVENTS, REPORT_WITHDRAWN
from burgermelding_shared.contracts import CitizenMessage, DispatcherMessage, ReportEvents, ReportWithdrawn
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.images import CheckedPhoto
from burgermelding_shared.messaging import Precedence, enqueue, first_delivery
from burgermelding_shared.timeutil import utcnow
from report_intake import burgernet, records, reports, texts
from report_intake.config import IntakeSettings
from report_intake.models import Contact, Message, Photo, Report, TimelineEntry, idempotency_keys, messaging
from report_intake.schemas import (
    ContactRemoved,
    MessageIn,
    MessageView,
    PhotosAdded,
    PlannedRemoval,
    StoredContact,
    StoredData,
    StoredPhoto,
    Withdrawn,
)
from report_intake.status import FINAL_STATUSES, RANK, STATUSES, ReportStatus, is_status


class TimelineNotifier:
    """Wakes the live streams of a report when its timeline grows in this process. Streams also poll, so a
    change made by another replica arrives too, a little later."""

    def __init__(self) -> None:
        self._events: dict[str, set[asyncio.Event]] = defaultdict(set)

    def notify(self, report_id: str) -> None:
        for event in self._events.get(report_id, ()):
            event.set()

    @contextlib.contextmanager
    def listen(self, report_id: str) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._events[report_id].add(event)
        try:
            yield event
        finally:
            self._events[report_id].discard(event)
            if not self._events[report_id]:
                del self._events[report_id]


def notify(runtime: Runtime, report_id: str) -> None:
    notifier: TimelineNotifier | None = runtime.extras.get("notifier")
    if notifier is not None:
        notifier.notify(report_id)


def is_open(report: Report) -> bool:
    return report.status not in FINAL_STATUSES


def refuse_if_closed(report: Report) -> None:
    if not is_open(report):
        raise ServiceError(409, "report_closed", f"this report is {report.status}; it cannot be changed",
                           detail_nl="Deze melding is afgesloten en kan niet meer worden aangevuld")


def add_timeline(session: AsyncSession, report_id: str, event: str, text_en: str, text_nl: str) -> None:
    session.add(TimelineEntry(report_id=report_id, event=event, occurred_at=utcnow(), text_en=text_en,
                              text_nl=text_nl))


async def add_photos(runtime: Runtime, report_id: str, access: reports.Access, photos: list[CheckedPhoto],
                     key: str) -> PhotosAdded:
    """Add photos to an open report: a new revision travels to verification and the bridge."""
    settings: IntakeSettings = runtime.settings
    async with runtime.db.sessions() as session:
        report = await reports.authorised_report(runtime, session, report_id, access, changing=True)
        existing = len((await session.execute(select(Photo.id).where(Photo.report_id == report_id))).all())
    refuse_if_closed(report)
    if report.appeal_id is not None:  # photos for a Burgernet action only while it is open
        async with runtime.db.sessions() as session:
            await burgernet.answer_link(session, report.appeal_id)
    if existing + len(photos) > settings.max_photos_per_report:
        raise ServiceError(413, "too_many_photos", f"at most {settings.max_photos_per_report} photos per report",
                           detail_nl=f"Maximaal {settings.max_photos_per_report} foto's per melding")
    if not photos:
        raise ServiceError(422, "no_photos", "send at least one part 'photos'",
                           detail_nl="Stuur minstens één deel 'photos'")
    added = await reports.store_photo_blobs(runtime, photos)

    async def work(session: AsyncSession) -> idempotency.StoredResponse:
        # Locked in the transaction that writes: two uploads (or an upload and a display copy) at once must not
        # both take revision N + 1, or the bridge would drop one as a duplicate and its photos never travel.
        current = await session.get(Report, report.number, with_for_update=True)
        assert current is not None
        refuse_if_closed(current)
        if current.appeal_id is not None:
            await burgernet.answer_link(session, current.appeal_id, lock=True)
        current.revision += 1
        before = {p.id for p in (await session.execute(select(Photo).where(Photo.report_id == report_id))).scalars()}
        reports.add_photo_rows(session, report_id, photos)
        add_timeline(session, report_id, "photos_added", *texts.PHOTOS_ADDED)
        limits = runtime.extras.get("limits")
        # The sender's pseudonym of today (verification's flood checks); the witness the report counts as is
        # the independent source it was made with, which it keeps (queue_report), however old the app is now.
        await reports.release_report(session, current, await limits.submitter(access.sender) if limits else None)
        new_rows = [p for p in (await session.execute(select(Photo).where(Photo.report_id == report_id)))
                    .scalars() if p.id not in before]
        body = PhotosAdded(revision=current.revision, photos=[reports.photo_summary(p) for p in new_rows])
        return idempotency.StoredResponse(202, body.model_dump(mode="json"))

    try:
        response = await idempotency.run_once(runtime.db, idempotency_keys, f"add-photos:{report_id}", key,
                                              reports.fingerprint({"report": report_id}, photos), work)
    except BaseException:
        await reports.remove_blobs(runtime, added)
        raise
    reports.wake_display_copies(runtime, photos)
    notify(runtime, report_id)
    return PhotosAdded.model_validate(response.body)


async def withdraw(runtime: Runtime, report_id: str, access: reports.Access) -> Withdrawn:
    """Withdraw a report; the withdrawal travels to the bridge (and from there to the meldkamer). Its personal
    data goes at once, here and in every copy, unless the report is held as evidence."""
    async with runtime.db.transaction() as session:
        report = await reports.authorised_report(runtime, session, report_id, access, changing=True, lock=True)
        held = await records.is_held(session, report.id)
        if report.status == ReportStatus.WITHDRAWN:
            return Withdrawn(status="withdrawn", personal_data="kept_under_legal_hold" if held and
                             report.anonymised_at is None else "removed")
        refuse_if_closed(report)
        report.status = STATUSES.move(report.status, ReportStatus.WITHDRAWN)
        report.status_rank = RANK[report.status]
        session.add(report)
        records.mark_finished(session, report)
        records.record(session, "report.withdrawn", report.id, actor="citizen", role="citizen")
        add_timeline(session, report_id, "withdrawn", *texts.WITHDRAWN)
        message = ReportWithdrawn(report_id=report_id, withdrawn_at=utcnow())
        # In the order of the report's retention messages: the bridge hears of the withdrawal first.
        await enqueue(session, messaging, REPORT_WITHDRAWN, message, precedence=Precedence.urgent_if(report.urgent),
                      ordering_key=f"report:{report.id}")
        if not held:
            await records.remove(runtime, session, report, "anonymise", records.WITHDRAWN_RULE)
    notify(runtime, report_id)
    return Withdrawn(status="withdrawn", personal_data="kept_under_legal_hold" if held else "removed")


async def list_messages(runtime: Runtime, report_id: str, access: reports.Access) -> list[MessageView]:
    async with runtime.db.sessions() as session:
        await reports.authorised_report(runtime, session, report_id, access)
        rows = (await session.execute(select(Message).where(Message.report_id == report_id)
                                      .order_by(col(Message.sent_at), col(Message.id)))).scalars().all()
    return [message_view(m) for m in rows]


def message_view(message: Message) -> MessageView:
    direction = message.direction
    match direction:
        case "to_citizen" | "from_citizen":
            return MessageView(id=message.id, direction=direction, text=message.text,
                               in_reply_to=message.in_reply_to, sent_at=message.sent_at)
    raise ValueError(f"message {message.id} goes in no direction the API knows: {direction!r}")


async def send_message(runtime: Runtime, report_id: str, access: reports.Access, message: MessageIn,
                       key: str) -> MessageView:
    """A citizen's message or answer: stored, and sent to the bridge (a note on the incident)."""
    async with runtime.db.sessions() as session:
        report = await reports.authorised_report(runtime, session, report_id, access, changing=True)
    refuse_if_closed(report)

    async def work(session: AsyncSession) -> idempotency.StoredResponse:
        if message.in_reply_to is not None:
            question = await session.get(Message, message.in_reply_to)
            if question is None or question.report_id != report_id or question.direction != "to_citizen":
                raise ServiceError(422, "unknown_question", "in_reply_to names no question on this report",
                                   detail_nl="in_reply_to verwijst niet naar een vraag bij deze melding")
        stored = Message(id=str(uuid.uuid4()), report_id=report_id, direction="from_citizen", text=message.text,
                         in_reply_to=message.in_reply_to, sent_at=utcnow())
        session.add(stored)
        outgoing = CitizenMessage(report_id=report_id, message_id=stored.id, text=stored.text,
                                  in_reply_to=stored.in_reply_to, sent_at=stored.sent_at)
        await enqueue(session, messaging, CITIZEN_MESSAGE, outgoing, precedence=Precedence.urgent_if(report.urgent))
        view = MessageView(id=stored.id, direction="from_citizen", text=stored.text, in_reply_to=stored.in_reply_to,
                           sent_at=stored.sent_at)
        return idempotency.StoredResponse(201, view.model_dump(mode="json"))

    response = await idempotency.run_once(runtime.db, idempotency_keys, f"message:{report_id}", key,
                                          reports.fingerprint(message.model_dump(), []), work)
    return MessageView.model_validate(response.body)


async def receive_dispatcher_message(runtime: Runtime, incoming: DispatcherMessage, message_id: str,
                                     source: str) -> str:
    async with runtime.db.transaction() as session:
        if not await first_delivery(session, messaging, message=DISPATCHER_MESSAGE, message_id=message_id,
                                    source=source):
            return "duplicate"
        report = (await session.execute(select(Report).where(Report.id == incoming.report_id))).scalars().first()
        if report is None:
            raise ServiceError(404, "report_not_found", "no such report", detail_nl="deze melding bestaat niet")
        session.add(Message(id=incoming.message_id, report_id=report.id, direction="to_citizen", text=incoming.text,
                            sent_at=incoming.sent_at))
        add_timeline(session, report.id, "message", texts.QUESTION[0] + incoming.text,
                     texts.QUESTION[1] + incoming.text)
    notify(runtime, incoming.report_id)
    return "applied"


async def apply_events(runtime: Runtime, news: ReportEvents, message_id: str, source: str) -> bool:
    """Add events from the bridge to the report's timeline, in order; False for a duplicate delivery."""
    async with runtime.db.transaction() as session:
        if not await first_delivery(session, messaging, message=REPORT_EVENTS, message_id=message_id,
                                    source=source):
            return False
        # Locked: two messages of one report can arrive at once (a status and the next one), and each must see
        # the other's status, or the later commit would put back an earlier status over "closed".
        report = (await session.execute(select(Report).where(Report.id == news.report_id).with_for_update())
                  ).scalars().first()
        if report is None:
            raise ServiceError(404, "report_not_found", f"no report {news.report_id}",
                               detail_nl=f"geen melding {news.report_id}")
        for event in news.events:
            session.add(TimelineEntry(report_id=report.id, event=event.event, occurred_at=event.occurred_at,
                                      text_en=event.text_en, text_nl=event.text_nl))
            if is_status(event.event) and STATUSES.allows(report.status, ReportStatus(event.event)):
                report.status = STATUSES.move(report.status, ReportStatus(event.event))
                report.status_rank = RANK[report.status]
                records.record(session, "report.status", report.id, actor="dispatch-bridge", detail={
                    "status": event.event, "incident_number": event.incident_number})
                records.mark_finished(session, report)
            if event.incident_number:
                report.incident_number = event.incident_number
        session.add(report)
    notify(runtime, news.report_id)
    return True


async def timeline_stream(runtime: Runtime, report_id: str, access: reports.Access, language: str,
                          last_event_id: str | None) -> AsyncIterator[str]:
    """Server-Sent Events: every timeline entry after `last_event_id`, then new ones as they come."""
    async with runtime.db.sessions() as session:
        await reports.authorised_report(runtime, session, report_id, access)
    settings: IntakeSettings = runtime.settings
    notifier: TimelineNotifier = runtime.extras["notifier"]
    after = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0

    async def stream() -> AsyncIterator[str]:
        nonlocal after
        deadline = time.monotonic() + settings.sse_max_seconds
        yield "retry: 3000\n\n"
        with notifier.listen(report_id) as wake:
            while time.monotonic() < deadline:
                wake.clear()
                async with runtime.db.sessions() as session:
                    entries = (await session.execute(
                        select(TimelineEntry).where(TimelineEntry.report_id == report_id,
                                                    col(TimelineEntry.id) > after)
                        .order_by(col(TimelineEntry.id)))).scalars().all()
                    status = (await session.execute(select(Report.status).where(Report.id == report_id))).scalar()
                for entry in entries:
                    after = entry.id or after
                    data = {"event": entry.event, "occurred_at": entry.occurred_at.isoformat(), "status": status,
                            "text": entry.text_nl if language == "nl" else entry.text_en}
                    yield f"id: {entry.id}\nevent: timeline\ndata: {json.dumps(data)}\n\n"
                # A heartbeat at least every 15 s keeps proxies from closing the stream.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, min(15.0, deadline - time.monotonic()))):
                        await wake.wait()
                yield ": keep-alive\n\n"

    return stream()


COPIES = [
    "verification: the report without contact details, its photos' fingerprints and the verdict",
    "dispatch-bridge: the report (contact details only if you agreed to share them) and the messages",
    "the control room (meldkamer): what was forwarded to it, kept under its own rules",
]
NOT_STORED = ["your IP address", "your device's identifiers", "your app installation's id beside the report",
              "your location beyond the place you gave"]


async def stored_data(runtime: Runtime, report_id: str, access: reports.Access) -> StoredData:
    """What is stored about this report, for the citizen who holds its token; the look is audited."""
    settings: IntakeSettings = runtime.settings
    async with runtime.db.transaction() as session:
        report = await reports.authorised_report(runtime, session, report_id, access)
        photos = (await session.execute(select(Photo).where(Photo.report_id == report_id)
                                        .order_by(col(Photo.received_at), col(Photo.id)))).scalars().all()
        contact = await session.get(Contact, report_id)
        messages = (await session.execute(select(Message).where(Message.report_id == report_id)
                                          .order_by(col(Message.sent_at), col(Message.id)))).scalars().all()
        entries = len((await session.execute(select(col(TimelineEntry.id)).where(
            TimelineEntry.report_id == report_id))).all())
        held = await records.is_held(session, report_id)
        records.record(session, "citizen.viewed_stored_data", report_id, actor="citizen", role="citizen")
    return StoredData(
        report={"id": report.id, "reference": report.reference, "category": report.category,
                "description": report.description, "location": {"lat": report.lat, "lon": report.lon,
                                                                "accuracy_m": report.accuracy_m,
                                                                "description": report.place_description},
                "observed_at": report.observed_at, "received_at": report.received_at, "status": report.status,
                "in_progress": report.in_progress, "danger_to_life": report.danger_to_life,
                "finished_at": report.finished_at, "incident_number": report.incident_number},
        photos=[StoredPhoto(id=p.id, sha256=p.sha256, size_bytes=p.size_bytes, content_type=p.content_type,
                            received_at=p.received_at, display=p.display_state, sanitised_sha256=p.sanitised_sha256)
                for p in photos],
        contact=StoredContact(name=contact.name, phone=contact.phone, email=contact.email,
                              share_with_police=contact.share_with_police) if contact else None,
        messages=[message_view(m) for m in messages],
        timeline_entries=entries, made_with_installation=report.installation_binding is not None,
        legal_hold=held, anonymised_at=report.anonymised_at,
        retention=[PlannedRemoval(**step) for step in records.planned(report, settings.retention_rules, held)],
        copies=COPIES, not_stored=NOT_STORED)


async def remove_contact(runtime: Runtime, report_id: str, access: reports.Access) -> ContactRemoved:
    """The citizen's contact details go, at any time (under a legal hold too): here and at the bridge."""
    async with runtime.db.transaction() as session:
        report = await reports.authorised_report(runtime, session, report_id, access, changing=True, lock=True)
        if await session.get(Contact, report.id) is None:
            return ContactRemoved(removed=False)
        await records.remove(runtime, session, report, "remove_contact", records.CITIZEN_REQUEST)
    return ContactRemoved(removed=True)
