"""The dispatcher's desk: what the dispatchers' API shows and does. Every view of a report or photo, and every
action, is written to the audit log before anything is returned (no audit, no data)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from burgermelding_shared import auditchain
from burgermelding_shared.app import Runtime
from burgermelding_shared.blobstore import BlobNotFound
from burgermelding_shared.catalogue import REQUEST_FOR_SERVICE
from burgermelding_shared.contracts import ReportSubmitted
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.messaging import DEAD, outbox_counts, replay_dead_letter
from burgermelding_shared.timeutil import utcnow
from burgermelding_shared.urgency import MeldkamerPriority
from dispatch_bridge import forwarding, holds, incidents, peers
from dispatch_bridge.audit import audit
from dispatch_bridge.auth import Actor
from dispatch_bridge.models import BridgeMessage, BridgeReport, Incident, messaging
from dispatch_bridge.models import audit as audit_tables
from dispatch_bridge.states import CLOSED_STATUSES, DELIVERY_STATES, REPORT_STATES, DeliveryState, ReportState
from dispatch_bridge.texts import state_nl


def report_summary(stored: BridgeReport) -> dict[str, Any]:
    verification = json.loads(stored.verification) if stored.verification else None
    return {
        "report_id": stored.report_id, "reference": stored.reference, "category": stored.category,
        "in_progress": stored.in_progress, "danger_to_life": stored.danger_to_life, "state": stored.state,
        "received_at": stored.received_at, "incident_id": stored.incident_id,
        "burgernet_action_id": stored.appeal_id,
        "verification": None if verification is None else {
            "verdict": verification["verdict"], "score": verification["score"],
            "reasons": sorted({r["code"] for r in verification["reasons"]}),
            "duplicate_of_reports": verification.get("duplicate_of_reports", []),
            "near_duplicate_of_reports": verification.get("near_duplicate_of_reports", []),
            "group_id": verification.get("group_id"),
            "group_reports": verification.get("group_reports", []),
            # An answer to a Burgernet action: do its time and place (the photos' own first) fit the asked ones?
            "appeal_match": verification.get("appeal_match")},
    }


def incident_summary(incident: Incident, reports: list[BridgeReport], merged_from: list[str]) -> dict[str, Any]:
    """One incident as the dispatcher sees it: all its reports (those of incidents merged into it too) and
    the event they describe together."""
    event = incidents.describe(incident, reports, incident.summary_version).model_dump(mode="json") \
        if reports else None
    return {
        "incident_id": incident.id, "meldkamer_incident_id": incident.meldkamer_incident_id,
        "category": incident.category, "priority": incident.priority, "urgent": incident.urgent,
        "delivery_state": incident.delivery_state,
        "delivery_cause": incident.delivery_cause, "operational_status": incident.operational_status,
        "created_at": incident.created_at, "updated_at": incident.updated_at,
        "merged_into": incident.merged_into, "merged_from": merged_from, "split_from": incident.split_from,
        "event": event,
        "reports": [{"report_id": r.report_id, "reference": r.reference, "state": r.state,
                     "verdict": r.verdict} for r in reports],
    }


@dataclass(frozen=True)
class IncidentFilter:
    delivery_state: DeliveryState | None = None
    priority: MeldkamerPriority | None = None
    category: str | None = None
    include_merged: bool = False  # incidents merged into another are shown there, with all their reports


@dataclass(frozen=True)
class ReportFilter:
    state: ReportState | None = None
    verdict: str | None = None
    category: str | None = None
    in_progress: bool | None = None
    group_id: str | None = None


def audit_listing(session: AsyncSession, actor: Actor, what: str,
                  filters: IncidentFilter | ReportFilter | dict[str, object], ids: list[str]) -> None:
    """A list shows reports too: who saw which, under what filter (its values as they were asked for)."""
    shown = ", ".join(ids[:50]) + (f" and {len(ids) - 50} more" if len(ids) > 50 else "")
    if isinstance(filters, dict):
        asked = str(filters)
    else:
        values = ", ".join(f"{f.name}={_plain(getattr(filters, f.name))!r}" for f in fields(filters))
        asked = f"{type(filters).__name__}({values})"
    audit(session, actor, f"list_{what}", what, "*", f"filter {asked}; shown: {shown or 'none'}"[:2000])


def _plain(value: object) -> object:
    return value.value if isinstance(value, Enum) else value


async def list_incidents(runtime: Runtime, actor: Actor, filters: IncidentFilter, limit: int
                         ) -> list[dict[str, Any]]:
    async with runtime.db.transaction() as session:
        query = select(Incident).order_by(col(Incident.priority), col(Incident.created_at).desc()).limit(limit)
        if filters.delivery_state:
            query = query.where(Incident.delivery_state == filters.delivery_state)
        if filters.priority:
            query = query.where(Incident.priority == filters.priority)
        if filters.category:
            query = query.where(Incident.category == filters.category)
        if not filters.include_merged:
            query = query.where(col(Incident.merged_into).is_(None))
        shown = (await session.execute(query)).scalars().all()
        summaries = await incident_summaries(session, shown)
        audit_listing(session, actor, "incidents", filters, [i.id for i in shown])
    return summaries


async def incident_summaries(session: AsyncSession, shown: Sequence[Incident]) -> list[dict[str, Any]]:
    """`incident_summary` of each of these incidents, in their order, with their reports and merged ones."""
    ids = [i.id for i in shown]
    reports = (await session.execute(select(BridgeReport).where(col(BridgeReport.incident_id).in_(ids))
                                     .order_by(col(BridgeReport.received_at)))).scalars().all()
    merged = (await session.execute(select(Incident.id, col(Incident.merged_into))
                                    .where(col(Incident.merged_into).in_(ids)))).all()
    by_incident: dict[str, list[BridgeReport]] = {}
    for report in reports:
        by_incident.setdefault(report.incident_id or "", []).append(report)
    merged_from: dict[str, list[str]] = {}
    for absorbed, survivor in merged:
        if survivor is not None:  # it is: the query asked for the merged ones
            merged_from.setdefault(survivor, []).append(absorbed)
    return [incident_summary(i, by_incident.get(i.id, []), sorted(merged_from.get(i.id, []))) for i in shown]


async def list_reports(runtime: Runtime, actor: Actor, filters: ReportFilter, limit: int) -> list[dict[str, Any]]:
    async with runtime.db.transaction() as session:
        query = select(BridgeReport).order_by(col(BridgeReport.received_at).desc())
        for column, value in ((BridgeReport.state, filters.state), (BridgeReport.verdict, filters.verdict),
                              (BridgeReport.category, filters.category),
                              (BridgeReport.in_progress, filters.in_progress),
                              (BridgeReport.group_id, filters.group_id)):
            if value is not None:
                query = query.where(column == value)
        stored = list((await session.execute(query.limit(limit))).scalars())
        incidents = {i.id: i for i in (await session.execute(select(Incident).where(
            col(Incident.id).in_([r.incident_id for r in stored if r.incident_id])))).scalars()}
        audit_listing(session, actor, "reports", filters, [r.report_id for r in stored])
    return [{**report_summary(r), "delivery_state": incidents[r.incident_id].delivery_state
             if r.incident_id in incidents else None} for r in stored]


async def _report(session: AsyncSession, report_id: str, lock: bool = False) -> BridgeReport:
    stored = await session.get(BridgeReport, report_id[:36], with_for_update=lock)
    if stored is None:
        raise ServiceError(404, "report_not_found", "no such report", detail_nl="deze melding bestaat niet")
    return stored


async def view_report(runtime: Runtime, actor: Actor, report_id: str) -> dict[str, Any]:
    async with runtime.db.transaction() as session:
        stored = await _report(session, report_id)
        audit(session, actor, "view_report", "report", stored.report_id, report_id=stored.report_id)
        messages = (await session.execute(select(BridgeMessage).where(BridgeMessage.report_id == stored.report_id)
                                          .order_by(col(BridgeMessage.sent_at)))).scalars().all()
    submission = ReportSubmitted.model_validate_json(stored.submission)
    return {
        **report_summary(stored),
        "description": submission.description, "location": submission.location.model_dump(),
        "observed_at": submission.observed_at,
        "photos": [{"photo_id": p.photo_id, "content_type": p.content_type, "width": p.width, "height": p.height,
                    "sha256": p.sha256} for p in submission.photos],
        "contact": submission.contact.model_dump() if submission.contact else None,
        "verification_detail": json.loads(stored.verification) if stored.verification else None,
        "messages": [{"id": m.id, "direction": m.direction, "text": m.text, "author": m.author,
                      "in_reply_to": m.in_reply_to, "sent_at": m.sent_at} for m in messages],
    }


async def photo(runtime: Runtime, actor: Actor, report_id: str, photo_id: str, original: bool) -> tuple[bytes, str]:
    """The sanitised display copy; the original (evidence) only for supervisors, and only if it is intact."""
    if original and actor.role != "supervisor":
        raise ServiceError(403, "forbidden", "only a supervisor may see the original photo",
                           detail_nl="alleen een supervisor mag de originele foto zien")
    async with runtime.db.transaction() as session:
        stored = await _report(session, report_id)
        ref = next((p for p in ReportSubmitted.model_validate_json(stored.submission).photos
                    if p.photo_id == photo_id), None)
        if ref is None:
            raise ServiceError(404, "photo_not_found", "no such photo on this report",
                               detail_nl="deze melding heeft geen foto met dit nummer")
        audit(session, actor, "view_photo_original" if original else "view_photo", "photo", ref.photo_id,
              {"sha256": ref.sha256 if original else ref.sanitised_sha256, "copy": "original" if original
               else "sanitised"}, report_id=stored.report_id)
    try:
        if original:
            return await asyncio.to_thread(runtime.blobs.read_verified, ref.sha256), ref.content_type
        if ref.sanitised_sha256 is None and ref.display == "pending":
            raise ServiceError(409, "photo_display_pending", "the display copy of this photo is being made: "
                               "ask again in a few seconds", headers={"Retry-After": "2"},
                               detail_nl="De weergavekopie van deze foto wordt gemaakt: probeer het over "
                               "enkele seconden opnieuw")
        if ref.sanitised_sha256 is None:
            raise ServiceError(404, "photo_unreadable", "this photo does not decode, so it has no display copy (a "
                               "supervisor can fetch the original as it arrived)",
                               detail_nl="Deze foto is niet leesbaar en heeft dus geen weergavekopie (een "
                               "supervisor kan het origineel opvragen zoals het binnenkwam)")
        return await asyncio.to_thread(runtime.blobs.read_verified, ref.sanitised_sha256), "image/jpeg"
    except (BlobNotFound, ValueError) as exc:
        raise ServiceError(404, "photo_not_found", "the stored photo is missing or damaged",
                           detail_nl="de opgeslagen foto ontbreekt of is beschadigd") from exc


async def ask(runtime: Runtime, actor: Actor, report_id: str, text: str) -> dict[str, Any]:
    async with runtime.db.transaction() as session:
        stored = await _report(session, report_id, lock=True)
        if stored.state in (ReportState.WITHDRAWN, ReportState.REJECTED):
            raise ServiceError(409, "report_closed", f"the report is {stored.state}",
                               detail_nl=f"de melding is {state_nl(stored.state)}")
        question = await forwarding.ask_citizen(session, stored.report_id, text, actor.username)
        # The question's id, not its words: the chain keeps nothing that retention would have to remove.
        audit(session, actor, "ask_citizen", "report", stored.report_id, {"message_id": question.id},
              report_id=stored.report_id)
    return {"id": question.id, "text": question.text, "sent_at": question.sent_at}


async def decide_review(runtime: Runtime, actor: Actor, report_id: str, forward: bool) -> dict[str, Any]:
    """A human decision on a report that verification held for review."""
    async with runtime.db.transaction() as session:
        if forward:
            await incidents.decide_one_at_a_time(session)  # it may join an incident: first, before row locks
        stored = await _report(session, report_id, lock=True)
        if stored.state != ReportState.HELD_FOR_REVIEW:
            raise ServiceError(409, "not_held_for_review", f"the report is {stored.state}, not held for review",
                               detail_nl=f"de melding is {state_nl(stored.state)} en wacht niet op beoordeling")
        if forward:
            await forwarding.dispatch(session, runtime.settings, stored,
                                      ReportSubmitted.model_validate_json(stored.submission))
        else:
            stored.state = REPORT_STATES.move(stored.state, ReportState.REJECTED)
            session.add(stored)
            await forwarding.tell_citizen(session, stored.report_id, "rejected")
        audit(session, actor, "review_forward" if forward else "review_reject", "report", stored.report_id,
              report_id=stored.report_id)
    return report_summary(stored)


def _not_open_because(incident: Incident) -> tuple[str, str]:
    """Why an incident cannot take part in a merge (English, Dutch)."""
    if incident.merged_into is not None:
        return f"merged into {incident.merged_into}", f"samengevoegd met {incident.merged_into}"
    if incident.operational_status in CLOSED_STATUSES:
        return f"{incident.operational_status.lower()} by the meldkamer", \
            f"{'afgesloten' if incident.operational_status == 'Closed' else 'geannuleerd'} door de meldkamer"
    return f"not delivered ({incident.delivery_state})", f"niet afgeleverd ({state_nl(incident.delivery_state)})"


async def merge_incidents(runtime: Runtime, actor: Actor, incident_id: str, other_ids: list[str]) -> dict[str, Any]:
    """A dispatcher says these incidents are one event: the open ones become one, as when verification finds
    it (`forwarding.merge_incidents`: the accepted one, else the oldest, goes on; the meldkamer and the
    citizens are told), also when a dispatcher split one off another before. Returns the survivor."""
    ids = list(dict.fromkeys(i[:36] for i in (incident_id, *other_ids)))
    async with runtime.db.transaction() as session:
        await incidents.decide_one_at_a_time(session)  # before any row lock, as every merge
        given = {}
        for one in sorted(ids):  # the same order of row locks as forwarding.merge_incidents
            found = await session.get(Incident, one, with_for_update=True)
            if found is not None:
                given[one] = found
        unknown = [i for i in ids if i not in given]
        if unknown:
            raise ServiceError(404, "incident_not_found", f"no such incident: {', '.join(unknown)}",
                               detail_nl=f"dit incident bestaat niet: {', '.join(unknown)}")
        open_ids = [i for i in ids if incidents.is_open(given[i])]
        if len(open_ids) < 2:
            closed = [(i, *_not_open_because(given[i])) for i in ids if i not in open_ids]
            raise ServiceError(
                409, "incident_not_open", "a merge needs at least two open incidents; "
                + "; ".join(f"{i} is {en}" for i, en, _nl in closed),
                detail_nl="samenvoegen kan alleen met minstens twee open incidenten; "
                + "; ".join(f"{i} is {nl}" for i, _en, nl in closed))
        survivor = await forwarding.merge_incidents(session, runtime.settings, open_ids, respect_splits=False)
        assert survivor is not None
        merged = [i for i in open_ids if i != survivor.id]
        audit(session, actor, "merge_incidents", "incident", survivor.id,
              {"merged": merged, "not_open": [i for i in ids if i not in open_ids]})
        summary = (await incident_summaries(session, [survivor]))[0]
    return summary


async def split_report(runtime: Runtime, actor: Actor, report_id: str) -> dict[str, Any]:
    """A dispatcher says this report is another event than the rest of its incident: it leaves that incident
    and goes to the meldkamer as a new incident of its own (a request for service with its own EIDO), which
    the automatic merges keep apart from the old one; the old incident is told, with the event as it now
    stands. Returns the new incident."""
    async with runtime.db.transaction() as session:
        await incidents.decide_one_at_a_time(session)  # it forwards: first, before any row lock
        stored = await _report(session, report_id, lock=True)
        if stored.state != ReportState.FORWARDED or stored.incident_id is None:
            raise ServiceError(409, "report_not_forwarded", f"the report is {stored.state}, not part of an incident "
                               "at the meldkamer: there is nothing to split it off",
                               detail_nl=f"de melding is {state_nl(stored.state)} en hoort niet bij een incident "
                               "bij de meldkamer: er valt niets af te splitsen")
        old = await forwarding.incident_of(session, stored)
        if not any(r.report_id != stored.report_id and r.state != ReportState.WITHDRAWN
                   for r in await incidents.reports_of(session, old.id)):
            raise ServiceError(409, "last_report_of_incident", "this is the only report of its incident (the others, "
                               "if any, were withdrawn): there is nothing to split it off",
                               detail_nl="dit is de enige melding van het incident (eventuele andere zijn "
                               "ingetrokken): er valt niets af te splitsen")
        new = await forwarding.forward(session, runtime.settings, stored,
                                       ReportSubmitted.model_validate_json(stored.submission))
        new.split_from = old.id
        old.updated_at = utcnow()
        session.add_all([new, old])
        await holds.follow_split(session, old, new, stored)  # held evidence stays held in its new incident
        await forwarding.update_incident(session, runtime.settings, old, "report_removed",
                                         f"Report {stored.reference} is another event, a dispatcher found: it was "
                                         f"split off this incident and is now incident {new.id}.")
        audit(session, actor, "split_report", "report", stored.report_id,
              {"from_incident": old.id, "to_incident": new.id}, report_id=stored.report_id)
        summary = (await incident_summaries(session, [new]))[0]
    return summary


async def delivery_overview(runtime: Runtime) -> dict[str, Any]:
    async with runtime.db.sessions() as session:
        states = {str(state): count for state, count in (await session.execute(
            select(Incident.delivery_state, func.count()).group_by(col(Incident.delivery_state)))).all()}
    return {"incidents_by_delivery_state": states, "outbox": await outbox_counts(runtime.db, messaging),
            "circuits": await runtime.relay.circuit_states(),
            "relay": {"delivered": runtime.relay.stats.delivered, "retried": runtime.relay.stats.retried,
                      "dead": runtime.relay.stats.dead}}


VERIFICATION_JOB = "verification-job:"  # the id prefix of verification's dead jobs among the dead letters


def verification_unreachable() -> ServiceError:
    return ServiceError(503, "verification_unreachable", "verification did not answer; try again shortly",
                        detail_nl="de verificatiedienst antwoordt niet; probeer het zo opnieuw",
                        headers={"Retry-After": "5"})


async def dead_letters(runtime: Runtime, limit: int) -> list[dict[str, Any]]:
    """The bridge's own dead letters, then verification's dead jobs (their reports wait for a verdict)."""
    outbox = messaging.outbox
    async with runtime.db.sessions() as session:
        rows = (await session.execute(outbox.select().where(outbox.c.status == DEAD)
                                      .order_by(outbox.c.id.desc()).limit(limit))).mappings().all()
    own = [{"message_id": r["message_id"], "destination": r["destination"], "kind": r["kind"],
            "attempts": r["attempts"], "reason": r["last_error"], "last_status_code": r["last_status_code"],
            "created_at": r["created_at"]} for r in rows]
    try:
        response = await _ask_verification(runtime, "GET", f"/internal/v1/dead-jobs?limit={limit}")
        jobs = [{"message_id": VERIFICATION_JOB + job["job_id"], "destination": "verification",
                 "kind": "verification.job", "attempts": job["attempts"], "reason": job["reason"],
                 "last_status_code": None, "created_at": job["received_at"], "report_id": job["report_id"],
                 "urgent": job["urgent"]} for job in response.json()]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        # Not a reason to hide the bridge's own: say that verification's part is missing, and why.
        jobs = [{"message_id": None, "destination": "verification", "kind": "verification.unavailable",
                 "attempts": None, "reason": f"verification's dead jobs could not be read: {type(exc).__name__}",
                 "last_status_code": None, "created_at": None}]
    return own + jobs


async def _ask_verification(runtime: Runtime, method: str, path: str) -> httpx.Response:
    return await peers.call_service(runtime, "verification", method, path)


async def replay(runtime: Runtime, actor: Actor, message_id: str) -> dict[str, str]:
    if message_id.startswith(VERIFICATION_JOB):
        job_id = message_id.removeprefix(VERIFICATION_JOB)
        try:
            await _ask_verification(runtime, "POST", f"/internal/v1/dead-jobs/{quote(job_id, safe='')}/replay")
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != 404:
                raise verification_unreachable() from exc
            raise ServiceError(404, "dead_letter_not_found", "no dead letter with this id",
                               detail_nl="geen onbestelbaar bericht met dit nummer") from exc
        except httpx.HTTPError as exc:
            raise verification_unreachable() from exc
        async with runtime.db.transaction() as session:
            audit(session, actor, "replay_verification_job", "report", job_id.split(":")[0],
                  report_id=job_id.split(":")[0][:36])
        return {"status": "queued"}
    if not await replay_dead_letter(runtime.db, messaging, message_id):
        raise ServiceError(404, "dead_letter_not_found", "no dead letter with this id",
                           detail_nl="geen onbestelbaar bericht met dit nummer")
    async with runtime.db.transaction() as session:
        audit(session, actor, "replay_dead_letter", "message", message_id)
        outbox = messaging.outbox
        row = (await session.execute(select(outbox.c.kind, outbox.c.payload)
                                     .where(outbox.c.message_id == message_id))).first()
        if row is not None and row.kind == REQUEST_FOR_SERVICE.kind:
            incident = await session.get(Incident, json.loads(row.payload)["requestId"], with_for_update=True)
            if incident is not None:
                incident.delivery_state = DELIVERY_STATES.move(incident.delivery_state, DeliveryState.QUEUED)
                incident.delivery_cause = None
                session.add(incident)
    return {"status": "queued"}


async def audit_log(runtime: Runtime, target_id: str | None, limit: int) -> list[dict[str, Any]]:
    """The newest entries of the bridge's audit chain (with their hashes), optionally about one target."""
    entries = audit_tables.entries
    async with runtime.db.sessions() as session:
        query = entries.select().order_by(entries.c.seq.desc()).limit(limit)
        if target_id:
            query = query.where((entries.c.target_id == target_id) | (entries.c.report_id == target_id))
        rows = (await session.execute(query)).mappings().all()
    return [{**auditchain.as_json(dict(row)), "username": row["actor"]} for row in rows]
