"""The simulated dispatcher: takes requests for service, plays its script, fetches and checks photos."""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from burgermelding_shared import eido as eido_rules
from burgermelding_shared.app import Runtime
from burgermelding_shared.background import BackgroundLoop
from burgermelding_shared.catalogue import BURGERNET_REQUEST, INCIDENT_EVENT
from burgermelding_shared.contracts import (
    EventSummary,
    IncidentEvent,
    IncidentStatus,
    IncidentUpdate,
    MeldkamerAppeal,
    RequestForService,
    RequestResponse,
)
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.messaging import Outcome, cancel_pending, enqueue
from burgermelding_shared.timeutil import utcnow
from meldkamer_sim.config import ASK_STEP, BURGERNET_STEP, MeldkamerSettings, is_status
from meldkamer_sim.faults import FaultState
from meldkamer_sim.models import SimIncident, SimIncidentUpdate, messaging

DEFAULT_CALLBACK_PATH = "/v1/meldkamer/callbacks"

# A status set here, not by the script (cancelled by the bridge, closed by a merge), is final: a script callback
# confirmed after it must not write over it.
FINAL_SEQUENCE = 2**31 - 1


def _component(eido: dict[str, Any], name: str) -> dict[str, Any]:
    items = eido.get(name) or [{}]
    if isinstance(items, dict):  # incidentComponent: one object
        return items
    return items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else {}


def check_eido(document: dict[str, Any]) -> None:
    """Refuse a document that breaks NENA-STA-021's rules, as a strict control-room system does."""
    found = eido_rules.problems(document)
    if found:
        listed = "; ".join(found[:10]) + (f"; and {len(found) - 10} more" if len(found) > 10 else "")
        raise ServiceError(
            400,
            "invalid_eido",
            f"the EIDO breaks NENA-STA-021: {listed}",
            detail_nl=f"het EIDO-document voldoet niet aan NENA-STA-021: {listed}",
        )


def callback_path(eido: dict[str, Any]) -> str:
    """Only the path of the EIDO callback URI is used: the host is configured, so a request cannot make the
    meldkamer call an arbitrary address. The first web address is ours (the others reach the citizen directly,
    when they consented: tel:, mailto:)."""
    uris = _component(eido, "callbackComponent").get("callBackInformationUri") or []
    web = [uri for uri in uris if isinstance(uri, str) and uri.startswith(("http://", "https://"))]
    path = urlsplit(web[0]).path if web else ""
    return path if path.startswith("/v1/") else DEFAULT_CALLBACK_PATH


def notes_text(eido: dict[str, Any]) -> str | None:
    """The notes of a document as plain text (EIDO notes are HTML)."""
    notes = [html.unescape(n["notesActionComments"]) for n in eido.get("notesComponent") or []]
    return "\n".join(notes) or None


def request_id_of(tracking_id: str) -> str:
    """The requestId in an incident tracking identifier (`urn:emergency:uid:incidentid:<id>:<agency>`): the
    bridge uses the one for the other."""
    parts = tracking_id.split(":")
    return parts[4] if len(parts) >= 6 and parts[:4] == ["urn", "emergency", "uid", "incidentid"] else ""


def _response(incident: SimIncident, text: str) -> RequestResponse:
    return RequestResponse(
        requestId=incident.request_id, responseCode=200, responseText=text, incidentId=incident.incident_id
    )


async def accept_request(runtime: Runtime, request: RequestForService) -> RequestResponse:
    """The same requestId always yields the same incident, never a second one."""
    settings: MeldkamerSettings = runtime.settings
    check_eido(request.eido)
    incident_component = _component(request.eido, "incidentComponent")
    if not incident_component:
        raise ServiceError(
            400,
            "invalid_eido",
            "a request for service needs its incidentComponent",
            detail_nl="een hulpaanvraag heeft een incidentComponent nodig",
        )
    try:
        async with runtime.db.transaction() as session:
            existing = await _by_request(session, request.requestId)
            if existing is not None:
                return _response(existing, "accepted (already known)")
            now = utcnow()
            has_photos = bool(request.eido.get("mediaComponent"))
            incident = SimIncident(
                incident_id="pending",
                request_id=request.requestId,
                incident_type=str(incident_component["incidentTypeCommonRegistryText"])[:40],
                priority_number=int(incident_component.get("incidentCommonPriorityNumber") or 0),
                status="Received",
                eido=json.dumps(request.eido),
                received_at=now,
                updated_at=now,
                photos_state="pending" if has_photos and settings.fetch_photos else "none",
            )
            keep_summary(incident, request.eventSummary)
            session.add(incident)
            await session.flush()
            incident.incident_id = f"MK-{now.year}-{incident.number:06d}"
            await schedule_script(
                session, settings, incident, callback_path(request.eido), runtime.extras.get("faults")
            )
        if incident.photos_state == "pending":
            runtime.extras["photo_checker"].wake()
        return _response(incident, "accepted")
    except IntegrityError:
        # A concurrent delivery of the same requestId won the race: answer with its incident.
        async with runtime.db.sessions() as session:
            existing = await _by_request(session, request.requestId)
        if existing is None:
            raise
        return _response(existing, "accepted (already known)")


async def schedule_script(
    session: AsyncSession,
    settings: MeldkamerSettings,
    incident: SimIncident,
    path: str,
    faults: FaultState | None = None,
) -> None:
    """The dispatcher's script as callbacks due at their moments (the outbox holds them until then). With
    faults, callbacks may be sent twice (with another webhook id) or late enough to overtake each other."""
    status = IncidentStatus.ACTIVE
    for sequence, (action, delay) in enumerate(settings.script):
        if action.startswith(BURGERNET_STEP):
            await _schedule_burgernet(session, incident, sequence, action, delay)
            continue
        question = action[len(ASK_STEP) :] if action.startswith(ASK_STEP) else None
        if is_status(action):  # a question keeps the status (the settings allow no other steps)
            status = IncidentStatus(action)
        event = IncidentEvent(
            transactionId=f"{incident.incident_id}-{sequence}",
            requestId=incident.request_id,
            incidentId=incident.incident_id,
            status=status,
            sequence=sequence,
            lastUpdateTimeStamp=incident.received_at + timedelta(seconds=delay),
            notesText=question,
            questionId=f"q-{incident.incident_id}-{sequence}" if question else None,
        )
        copies = 2 if faults and faults.duplicate_callback() else 1
        for copy in range(copies):
            jitter = faults.callback_delay() if faults else 0.0
            await enqueue(
                session,
                messaging,
                INCIDENT_EVENT,
                event,
                path=path,
                not_before=incident.received_at + timedelta(seconds=delay + jitter),
                message_id=event.transactionId + ("-dup" if copy else ""),
            )


async def end_incident(runtime: Runtime, incident_id: str, status: IncidentStatus) -> SimIncident:
    """A meldkamer operator ends an incident now, closed or cancelled, whatever its script still has to say: a
    signed callback due at once, and the script's steps still waiting called off."""
    async with runtime.db.transaction() as session:
        incident = (
            await session.execute(select(SimIncident).where(col(SimIncident.incident_id) == incident_id))
        ).scalar_one_or_none()
        if incident is None:
            raise ServiceError(404, "incident_not_found", "no such incident", detail_nl="zo'n incident bestaat niet")
        await cancel_pending(session, messaging, script_message_ids(incident))
        # Final, here and at the bridge: its sequence is above every script step's, so none still on its way
        # (a question, a later "Closed") sets an older status over it.
        incident.status, incident.status_sequence = status.value, FINAL_SEQUENCE
        event = IncidentEvent(
            transactionId=f"{incident.incident_id}-operator",
            requestId=incident.request_id,
            incidentId=incident.incident_id,
            status=status,
            sequence=FINAL_SEQUENCE,
            lastUpdateTimeStamp=utcnow(),
        )
        await enqueue(
            session,
            messaging,
            INCIDENT_EVENT,
            event,
            path=callback_path(json.loads(incident.eido)),
            message_id=event.transactionId,
        )
    return incident


async def _schedule_burgernet(
    session: AsyncSession, incident: SimIncident, sequence: int, step: str, delay: float
) -> None:
    """A script step `burgernet:<looking for>:<radius m>:<minutes>:<description>`: the dispatcher starts a
    Burgernet action around the incident's place, as a signed request to the bridge."""
    looking_for, radius, minutes, description = step[len(BURGERNET_STEP) :].split(":", 3)
    transaction_id = f"{incident.incident_id}-bn-{sequence}"
    appeal = MeldkamerAppeal.model_validate(  # the script's step was checked against this model at start
        {
            "transactionId": transaction_id,
            "requestId": incident.request_id,
            "lookingFor": looking_for,
            "description": description,
            "radiusMeters": float(radius),
            "minutes": int(minutes),
        }
    )
    await enqueue(
        session,
        messaging,
        BURGERNET_REQUEST,
        appeal,
        message_id=transaction_id,
        not_before=incident.received_at + timedelta(seconds=delay),
    )


async def apply_update(runtime: Runtime, request_id: str, update: IncidentUpdate) -> dict[str, str]:
    """News on an incident, applied once per updateId. Unknown incident: 409, the bridge asks again later
    (an update can overtake the request it belongs to)."""
    if update.requestId != request_id:
        raise ServiceError(
            400,
            "request_id_mismatch",
            "the body's requestId differs from the path's",
            detail_nl="de requestId in de inhoud verschilt van die in het pad",
        )
    check_eido(update.eido)
    if request_id_of(str(update.eido["$id"])) != request_id:
        raise ServiceError(
            400,
            "invalid_eido",
            "the update's EIDO is about another incident (its $id)",
            detail_nl="het EIDO-document van de update gaat over een ander incident (zijn $id)",
        )
    async with runtime.db.transaction() as session:
        incident = await _by_request(session, request_id)
        if incident is None:
            raise ServiceError(
                409,
                "incident_not_yet_known",
                "no incident for this requestId yet",
                detail_nl="nog geen incident bij deze requestId",
                headers={"Retry-After": "1"},
            )
        if await session.get(SimIncidentUpdate, update.updateId) is not None:
            return {"status": "duplicate", "incidentId": incident.incident_id}
        session.add(
            SimIncidentUpdate(
                update_id=update.updateId,
                incident_id=incident.incident_id,
                kind=update.kind,
                notes=notes_text(update.eido),
                media=json.dumps(update.eido.get("mediaComponent") or []),
                urgent=update.urgent,
                received_at=utcnow(),
            )
        )
        if update.kind == "withdrawn" and (update.eventSummary is None or update.eventSummary.reportCount == 0):
            # Its only report was withdrawn (with witnesses left, it goes on): the dispatcher stops.
            incident.status, incident.status_sequence = "Cancelled", FINAL_SEQUENCE
            await cancel_pending(session, messaging, script_message_ids(incident))
        keep_summary(incident, update.eventSummary)
        for merge in update.eido.get("mergeComponent") or []:
            await record_merge(session, incident, merge)
        incident.updated_at = utcnow()
        session.add(incident)
    return {"status": "applied", "incidentId": incident.incident_id}


def keep_summary(incident: SimIncident, summary: EventSummary | None) -> None:
    """Keep the newest picture of the event, whatever order the updates came in."""
    if summary is not None and summary.version > incident.summary_version:
        incident.event_summary, incident.summary_version = summary.model_dump_json(), summary.version


async def record_merge(session: AsyncSession, incident: SimIncident, merge: dict[str, Any]) -> None:
    """An EIDO MergeInformationType: REPLACED means this incident was taken into the other one, as a
    dispatcher merges two GMS incidents; its own script stops (the other incident carries on)."""
    if merge.get("incidentMergeDirectionCode") != "REPLACED":
        return  # REPLACING: the other incident's own update records the merge
    survivor = await _by_request(session, request_id_of(merge["incidentTrackingIdentifier"]))
    if survivor is None:
        raise ServiceError(
            409,
            "incident_not_yet_known",
            "the incident merged into is not known yet",
            detail_nl="het incident waarin is samengevoegd is nog niet bekend",
            headers={"Retry-After": "1"},
        )
    incident.merged_into, incident.status = survivor.incident_id, "Closed"
    incident.status_sequence = FINAL_SEQUENCE
    await cancel_pending(session, messaging, script_message_ids(incident))


def script_message_ids(incident: SimIncident) -> list[str]:
    ids = [f"{incident.incident_id}-{sequence}" for sequence in range(64)]
    return ids + [f"{i}-dup" for i in ids]


async def _by_request(session: AsyncSession, request_id: str) -> SimIncident | None:
    return (await session.execute(select(SimIncident).where(SimIncident.request_id == request_id))).scalars().first()


async def on_callback_delivered(session: AsyncSession, row: Mapping[str, Any], outcome: Outcome) -> None:
    """The bridge has the status change: the incident now has that status here too."""
    if not outcome.delivered:
        return
    event = json.loads(row["payload"])
    # One conditional UPDATE, not read-then-write: two callbacks confirmed at the same moment must not let the
    # older one's status be written last.
    await session.execute(
        update(SimIncident)
        .where(
            col(SimIncident.incident_id) == event["incidentId"],
            col(SimIncident.status_sequence) < event["sequence"],
        )
        .values(status=event["status"], status_sequence=event["sequence"], updated_at=utcnow())
    )


async def list_incidents(runtime: Runtime, limit: int, offset: int = 0) -> list[dict[str, Any]]:
    async with runtime.db.sessions() as session:
        rows = (
            (
                await session.execute(
                    select(SimIncident).order_by(col(SimIncident.number).desc()).offset(offset).limit(limit)
                )
            )
            .scalars()
            .all()
        )
        updates: dict[str, list[SimIncidentUpdate]] = {}
        for update in (
            await session.execute(
                select(SimIncidentUpdate)
                .where(col(SimIncidentUpdate.incident_id).in_([r.incident_id for r in rows]))
                .order_by(col(SimIncidentUpdate.received_at))
            )
        ).scalars():
            updates.setdefault(update.incident_id, []).append(update)
    return [
        {
            "incidentId": r.incident_id,
            "requestId": r.request_id,
            "incidentType": r.incident_type,
            "priorityNumber": r.priority_number,
            "status": r.status,
            "receivedAt": r.received_at,
            "photos": r.photos_state,
            "photosDetail": r.photos_detail,
            "mergedInto": r.merged_into,
            "description": notes_text({"notesComponent": json.loads(r.eido).get("notesComponent", [])[:1]}),
            "eventSummary": json.loads(r.event_summary) if r.event_summary else None,
            "updates": [
                {
                    "kind": u.kind,
                    "notes": u.notes,
                    "media": len(json.loads(u.media or "[]")),
                    "urgent": u.urgent,
                    "receivedAt": u.received_at,
                }
                for u in updates.get(r.incident_id, [])
            ],
        }
        for r in rows
    ]


class PhotoChecker(BackgroundLoop):
    """Fetches every photo of new incidents by its signed URL and checks the SHA-256 it was announced with."""

    name = "photo-checker"

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self.runtime = runtime

    async def run_once(self) -> int:
        async with self.runtime.db.sessions() as session:
            incident = (
                (await session.execute(select(SimIncident).where(SimIncident.photos_state == "pending").limit(1)))
                .scalars()
                .first()
            )
        if incident is None:
            return 0
        media = json.loads(incident.eido).get("mediaComponent") or []
        problems = []
        for item in media:
            try:
                response = await self.runtime.http.get(item["uri"], timeout=10)
                if response.status_code != 200:
                    problems.append(f"{item.get('$id')}: HTTP {response.status_code}")
                elif hashlib.sha256(response.content).hexdigest() != item.get("digestSha256"):
                    problems.append(f"{item.get('$id')}: digest mismatch")
            except Exception as exc:  # a photo we cannot fetch is a finding, not a crash
                problems.append(f"{item.get('$id')}: {type(exc).__name__}")
        async with self.runtime.db.transaction() as session:
            stored = await session.get(SimIncident, incident.number)
            if stored is not None:
                stored.photos_state = "failed" if problems else "verified"
                stored.photos_detail = "; ".join(problems)[:500] or f"{len(media)} photo(s) match their digests"
                session.add(stored)
        return 1
