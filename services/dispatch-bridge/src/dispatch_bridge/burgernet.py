"""Burgernet at the bridge: dispatchers (and the meldkamer) start actions and witness calls on an incident, a
supervisor can cancel one, every one ends with a closing message (a deadline closes it when a dispatcher
forgets), and the answers come back into the incident.

An action lives here; intake gets it as a `PublishedAction` through the outbox (each change a new version) and
serves it to the apps as a JSON feed and a CAP 1.2 alert. A sighting is a report that carries an `AppealLink`:
it travels intake -> verification -> bridge like any report, and here it updates the action's incident instead
of being placed in an event by the grouping rule: at once and urgent for a live search, after verification
and ordinary for a witness call. Every step is in the audit chain.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from burgermelding_shared import burgernet, images
from burgermelding_shared.app import Runtime
from burgermelding_shared.background import BackgroundLoop
from burgermelding_shared.blobstore import published_store
from burgermelding_shared.burgernet import ActionKind, ActionPhoto, Area, Circle, LookingFor, PublishedAction
from burgermelding_shared.catalogue import BURGERNET_ACTION, BURGERNET_REQUEST
from burgermelding_shared.contracts import MeldkamerAppeal, ReportSubmitted, VerificationCompleted
from burgermelding_shared.db import serialise
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.messaging import Precedence, enqueue, first_delivery
from burgermelding_shared.timeutil import utcnow
from dispatch_bridge import forwarding, holds, incidents, peers
from dispatch_bridge.audit import BRIDGE, Who, audit
from dispatch_bridge.config import BridgeSettings
from dispatch_bridge.models import BridgeReport, BurgernetAction, BurgernetPhoto, Incident, messaging
from dispatch_bridge.states import REPORT_STATES, ReportState

log = logging.getLogger(__name__)

MAX_PHOTO_BYTES = 10 * 1024 * 1024
PHOTO_MAX_SIDE = 1600
PHOTO_MAX_PIXELS = 50_000_000

# The closing message when the dispatcher writes none, by outcome: (Dutch, English).
STANDARD_CLOSING = {
    "found": ("De persoon is gevonden. Dank u wel voor uw hulp.",
              "The person has been found. Thank you for your help."),
    "arrested": ("Er is iemand aangehouden. Dank u wel voor uw hulp.",
                 "Someone has been arrested. Thank you for your help."),
    "called_off": ("De politie heeft de actie beëindigd. Dank u wel voor uw hulp.",
                   "The police have ended this action. Thank you for your help."),
    "expired": ("Deze Burgernet-actie is beëindigd. U hoeft niet meer uit te kijken. Dank u wel voor uw "
                "oplettendheid.", "This Burgernet action has ended. You need not look out any longer. Thank you "
                "for your attention."),
    "cancelled": ("Deze Burgernet-actie is ingetrokken. U hoeft niet meer uit te kijken.",
                  "This Burgernet action has been withdrawn. You need not look out any longer."),
}
HEADLINES = {  # looking_for: (Dutch, English), when the meldkamer's script names none
    "person": ("Gezocht: persoon", "Sought: a person"), "vehicle": ("Gezocht: voertuig", "Sought: a vehicle"),
    "missing_child": ("Vermist kind", "Missing child"), "witnesses": ("Getuigen gezocht", "Witnesses sought"),
}


class ActionRequest(BaseModel):
    """A dispatcher's new action (`kind: action`, a search now) or witness call (`kind: witness_call`, about a
    window in the past). Texts in Dutch; the English ones default to the Dutch."""

    # Words of only spaces are no words: a headline of blanks must not reach the citizens' phones.
    model_config = ConfigDict(str_strip_whitespace=True)

    kind: ActionKind = "action"
    incident_id: str = Field(max_length=36, description="the incident it belongs to; answers update it")
    looking_for: LookingFor
    headline_nl: str = Field(min_length=1, max_length=160, examples=["Vermist: meisje van 7, rode jas"])
    headline_en: str | None = Field(None, max_length=160)
    description_nl: str = Field(min_length=1, max_length=2000)
    description_en: str | None = Field(None, max_length=2000)
    area: Area
    photo_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description="from POST "
                                     "/v1/dispatch/burgernet/photos")
    duration_minutes: int | None = Field(None, ge=5, description="how long it stays open (the bridge's maximum "
                                         "applies); afterwards it closes itself with the standard message")
    window_start: datetime | None = Field(None, description="witness calls: the start of the past window")
    window_end: datetime | None = None

    @model_validator(mode="after")
    def _window_for_witness_calls(self) -> ActionRequest:
        if self.kind == "witness_call":
            if self.window_start is None or self.window_end is None:
                raise ValueError("a witness call needs window_start and window_end")
            if self.window_start.tzinfo is None or self.window_end.tzinfo is None:
                raise ValueError("window_start and window_end need a UTC offset")
            if self.window_start >= self.window_end:
                raise ValueError("window_start must lie before window_end")
        elif self.window_start is not None or self.window_end is not None:
            raise ValueError("only a witness call has a window (a live action asks about now)")
        return self


class Closing(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)  # words of spaces are no words

    outcome: burgernet.Outcome = Field(description="found, arrested or called_off (expired and cancelled are the "
                                       "deadline's and a supervisor's)")
    message_nl: str | None = Field(None, min_length=1, max_length=2000, description="the closing message; the "
                                   "standard one for the outcome when left out")
    message_en: str | None = Field(None, min_length=1, max_length=2000)


class Cancellation(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)  # words of spaces are no words

    reason: str = Field(min_length=1, max_length=300, description="why (for the audit log, not published)")
    message_nl: str | None = Field(None, min_length=1, max_length=2000)
    message_en: str | None = Field(None, min_length=1, max_length=2000)


def invalid(code: str, en: str, nl: str) -> ServiceError:
    return ServiceError(422, code, en, detail_nl=nl)


def not_found() -> ServiceError:
    return ServiceError(404, "burgernet_action_not_found", "no such Burgernet action",
                        detail_nl="deze Burgernet-actie bestaat niet")


def already_ended(action: BurgernetAction) -> ServiceError:
    return ServiceError(409, "burgernet_action_ended", f"this action is already {action.status}",
                        detail_nl="deze Burgernet-actie is al beëindigd")


# ---- photos of what is sought ----

async def store_photo(runtime: Runtime, actor: Who, data: bytes) -> ActionPhoto:
    """Take a dispatcher's photo of whom or what is sought: sanitised by the suite's one image sanitiser, put in
    the published store (the only one intake's public photo route reads), and recorded with who uploaded it.
    Only a photo recorded here can be named by an action."""
    if len(data) > MAX_PHOTO_BYTES:
        raise ServiceError(413, "photo_too_large", f"a photo may be at most {MAX_PHOTO_BYTES // (1024 * 1024)} MB",
                           detail_nl=f"een foto mag hoogstens {MAX_PHOTO_BYTES // (1024 * 1024)} MB zijn")
    settings: BridgeSettings = runtime.settings
    clean = await asyncio.to_thread(images.sanitised_copy, data, max_pixels=PHOTO_MAX_PIXELS,
                                    max_side=PHOTO_MAX_SIDE, scratch=settings.blob_dir / "tmp")
    digest = hashlib.sha256(clean).hexdigest()
    await asyncio.to_thread(published_store(settings.blob_config()).put_bytes, clean)
    photo = ActionPhoto(sha256=digest, size_bytes=len(clean), sha1=burgernet.photo_digest_sha1(clean))
    async with runtime.db.transaction() as session:
        if await session.get(BurgernetPhoto, digest) is None:  # the same photo again: one record, the first
            session.add(BurgernetPhoto(sha256=digest, size_bytes=photo.size_bytes, sha1=photo.sha1,
                                       original_sha256=hashlib.sha256(data).hexdigest(),
                                       uploaded_by=actor.username, uploaded_at=utcnow()))
        audit(session, actor, "burgernet.photo_uploaded", "photo_sha256", digest,
              {"sha256": digest, "size_bytes": len(clean), "original_sha256": hashlib.sha256(data).hexdigest()})
    return photo


async def _photo(session: AsyncSession, sha256: str) -> ActionPhoto:
    """The published photo an action names. Anything not uploaded for Burgernet is refused with the same answer
    whether or not the digest is known elsewhere (a citizen's original): nothing is learnt from it."""
    recorded = await session.get(BurgernetPhoto, sha256)
    if recorded is None:
        raise invalid("unknown_photo", "no photo with this digest was uploaded for Burgernet (upload it with POST "
                      "/v1/dispatch/burgernet/photos and name the digest it answers)",
                      "er is geen foto met deze digest voor Burgernet geüpload (upload hem met POST "
                      "/v1/dispatch/burgernet/photos en noem de digest uit het antwoord)")
    return ActionPhoto(sha256=recorded.sha256, size_bytes=recorded.size_bytes, sha1=recorded.sha1)


# ---- starting, closing, cancelling ----

async def _open_incident(session: AsyncSession, incident_id: str) -> Incident:
    incident = await session.get(Incident, incident_id, with_for_update=True)
    while incident is not None and incident.merged_into is not None:  # merged: the survivor is the incident
        incident = await session.get(Incident, incident.merged_into, with_for_update=True)
    if incident is None:
        raise ServiceError(404, "incident_not_found", "no such incident", detail_nl="dit incident bestaat niet")
    return incident


def _check_times(settings: BridgeSettings, request: ActionRequest, now: datetime) -> datetime:
    """When the action closes by itself; refuses times that make no sense."""
    if request.kind == "witness_call":
        assert request.window_start is not None and request.window_end is not None
        if request.window_end > now:
            raise invalid("window_not_past", "a witness call asks about a window in the past; for now, start an "
                          "action", "een getuigenoproep vraagt naar een periode in het verleden; start voor nu een "
                          "actie")
        if request.window_end - request.window_start > timedelta(days=7):
            raise invalid("window_too_long", "the window may span at most 7 days",
                          "de periode mag hoogstens 7 dagen beslaan")
        longest = timedelta(days=settings.witness_call_max_days)
        default = timedelta(days=7)
    else:
        longest = timedelta(minutes=settings.burgernet_max_minutes)
        default = timedelta(minutes=settings.burgernet_default_minutes)
    duration = timedelta(minutes=request.duration_minutes) if request.duration_minutes else default
    if duration > longest:
        raise invalid("duration_too_long", f"at most {int(longest.total_seconds() // 60)} minutes",
                      f"hoogstens {int(longest.total_seconds() // 60)} minuten")
    return now + duration


async def start_action(runtime: Runtime, actor: Who, request: ActionRequest) -> dict[str, Any]:
    settings: BridgeSettings = runtime.settings
    now = utcnow()
    closes_at = _check_times(settings, request, now)
    async with runtime.db.transaction() as session:
        photo = await _photo(session, request.photo_sha256) if request.photo_sha256 else None
        incident = await _open_incident(session, request.incident_id)
        if request.kind == "action" and not incidents.is_open(incident):
            raise ServiceError(409, "incident_closed", "the incident is closed; a live action needs an open one "
                               "(a witness call may follow a closed incident)",
                               detail_nl="het incident is gesloten; een actie vraagt een open incident (een "
                               "getuigenoproep mag bij een gesloten incident)")
        await serialise(session, "burgernet-numbers")
        number = ((await session.execute(select(func.max(BurgernetAction.number)))).scalar() or 0) + 1
        action_id = str(uuid.uuid4())
        published = PublishedAction(
            action_id=action_id, reference=f"BN-{now.year}-{number:06d}", version=1, kind=request.kind,
            looking_for=request.looking_for, headline_nl=request.headline_nl,
            headline_en=request.headline_en or request.headline_nl, description_nl=request.description_nl,
            description_en=request.description_en or request.description_nl, area=request.area, photo=photo,
            started_at=now, closes_at=closes_at, window_start=request.window_start, window_end=request.window_end,
            status="open")
        action = BurgernetAction(id=action_id, number=number, reference=published.reference, kind=request.kind,
                                 incident_id=incident.id, status="open", document=published.model_dump_json(),
                                 started_by=actor.username, started_at=now, closes_at=closes_at)
        session.add(action)
        audit(session, actor, "burgernet.started", "burgernet", action_id, {
            "reference": published.reference, "kind": request.kind, "incident_id": incident.id,
            "looking_for": request.looking_for, "closes_at": closes_at.isoformat(),
            "photo_sha256": photo.sha256 if photo else None})
        await _publish(session, published)
        what = "witness call" if request.kind == "witness_call" else "action"
        await forwarding.update_incident(session, settings, incident, "burgernet",
                                         f"Burgernet {what} {published.reference} started by {actor.username}: "
                                         f"{request.headline_nl}; open until {closes_at.isoformat()}",
                                         with_summary=False)
        return view(action, published)


async def _publish(session: AsyncSession, published: PublishedAction) -> None:
    """To intake, which serves it to the apps; in version order per action, ahead of ordinary traffic. Only
    what the public may see travels (an ended action without whom it sought); the bridge keeps the whole."""
    await enqueue(session, messaging, BURGERNET_ACTION, published.public(), precedence=Precedence.URGENT,
                  ordering_key=f"burgernet:{published.action_id}")


async def end_action(session: AsyncSession, settings: BridgeSettings, action: BurgernetAction, actor: Who,
                     outcome: str, message_nl: str | None, message_en: str | None,
                     reason: str | None = None) -> PublishedAction:
    """Close or cancel: the closing message is published (always), the meldkamer's incident hears it, and every
    citizen who answered sees on their report's timeline what became of it."""
    standard_nl, standard_en = STANDARD_CLOSING[outcome]
    closing_nl = message_nl or standard_nl
    closing_en = message_en or (message_nl if message_nl and not message_en else standard_en)
    now = utcnow()
    published = PublishedAction.model_validate_json(action.document).model_copy(update={
        "version": action.version + 1, "status": "cancelled" if outcome == "cancelled" else "closed",
        "outcome": outcome, "closing_nl": closing_nl, "closing_en": closing_en, "closed_at": now})
    action.status, action.outcome, action.version = published.status, outcome, published.version
    action.closed_by, action.closed_at, action.document = actor.username, now, published.model_dump_json()
    session.add(action)
    audit(session, actor, f"burgernet.{published.status}", "burgernet", action.id,
          {"reference": action.reference, "outcome": outcome, "reason": reason})
    await _publish(session, published)
    incident = await _open_incident(session, action.incident_id)
    await forwarding.update_incident(session, settings, incident, "burgernet",
                                     f"Burgernet {action.reference} {published.status} ({outcome}): {closing_nl}",
                                     with_summary=False)
    answers = (await session.execute(select(BridgeReport).where(BridgeReport.appeal_id == action.id))).scalars()
    for stored in answers:
        if stored.state != ReportState.WITHDRAWN:
            await forwarding.tell_citizen(session, stored.report_id, "appeal_closed", texts=(
                f"The Burgernet action you answered has ended: {closing_en}",
                f"De Burgernet-actie waarop u reageerde is beëindigd: {closing_nl}"))
    return published


async def _locked_action(session: AsyncSession, action_id: str) -> BurgernetAction:
    action = await session.get(BurgernetAction, action_id[:36], with_for_update=True)
    if action is None:
        raise not_found()
    return action


async def close_action(runtime: Runtime, actor: Who, action_id: str, closing: Closing) -> dict[str, Any]:
    if closing.outcome in ("expired", "cancelled"):
        raise invalid("invalid_outcome", "close with found, arrested or called_off (a supervisor cancels)",
                      "sluit af met found, arrested of called_off (intrekken doet een leidinggevende)")
    async with runtime.db.transaction() as session:
        action = await _locked_action(session, action_id)
        if action.status != "open":
            raise already_ended(action)
        published = await end_action(session, runtime.settings, action, actor, closing.outcome,
                                     closing.message_nl, closing.message_en)
        return view(action, published)


async def cancel_action(runtime: Runtime, actor: Who, action_id: str, cancellation: Cancellation) -> dict[str, Any]:
    async with runtime.db.transaction() as session:
        action = await _locked_action(session, action_id)
        if action.status != "open":
            raise already_ended(action)
        published = await end_action(session, runtime.settings, action, actor, "cancelled",
                                     cancellation.message_nl, cancellation.message_en, reason=cancellation.reason)
        return view(action, published)


class BurgernetDeadlines(BackgroundLoop):
    """Every action ends with a closing message, also when its dispatcher forgets: past its closing time it is
    closed with the standard text. A loop over the table, so a restart loses no deadline."""

    name = "burgernet-deadlines"

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self.runtime = runtime
        self.poll_seconds = runtime.settings.burgernet_deadline_poll_seconds

    async def run_once(self) -> int:
        async with self.runtime.db.transaction() as session:
            query = select(BurgernetAction).where(BurgernetAction.status == "open",
                                                  col(BurgernetAction.closes_at) <= utcnow()).limit(20)
            if not self.runtime.db.is_sqlite:
                query = query.with_for_update(skip_locked=True)
            due = (await session.execute(query)).scalars().all()
            for action in due:
                await end_action(session, self.runtime.settings, action, BRIDGE, "expired", None, None,
                                 reason="its closing time passed")
        return len(due)


async def from_meldkamer(runtime: Runtime, appeal: MeldkamerAppeal, webhook_id: str) -> dict[str, Any]:
    """The meldkamer's script starts an action around the incident's place (once per webhook id)."""
    async with runtime.db.transaction() as session:
        if not await first_delivery(session, messaging, message=BURGERNET_REQUEST, message_id=webhook_id,
                                    source="meldkamer"):
            return {"status": "duplicate"}
        incident = await _open_incident(session, appeal.requestId)
        if incident.lat is None or incident.lon is None:
            raise ServiceError(409, "incident_without_place", "the incident has no place to draw an area around",
                               detail_nl="het incident heeft geen plaats om een gebied omheen te trekken")
    headline_nl, headline_en = HEADLINES[appeal.lookingFor]
    lat, lon = burgernet.proposed_centre(incident.lat, incident.lon)  # not a lone witness's exact place
    request = ActionRequest(incident_id=incident.id, looking_for=appeal.lookingFor, headline_nl=headline_nl,
                            headline_en=headline_en, description_nl=appeal.description,
                            area=Area(circle=Circle(lat=lat, lon=lon, radius_m=appeal.radiusMeters)),
                            duration_minutes=appeal.minutes)
    return {"status": "started", **await start_action(runtime, MeldkamerActor(), request)}


class MeldkamerActor:
    username = "meldkamer"
    role = "meldkamer"


# ---- answers: sightings and witnesses' accounts ----

def answer_note(action: BurgernetAction, stored: BridgeReport, report: ReportSubmitted,
                result: VerificationCompleted | None) -> str:
    what = "Witness account" if action.kind == "witness_call" else "SIGHTING"
    seen = report.observed_at.isoformat()
    where = report.location.description or f"{report.location.lat:.5f},{report.location.lon:.5f}"
    text = f"{what} for Burgernet {action.reference} ({stored.reference}), seen {seen} at {where}: " \
           f"{report.description}"
    if result is not None and result.appeal_match is not None:
        text += f" [{match_text(result)}]"
    return text


def match_text(result: VerificationCompleted) -> str:
    """What verification found about the answer's time and place against the action's, in a line."""
    reasons = "; ".join(r.detail_en for r in result.reasons if r.code.startswith("appeal_"))
    return f"{result.appeal_match}: {reasons}" if reasons else str(result.appeal_match)


async def attach_answer(session: AsyncSession, settings: BridgeSettings, stored: BridgeReport,
                        report: ReportSubmitted, result: VerificationCompleted | None = None) -> Incident | None:
    """An answer to an action updates the action's incident: a sighting of a live search at once and urgent,
    a witness's account as ordinary news. None when its action is unknown here (then it is an ordinary report)."""
    assert report.appeal is not None
    action = await session.get(BurgernetAction, report.appeal.action_id, with_for_update=True)
    if action is None:
        log.error("an answer to an unknown Burgernet action", extra={"report_id": stored.report_id})
        return None
    incident = await _open_incident(session, action.incident_id)
    stored.incident_id, stored.state = incident.id, REPORT_STATES.move(stored.state, ReportState.FORWARDED)
    session.add(stored)
    if action.first_sighting_at is None:
        action.first_sighting_at = stored.received_at
        session.add(action)
    audit(session, BRIDGE, "report.sent_to_meldkamer", "report", stored.report_id,
          {"incident_id": incident.id, "as": "burgernet_answer", "action": action.reference,
           "urgent": report.urgent}, report_id=stored.report_id)
    await holds.extend_hold(session, incident.id, stored.report_id)
    await forwarding.update_incident(session, settings, incident, "sighting",
                                     answer_note(action, stored, report, result),
                                     forwarding.media_for(settings, report, report.photos, incident.id),
                                     urgent=report.urgent)
    await forwarding.tell_joined(session, stored, report, incident)
    return incident


# ---- what the police see ----

def view(action: BurgernetAction, published: PublishedAction | None = None) -> dict[str, Any]:
    published = published or PublishedAction.model_validate_json(action.document)
    return {**published.model_dump(mode="json"), "incident_id": action.incident_id,
            "started_by": action.started_by, "closed_by": action.closed_by}


async def figures(runtime: Runtime, session: AsyncSession, action: BurgernetAction) -> dict[str, Any]:
    """Per action: how many installations fetched it (intake counts their receipts), how many answered, the
    time to the first sighting, and the outcome."""
    answers = (await session.execute(select(BridgeReport).where(BridgeReport.appeal_id == action.id))).scalars().all()
    fetched: int | None = None
    try:
        reach = await peers.call_service(runtime, "report-intake", "GET",
                                           f"/internal/v1/burgernet/actions/{action.id}/reach")
        fetched = int(reach.json()["installations"])
    except (httpx.HTTPError, ValueError, KeyError):
        pass  # shown as null, with the reason, not as a guess
    first = (action.first_sighting_at - action.started_at).total_seconds() if action.first_sighting_at else None
    return {"fetched_by_installations": fetched, "fetched_unavailable": fetched is None,
            "answers": len(answers), "answering_installations": incidents.witnesses(list(answers)),
            "seconds_to_first_answer": first, "outcome": action.outcome}


async def get_action(runtime: Runtime, actor: Who, action_id: str) -> dict[str, Any]:
    async with runtime.db.transaction() as session:
        action = await session.get(BurgernetAction, action_id[:36])
        if action is None:
            raise not_found()
        audit(session, actor, "burgernet.viewed", "burgernet", action.id)
        answers = (await session.execute(select(BridgeReport.report_id, BridgeReport.reference)
                                         .where(BridgeReport.appeal_id == action.id)
                                         .order_by(col(BridgeReport.received_at)))).all()
        return {**view(action), "figures": await figures(runtime, session, action),
                "answers": [{"report_id": r, "reference": ref} for r, ref in answers]}


async def list_actions(runtime: Runtime, status: str | None, limit: int) -> list[dict[str, Any]]:
    async with runtime.db.sessions() as session:
        query = select(BurgernetAction).order_by(col(BurgernetAction.number).desc()).limit(limit)
        if status:
            query = query.where(BurgernetAction.status == status)
        actions = (await session.execute(query)).scalars().all()
        return [{**view(a), "figures": await figures(runtime, session, a)} for a in actions]
