"""What the bridge does with each message: decide when a report goes to the meldkamer, keep the meldkamer's
incident up to date, and tell the citizen.

In-progress and life-threatening reports are forwarded the moment they arrive, never held for verification;
their verification result follows as an update. Other reports wait for a `forward` verdict. Either way a
report that belongs to an event the meldkamer already has joins that incident (`incidents.py`), and two
incidents that turn out to be one event are merged there too. Every forward and every update is written in
the same transaction as the change that causes it (outbox).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from burgermelding_shared.app import Runtime
from burgermelding_shared.catalogue import (
    CITIZEN_MESSAGE,
    DISPATCHER_MESSAGE,
    GROUPS_MERGED,
    INCIDENT_EVENT,
    INCIDENT_UPDATE,
    REPORT_EVENTS,
    REPORT_FOR_BRIDGE,
    REPORT_WITHDRAWN,
    REQUEST_FOR_SERVICE,
    VERIFICATION_COMPLETED,
)
from burgermelding_shared.categories import CATEGORIES
from burgermelding_shared.contracts import (
    MAX_EVENTS_A_MESSAGE,
    CitizenMessage,
    DispatcherMessage,
    GroupsMerged,
    IncidentEvent,
    IncidentStatus,
    IncidentUpdate,
    PhotoRef,
    ReportEvents,
    ReportEventType,
    ReportSubmitted,
    ReportWithdrawn,
    RequestForService,
    RequestResponse,
    TimelineEvent,
    VerificationCompleted,
)
from burgermelding_shared.db import before_commit
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.messaging import Outcome, Precedence, cancel_unsent, enqueue, first_delivery
from burgermelding_shared.retention import personal_data_removed
from burgermelding_shared.timeutil import utcnow
from burgermelding_shared.urgency import MeldkamerPriority
from dispatch_bridge import burgernet, eido, holds, incidents, media
from dispatch_bridge.audit import BRIDGE, audit
from dispatch_bridge.config import BridgeSettings
from dispatch_bridge.models import BridgeMessage, BridgeReport, Incident, deletions, messaging
from dispatch_bridge.states import (
    CLOSED_STATUSES,
    DELIVERY_STATES,
    INCIDENT_STATUSES,
    REPORT_STATES,
    DeliveryState,
    ReportState,
)
from dispatch_bridge.texts import EVENT_TEXTS, STATUS_EVENTS

log = logging.getLogger(__name__)
# Every read-then-change of a report or incident locks its row (SELECT ... FOR UPDATE on PostgreSQL): the
# relay's answer handler, the meldkamer's callbacks and intake's messages can touch the same incident at once.



def proposed_priority(report: ReportSubmitted) -> MeldkamerPriority:
    """Prio 1 for an urgent report (`contracts.is_urgent`), else what its category proposes."""
    return MeldkamerPriority.URGENT if report.urgent else CATEGORIES[report.category].priority


CITIZEN_NEWS = "citizen-news"  # session.info: what this transaction tells each citizen, sent just before commit


async def tell_citizen(session: AsyncSession, report_id: str, event: ReportEventType,
                       incident_number: str | None = None,
                       precedence: Precedence = Precedence.ORDINARY, texts: tuple[str, str] | None = None) -> None:
    """Put an event on the citizen's timeline (in the event's standard words, or `texts`: English, Dutch). What
    one transaction tells one citizen (verified and forwarded, say) goes as one message when it commits: intake
    takes it in one request and one transaction."""
    text_en, text_nl = texts or EVENT_TEXTS[event]
    audit(session, BRIDGE, f"report.{event}", "report", report_id, {"incident_number": incident_number},
          report_id=report_id)
    news = session.info.setdefault(CITIZEN_NEWS, {})
    before_commit(session, CITIZEN_NEWS, _send_citizen_news)
    events, most_urgent = news.get(report_id, ([], Precedence.ORDINARY))
    events.append(TimelineEvent(event=event, occurred_at=utcnow(), text_en=text_en, text_nl=text_nl,
                                incident_number=incident_number))
    news[report_id] = (events, max(most_urgent, precedence))


async def _send_citizen_news(session: AsyncSession) -> None:
    for report_id, (events, precedence) in session.info.pop(CITIZEN_NEWS, {}).items():
        for first in range(0, len(events), MAX_EVENTS_A_MESSAGE):
            payload = ReportEvents(report_id=report_id, events=events[first:first + MAX_EVENTS_A_MESSAGE])
            await enqueue(session, messaging, REPORT_EVENTS, payload, precedence=precedence)


def meldkamer_order(incident_id: str) -> str:
    """The outbox ordering key of everything the meldkamer hears about one incident: its request for service
    first, then its updates in the order they were written (an update sent before its request would be
    refused as unknown and wait out a backoff)."""
    return f"incident:{incident_id}"


# What an IncidentUpdate is about (its `kind`).
UpdateKind = Literal["media", "verification", "citizen_note", "withdrawn", "report_added", "merged", "sighting",
                     "burgernet", "report_removed"]


async def update_incident(session: AsyncSession, settings: BridgeSettings, incident: Incident, kind: UpdateKind,
                          notes: str | None = None, media_items: list[dict[str, Any]] | None = None, *,
                          with_summary: bool = True, merge_items: list[dict[str, Any]] | None = None,
                          urgent: bool = False) -> None:
    """Queue news for an incident the meldkamer has (or is about to have): one update id across retries, and an
    EIDO with what is new. It carries the event as it now stands, so the meldkamer always sees the whole event,
    not the pile. `urgent` news (a sighting of a live Burgernet search) leaves first and says so."""
    update_id = str(uuid.uuid4())
    summary = await incidents.summarise(session, incident) if with_summary else None
    document = eido.update_eido(incident_id=incident.id, update_id=update_id, agency=settings.agency, now=utcnow(),
                                notes=notes, media=media_items or [], merges=merge_items or [])
    update = IncidentUpdate(updateId=update_id, requestId=incident.id, kind=kind,
                            eido=document, eventSummary=summary, urgent=urgent)
    await enqueue(session, messaging, INCIDENT_UPDATE, update, path_names={"request_id": incident.id},
                  message_id=update_id, ordering_key=meldkamer_order(incident.id),
                  precedence=Precedence.URGENT if urgent else Precedence.of(incident.priority))


def photo_urls(settings: BridgeSettings, report: ReportSubmitted) -> dict[str, str]:
    return {p.photo_id: media.signed_url(settings.public_url, settings.media_url_secret, p.sha256,
                                         settings.media_url_ttl_seconds) for p in report.photos}


def media_for(settings: BridgeSettings, report: ReportSubmitted, photos: list[PhotoRef],
              incident_id: str) -> list[dict[str, Any]]:
    """EIDO media components for an update: signed links and digests of these photos."""
    writer = eido.EidoWriter(settings.agency, incident_id, utcnow())
    return writer.media(report, photos, photo_urls(settings, report))


async def incident_of(session: AsyncSession, stored: BridgeReport) -> Incident:
    """The (locked) incident a forwarded report belongs to."""
    incident = await session.get(Incident, stored.incident_id, with_for_update=True)
    assert incident is not None, f"report {stored.report_id} points to a missing incident"
    return incident


async def receive_report(runtime: Runtime, report: ReportSubmitted, message_id: str, source: str) -> str:
    """A new report, or a new revision of one (photos added)."""
    async with runtime.db.transaction() as session:
        if report.urgent:
            await incidents.decide_one_at_a_time(session)  # before any row lock: see decide_one_at_a_time
        if not await first_delivery(session, messaging, message=REPORT_FOR_BRIDGE, message_id=message_id,
                                    source=source):
            return "duplicate"
        stored = await session.get(BridgeReport, report.report_id, with_for_update=True)
        if await personal_data_removed(session, deletions, report.report_id):
            # Late news of a report whose data retention or a withdrawal removed here: it brings nothing back.
            audit(session, BRIDGE, "report.late_copy_refused", "report", report.report_id,
                  {"revision": report.revision, "from": source}, report_id=report.report_id)
            return "removed"
        if stored is not None:
            return await _revise(session, runtime.settings, stored, report)
        stored = BridgeReport(
            report_id=report.report_id, reference=report.reference, category=report.category,
            in_progress=report.in_progress, danger_to_life=report.danger_to_life, revision=report.revision,
            submission=report.model_dump_json(), received_at=utcnow(), state=ReportState.WAITING_VERIFICATION,
            appeal_id=report.appeal.action_id if report.appeal else None,
        )
        incidents.place(stored, report)
        session.add(stored)
        audit(session, BRIDGE, "report.received", "report", report.report_id,
              {"revision": report.revision, "from": source, "photos": [p.sha256 for p in report.photos]},
              report_id=report.report_id)
        if report.urgent:
            await dispatch(session, runtime.settings, stored, report)
    return "accepted"


async def _revise(session: AsyncSession, settings: BridgeSettings, stored: BridgeReport,
                  report: ReportSubmitted) -> str:
    if report.revision <= stored.revision:
        return "duplicate"  # an older or equal revision: we have newer news already
    previous = ReportSubmitted.model_validate_json(stored.submission)
    before = {p.photo_id for p in previous.photos}
    report = incidents.first_witness(report, previous)  # a witness stays the witness it first came as (#29)
    stored.submission, stored.revision = report.model_dump_json(), report.revision
    incidents.place(stored, report)
    session.add(stored)
    new_photos = [p for p in report.photos if p.photo_id not in before]
    if stored.incident_id and stored.state != ReportState.WITHDRAWN and new_photos:
        incident = await incident_of(session, stored)
        await update_incident(session, settings, incident, "media",
                              f"{len(new_photos)} more photo(s) from {report.reference}",
                              media_for(settings, report, new_photos, incident.id))
    return "revised"


async def known_report(session: AsyncSession, report_id: str) -> BridgeReport:
    """The report, locked; a 409 while its own message has not reached the bridge yet (messages travel
    independently, so news about a report can overtake the report): the sender asks again later."""
    stored = await session.get(BridgeReport, report_id, with_for_update=True)
    if stored is None:
        raise ServiceError(409, "report_not_yet_known", "the report has not reached the bridge yet",
                           detail_nl="de melding is nog niet bij de brug aangekomen",
                           headers={"Retry-After": "1"})
    return stored


async def receive_verification(runtime: Runtime, result: VerificationCompleted, message_id: str,
                               source: str) -> str:
    async with runtime.db.transaction() as session:
        await incidents.decide_one_at_a_time(session)  # it may forward, join or merge
        stored = await known_report(session, result.report_id)
        if result.revision > stored.revision:  # this revision of the report has not arrived yet
            raise ServiceError(409, "report_not_yet_known", "this revision has not reached the bridge yet",
                               detail_nl="deze versie van de melding is nog niet bij de brug aangekomen",
                               headers={"Retry-After": "1"})
        if not await first_delivery(session, messaging, message=VERIFICATION_COMPLETED, message_id=message_id,
                                    source=source):
            return "duplicate"
        if (result.revision, result.assessment) <= (stored.verified_revision, stored.verified_assessment):
            return "stale"
        first_verdict = stored.verified_revision < 0
        audit(session, BRIDGE, "report.verdict", "report", stored.report_id,
              {"revision": result.revision, "verdict": result.verdict, "score": result.score},
              report_id=stored.report_id)
        stored.verdict, stored.score, stored.verified_revision = result.verdict, result.score, result.revision
        stored.verified_assessment = result.assessment
        stored.verification, stored.group_id = result.model_dump_json(), result.group_id
        session.add(stored)
        report = ReportSubmitted.model_validate_json(stored.submission)
        precedence = Precedence.urgent_if(report.urgent)
        if stored.state in (ReportState.WITHDRAWN, ReportState.REJECTED):
            return "applied"
        if stored.state == ReportState.FORWARDED:
            # Already with the meldkamer (in progress, or a later revision): the result follows as an update.
            incident = await incident_of(session, stored)
            await update_incident(session, runtime.settings, incident, "verification",
                                  verification_note(stored.reference, result))
            if first_verdict:
                await tell_citizen(session, stored.report_id, "verified", precedence=precedence)
            await merge_with_group(session, runtime.settings, incident, result.group_reports)
        elif result.verdict == "forward" or (stored.appeal_id and result.verdict == "review"):
            # An answer to a Burgernet action or witness call goes to its incident unless it is spam: there
            # the investigators weigh it, with verification's reasons beside it.
            await tell_citizen(session, stored.report_id, "verified", precedence=precedence)
            incident = await dispatch(session, runtime.settings, stored, report)
            await merge_with_group(session, runtime.settings, incident, result.group_reports)
        elif result.verdict == "review":
            stored.state = REPORT_STATES.move(stored.state, ReportState.HELD_FOR_REVIEW)
            if first_verdict:
                await tell_citizen(session, stored.report_id, "under_review")
        else:
            stored.state = REPORT_STATES.move(stored.state, ReportState.REJECTED)
            await tell_citizen(session, stored.report_id, "rejected")
    return "applied"


def verification_note(reference: str, result: VerificationCompleted) -> str:
    reasons = ", ".join(sorted({r.code for r in result.reasons})) or "no concerns"
    note = f"Verification of {reference} (revision {result.revision}): {result.verdict}, score {result.score:.2f}; " \
           f"{reasons}"
    return note + (f"; Burgernet {burgernet.match_text(result)}" if result.appeal_match else "")


async def dispatch(session: AsyncSession, settings: BridgeSettings, stored: BridgeReport,
                   report: ReportSubmitted) -> Incident:
    """Send a report to the meldkamer: into the open incident of its event if there is one, else as a new
    incident. The same rule for urgent and ordinary reports; for the first report of an event it costs one
    indexed query, so the first urgent report leaves as fast as before. An answer to a Burgernet action goes to
    that action's incident instead."""
    await incidents.decide_one_at_a_time(session)
    if report.appeal is not None:
        result = VerificationCompleted.model_validate_json(stored.verification) if stored.verification else None
        attached = await burgernet.attach_answer(session, settings, stored, report, result)
        if attached is not None:
            return attached
    incident = await incidents.open_incident_for(session, report)
    if incident is None:
        return await forward(session, settings, stored, report)
    await join_incident(session, settings, stored, report, incident)
    return incident


async def forward(session: AsyncSession, settings: BridgeSettings, stored: BridgeReport,
                  report: ReportSubmitted) -> Incident:
    """Create the incident and queue its request for service (one requestId, whatever the retries)."""
    now = utcnow()
    priority = proposed_priority(report)
    incident = Incident(id=str(uuid.uuid4()), category=report.category, priority=priority,
                        delivery_state=DeliveryState.QUEUED,
                        created_at=now, updated_at=now)
    session.add(incident)
    stored.incident_id, stored.state = incident.id, REPORT_STATES.move(stored.state, ReportState.FORWARDED)
    session.add(stored)
    audit(session, BRIDGE, "report.sent_to_meldkamer", "report", stored.report_id,
          {"incident_id": incident.id, "as": "request_for_service"}, report_id=stored.report_id)
    document = eido.build_eido(incident_id=incident.id, priority=priority, report=report,
                      photo_urls=photo_urls(settings, report), agency=settings.agency,
                      callback_uri=f"{settings.public_url}/v1/meldkamer/callbacks", now=now)
    request = RequestForService(requestId=incident.id, eido=document,
                                eventSummary=await incidents.summarise(session, incident))
    await enqueue(session, messaging, REQUEST_FOR_SERVICE, request, precedence=Precedence.of(priority),
                  message_id=request_message_id(incident.id), ordering_key=meldkamer_order(incident.id))
    await tell_citizen(session, stored.report_id, "forwarded", precedence=Precedence.of(priority))
    return incident


async def join_incident(session: AsyncSession, settings: BridgeSettings, stored: BridgeReport,
                        report: ReportSubmitted, incident: Incident) -> None:
    """Another report about an event the meldkamer already has: an update to that incident (a new witness,
    new photos, a new description), not a new incident. An urgent witness makes the incident urgent."""
    stored.incident_id, stored.state = incident.id, REPORT_STATES.move(stored.state, ReportState.FORWARDED)
    session.add(stored)
    audit(session, BRIDGE, "report.sent_to_meldkamer", "report", stored.report_id,
          {"incident_id": incident.id, "as": "incident_update"}, report_id=stored.report_id)
    await holds.extend_hold(session, incident.id, stored.report_id)
    incident.priority = min(incident.priority, proposed_priority(report))
    incident.updated_at = utcnow()
    session.add(incident)
    await update_incident(session, settings, incident, "report_added",
                          f"Another witness of this event ({report.reference}): {report.description}",
                          media_for(settings, report, report.photos, incident.id))
    await tell_joined(session, stored, report, incident)


async def tell_joined(session: AsyncSession, stored: BridgeReport, report: ReportSubmitted,
                      incident: Incident) -> None:
    """The citizen of a report that joined an incident hears where the incident stands."""
    precedence = Precedence.of(incident.priority)
    await tell_citizen(session, stored.report_id, "forwarded", precedence=precedence)
    if incident.delivery_state == DeliveryState.ACCEPTED:
        await tell_citizen(session, stored.report_id, "accepted", incident.meldkamer_incident_id,
                           precedence=precedence)
    elif incident.call_112_sent_at is not None and report.urgent:
        await tell_citizen(session, stored.report_id, "call_112", precedence=precedence)


async def merge_with_group(session: AsyncSession, settings: BridgeSettings, incident: Incident,
                           group_reports: list[str]) -> None:
    """Verification found more reports of the incident's event: if some went to another open incident, the
    two are one event and become one."""
    if not group_reports:
        return
    others = [other for other in (await session.execute(select(col(BridgeReport.incident_id)).where(
        col(BridgeReport.report_id).in_(group_reports), col(BridgeReport.incident_id).is_not(None),
        BridgeReport.incident_id != incident.id).distinct())).scalars() if other is not None]
    await merge_incidents(session, settings, [incident.id, *others])


async def merge_incidents(session: AsyncSession, settings: BridgeSettings, incident_ids: list[str], *,
                          respect_splits: bool = True) -> Incident | None:
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
        if incident is not None and incidents.is_open(incident) and incident not in found:
            found.append(incident)
    if len(found) < 2:
        return found[0] if found else None
    # The one the meldkamer has accepted goes on (it is being worked on), else the oldest.
    survivor, *candidates = sorted(found, key=lambda i: (i.delivery_state != DeliveryState.ACCEPTED, i.created_at,
                                                         i.id))
    absorbed: list[Incident] = []
    all_moved: list[BridgeReport] = []
    for other in candidates:
        if respect_splits and any(split_apart(other, kept) for kept in (survivor, *absorbed)):
            log.info("incidents kept apart: split by a dispatcher", extra={"incident_id": other.id,
                                                                          "survivor": survivor.id})
            continue
        absorbed.append(other)
    for other in absorbed:
        moved = await incidents.reports_of(session, other.id)
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
            await update_incident(session, settings, other, "merged",
                                  f"Merged into incident {survivor.id}: the same event.",
                                  merge_items=[merge_component(settings, other, survivor, "REPLACED")],
                                  with_summary=False)
        media_items: list[dict[str, Any]] = []
        for stored in moved:
            if stored.state != "withdrawn":
                report = ReportSubmitted.model_validate_json(stored.submission)
                media_items += media_for(settings, report, report.photos, survivor.id)
        replacing = ([] if other.delivery_state == DeliveryState.CANCELLED
                     else [merge_component(settings, survivor, other, "REPLACING")])
        await update_incident(session, settings, survivor, "merged",
                              f"Incident {other.id} ({len(moved)} report(s)) is the same event and was merged "
                              "into this one.", media_items, merge_items=replacing)
        for stored in moved:
            if stored.state != "withdrawn":
                await tell_citizen(session, stored.report_id, "joined", survivor.meldkamer_incident_id,
                                   precedence=Precedence.of(survivor.priority))
    if absorbed:
        await holds.follow_merge(session, survivor, absorbed, all_moved)  # a hold holds, whoever survives
        log.info("incidents merged", extra={"incident_id": survivor.id, "merged": [o.id for o in absorbed]})
    return survivor


def split_apart(one: Incident, other: Incident) -> bool:
    """Whether a dispatcher split one of these incidents off the other."""
    return one.split_from == other.id or other.split_from == one.id


def request_message_id(incident_id: str) -> str:
    return f"rfs-{incident_id}"


def merge_component(settings: BridgeSettings, incident: Incident, other: Incident, direction: str) -> dict[str, Any]:
    return eido.merge_component(settings.agency, incident.id, other.id, direction, utcnow())


async def receive_group_merge(runtime: Runtime, merge: GroupsMerged, message_id: str, source: str) -> str:
    """Verification's merge pass found two groups to be one event: so are their incidents."""
    async with runtime.db.transaction() as session:
        await incidents.decide_one_at_a_time(session)
        if not await first_delivery(session, messaging, message=GROUPS_MERGED, message_id=message_id,
                                    source=source):
            return "duplicate"
        reports = (await session.execute(select(BridgeReport).where(
            col(BridgeReport.report_id).in_([*merge.report_ids, *merge.merged_report_ids])).with_for_update()
        )).scalars().all()
        for stored in reports:
            stored.group_id = merge.group_id
            session.add(stored)
        survivor = await merge_incidents(session, runtime.settings,
                                         [r.incident_id for r in reports if r.incident_id])
    return "merged" if survivor is not None else "applied"


async def receive_withdrawal(runtime: Runtime, withdrawal: ReportWithdrawn, message_id: str, source: str) -> str:
    async with runtime.db.transaction() as session:
        stored = await known_report(session, withdrawal.report_id)
        if not await first_delivery(session, messaging, message=REPORT_WITHDRAWN, message_id=message_id,
                                    source=source):
            return "duplicate"
        was_forwarded = stored.state == ReportState.FORWARDED
        stored.state = REPORT_STATES.move(stored.state, ReportState.WITHDRAWN)
        session.add(stored)
        if was_forwarded and stored.incident_id:
            incident = await incident_of(session, stored)
            await update_incident(session, runtime.settings, incident, "withdrawn",
                                  f"The citizen withdrew report {stored.reference}.")
            if not any(r.state != ReportState.WITHDRAWN for r in await incidents.reports_of(session, incident.id)):
                # Its last witness withdrew: the meldkamer cancels it, so a new report of the place and time
                # starts a new incident rather than joining a cancelled one.
                if incident.operational_status not in CLOSED_STATUSES:
                    incident.operational_status = INCIDENT_STATUSES.move(
                        incident.operational_status or IncidentStatus.ACTIVE, IncidentStatus.CANCELLED)
                session.add(incident)
    return "applied"


async def receive_citizen_message(runtime: Runtime, message: CitizenMessage, message_id: str, source: str) -> str:
    async with runtime.db.transaction() as session:
        stored = await known_report(session, message.report_id)
        if not await first_delivery(session, messaging, message=CITIZEN_MESSAGE, message_id=message_id,
                                    source=source):
            return "duplicate"
        session.add(BridgeMessage(id=message.message_id, report_id=message.report_id, direction="from_citizen",
                                  text=message.text, in_reply_to=message.in_reply_to, sent_at=message.sent_at))
        if stored.incident_id and stored.state != ReportState.WITHDRAWN:
            incident = await incident_of(session, stored)
            prefix = "Answer" if message.in_reply_to else "Message"
            await update_incident(session, runtime.settings, incident, "citizen_note",
                                  f"{prefix} from the citizen ({stored.reference}): {message.text}")
    return "applied"


async def ask_citizen(session: AsyncSession, report_id: str, text: str, author: str | None,
                      question_id: str | None = None) -> BridgeMessage:
    """A dispatcher's question: kept here and sent to the citizen through intake."""
    question = BridgeMessage(id=question_id or str(uuid.uuid4()), report_id=report_id, direction="to_citizen",
                             text=text, author=author, sent_at=utcnow())
    session.add(question)
    payload = DispatcherMessage(report_id=report_id, message_id=question.id, text=text, sent_at=question.sent_at)
    await enqueue(session, messaging, DISPATCHER_MESSAGE, payload, precedence=Precedence.URGENT)
    return question


async def on_meldkamer_attempt(session: AsyncSession, row: Mapping[str, Any], outcome: Outcome) -> None:
    """A request went out without a decision (error, timeout): queued -> sent, with the cause so far."""
    incident = await session.get(Incident, json.loads(row["payload"])["requestId"], with_for_update=True)
    if incident is not None and incident.delivery_state == DeliveryState.QUEUED:
        incident.delivery_state = DELIVERY_STATES.move(incident.delivery_state, DeliveryState.SENT)
        incident.delivery_cause = outcome.reason[:1000]
        incident.updated_at = utcnow()
        session.add(incident)


async def on_meldkamer_answer(session: AsyncSession, row: Mapping[str, Any], outcome: Outcome) -> None:
    """Relay result handler for requests for service: record the meldkamer's decision and tell the citizen."""
    request_id = json.loads(row["payload"])["requestId"]
    incident = await session.get(Incident, request_id, with_for_update=True)
    if incident is None:
        log.error("answer for unknown incident", extra={"request_id": request_id})
        return
    incident.updated_at = utcnow()
    event: ReportEventType | None = None
    if outcome.delivered:
        try:
            answer = RequestResponse.model_validate(outcome.body)
        except ValueError:
            answer = RequestResponse(requestId=request_id, responseCode=500, responseText="unreadable answer")
        if answer.responseCode == 200:
            # A callback may have proven acceptance first (the meldkamer stored it but its answer was lost):
            # then the citizen has been told already.
            event = None if incident.delivery_state == DeliveryState.ACCEPTED else "accepted"
            incident.delivery_state = DELIVERY_STATES.move(incident.delivery_state, DeliveryState.ACCEPTED)
            incident.meldkamer_incident_id = answer.incidentId
        elif incident.delivery_state == DeliveryState.ACCEPTED:
            # A status callback proved it accepted before this answer came: the answer changes nothing.
            log.warning("a late answer after acceptance", extra={"request_id": request_id,
                                                                 "response_code": answer.responseCode})
        elif answer.responseCode in (180, 182):
            incident.delivery_state = DELIVERY_STATES.move(incident.delivery_state, DeliveryState.SENT)
        else:
            incident.delivery_state = DELIVERY_STATES.move(incident.delivery_state, DeliveryState.REJECTED)
            incident.delivery_cause = f"{answer.responseCode} {answer.responseText}"
            event = "declined"
    elif incident.delivery_state != DeliveryState.ACCEPTED:
        incident.delivery_state = DELIVERY_STATES.move(incident.delivery_state, DeliveryState.DEAD_LETTERED)
        incident.delivery_cause = outcome.reason[:1000]
        event = "declined"
    session.add(incident)
    if event:
        for stored in await incidents.reports_of(session, incident.id):
            await tell_citizen(session, stored.report_id, event, incident.meldkamer_incident_id,
                               precedence=Precedence.of(incident.priority))


async def receive_incident_event(runtime: Runtime, event: IncidentEvent, webhook_id: str) -> str:
    """A signed status change or question from the meldkamer. Duplicates are ignored; a stale status never
    moves an incident back."""
    async with runtime.db.transaction() as session:
        if not await first_delivery(session, messaging, message=INCIDENT_EVENT, message_id=webhook_id,
                                    source="meldkamer"):
            return "duplicate"
        incident = await session.get(Incident, event.requestId, with_for_update=True)
        if incident is None:
            raise ServiceError(404, "incident_not_found", "no incident with this requestId",
                               detail_nl="geen incident bij deze requestId")
        reports = await incidents.reports_of(session, incident.id) if incident.merged_into is None else []
        if event.questionId and event.notesText:
            for stored in reports:
                question_id = f"{event.questionId}:{stored.report_id}"[:64]
                # The same question may come again under another webhook id: ask it once.
                if await session.get(BridgeMessage, question_id) is None:
                    await ask_citizen(session, stored.report_id, event.notesText, "meldkamer", question_id)
        if incident.merged_into is not None:
            # Part of another incident now: its citizens follow that one; this one's late news changes nothing.
            incident.callback_sequence = max(incident.callback_sequence, event.sequence)
            session.add(incident)
            return "merged"
        if event.sequence <= incident.callback_sequence:
            return "out_of_order"
        previous = STATUS_EVENTS.get(incident.operational_status or "")
        audit(session, BRIDGE, "incident.status", "incident", incident.id,
              {"status": event.status, "sequence": event.sequence, "meldkamer_incident_id": event.incidentId})
        if not INCIDENT_STATUSES.allows(incident.operational_status or IncidentStatus.ACTIVE, event.status):
            # The meldkamer decides its own incident's status: recorded all the same, but a workflow of theirs
            # that changed shows here.
            log.warning("an incident status outside the workflow", extra={
                "incident_id": incident.id, "from": incident.operational_status, "to": str(event.status)})
        incident.callback_sequence, incident.operational_status = event.sequence, event.status
        incident.meldkamer_incident_id = incident.meldkamer_incident_id or event.incidentId
        if incident.delivery_state != DeliveryState.ACCEPTED:
            # A status from the meldkamer proves it has the incident, even if its answer to our request was
            # lost; the request's eventual answer will then not tell the citizen a second time.
            incident.delivery_state = DELIVERY_STATES.move(incident.delivery_state, DeliveryState.ACCEPTED)
            incident.delivery_cause = None
            for stored in reports:
                await tell_citizen(session, stored.report_id, "accepted", incident.meldkamer_incident_id,
                                   precedence=Precedence.of(incident.priority))
        incident.updated_at = utcnow()
        session.add(incident)
        citizen_event = STATUS_EVENTS.get(event.status)
        if citizen_event and citizen_event != previous:
            for stored in reports:
                await tell_citizen(session, stored.report_id, citizen_event, incident.meldkamer_incident_id,
                                   precedence=Precedence.of(incident.priority))
    return "applied"
