"""Burgernet actions and witness calls: started, published to intake, closed or cancelled, and viewed."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from burgermelding_shared import burgernet
from burgermelding_shared.app import Runtime
from burgermelding_shared.burgernet import ActionKind, Area, LookingFor, PublishedAction
from burgermelding_shared.catalogue import BURGERNET_ACTION
from burgermelding_shared.db import serialise
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.messaging import Precedence, enqueue
from burgermelding_shared.timeutil import utcnow
from dispatch_bridge import peers
from dispatch_bridge.audit import Who, audit
from dispatch_bridge.burgernet.errors import already_ended, invalid, not_found
from dispatch_bridge.burgernet.photos import published_photo
from dispatch_bridge.citizens import news
from dispatch_bridge.config import BridgeSettings
from dispatch_bridge.incidents import events
from dispatch_bridge.meldkamer import requests as to_meldkamer
from dispatch_bridge.models import BridgeReport, BurgernetAction, Incident, messaging
from dispatch_bridge.states import ReportState

# The closing message when the dispatcher writes none, by outcome: (Dutch, English).
STANDARD_CLOSING = {
    "found": (
        "De persoon is gevonden. Dank u wel voor uw hulp.",
        "The person has been found. Thank you for your help.",
    ),
    "arrested": (
        "Er is iemand aangehouden. Dank u wel voor uw hulp.",
        "Someone has been arrested. Thank you for your help.",
    ),
    "called_off": (
        "De politie heeft de actie beëindigd. Dank u wel voor uw hulp.",
        "The police have ended this action. Thank you for your help.",
    ),
    "expired": (
        "Deze Burgernet-actie is beëindigd. U hoeft niet meer uit te kijken. Dank u wel voor uw oplettendheid.",
        "This Burgernet action has ended. You need not look out any longer. Thank you for your attention.",
    ),
    "cancelled": (
        "Deze Burgernet-actie is ingetrokken. U hoeft niet meer uit te kijken.",
        "This Burgernet action has been withdrawn. You need not look out any longer.",
    ),
}


HEADLINES = {  # looking_for: (Dutch, English), when the meldkamer's script names none
    "person": ("Gezocht: persoon", "Sought: a person"),
    "vehicle": ("Gezocht: voertuig", "Sought: a vehicle"),
    "missing_child": ("Vermist kind", "Missing child"),
    "witnesses": ("Getuigen gezocht", "Witnesses sought"),
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
    photo_sha256: str | None = Field(
        None, pattern=r"^[0-9a-f]{64}$", description="from POST /v1/dispatch/burgernet/photos"
    )
    duration_minutes: int | None = Field(
        None,
        ge=5,
        description="how long it stays open (the bridge's maximum "
        "applies); afterwards it closes itself with the standard message",
    )
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

    outcome: burgernet.Outcome = Field(
        description="found, arrested or called_off (expired and cancelled are the deadline's and a supervisor's)"
    )
    message_nl: str | None = Field(
        None,
        min_length=1,
        max_length=2000,
        description="the closing message; the standard one for the outcome when left out",
    )
    message_en: str | None = Field(None, min_length=1, max_length=2000)


class Cancellation(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)  # words of spaces are no words

    reason: str = Field(min_length=1, max_length=300, description="why (for the audit log, not published)")
    message_nl: str | None = Field(None, min_length=1, max_length=2000)
    message_en: str | None = Field(None, min_length=1, max_length=2000)


async def open_incident_of(session: AsyncSession, incident_id: str) -> Incident:
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
            raise invalid(
                "window_not_past",
                "a witness call asks about a window in the past; for now, start an action",
                "een getuigenoproep vraagt naar een periode in het verleden; start voor nu een actie",
            )
        if request.window_end - request.window_start > timedelta(days=7):
            raise invalid(
                "window_too_long", "the window may span at most 7 days", "de periode mag hoogstens 7 dagen beslaan"
            )
        longest = timedelta(days=settings.witness_call_max_days)
        default = timedelta(days=7)
    else:
        longest = timedelta(minutes=settings.burgernet_max_minutes)
        default = timedelta(minutes=settings.burgernet_default_minutes)
    duration = timedelta(minutes=request.duration_minutes) if request.duration_minutes else default
    if duration > longest:
        raise invalid(
            "duration_too_long",
            f"at most {int(longest.total_seconds() // 60)} minutes",
            f"hoogstens {int(longest.total_seconds() // 60)} minuten",
        )
    return now + duration


async def start_action(runtime: Runtime, actor: Who, request: ActionRequest) -> dict[str, Any]:
    settings: BridgeSettings = runtime.settings
    now = utcnow()
    closes_at = _check_times(settings, request, now)
    async with runtime.db.transaction() as session:
        photo = await published_photo(session, request.photo_sha256) if request.photo_sha256 else None
        incident = await open_incident_of(session, request.incident_id)
        if request.kind == "action" and not events.is_open(incident):
            raise ServiceError(
                409,
                "incident_closed",
                "the incident is closed; a live action needs an open one (a witness call may follow a closed incident)",
                detail_nl="het incident is gesloten; een actie vraagt een open incident (een "
                "getuigenoproep mag bij een gesloten incident)",
            )
        await serialise(session, "burgernet-numbers")
        number = ((await session.execute(select(func.max(BurgernetAction.number)))).scalar() or 0) + 1
        action_id = str(uuid.uuid4())
        published = PublishedAction(
            action_id=action_id,
            reference=f"BN-{now.year}-{number:06d}",
            version=1,
            kind=request.kind,
            looking_for=request.looking_for,
            headline_nl=request.headline_nl,
            headline_en=request.headline_en or request.headline_nl,
            description_nl=request.description_nl,
            description_en=request.description_en or request.description_nl,
            area=request.area,
            photo=photo,
            started_at=now,
            closes_at=closes_at,
            window_start=request.window_start,
            window_end=request.window_end,
            status="open",
        )
        action = BurgernetAction(
            id=action_id,
            number=number,
            reference=published.reference,
            kind=request.kind,
            incident_id=incident.id,
            status="open",
            document=published.model_dump_json(),
            started_by=actor.username,
            started_at=now,
            closes_at=closes_at,
        )
        session.add(action)
        audit(
            session,
            actor,
            "burgernet.started",
            "burgernet",
            action_id,
            {
                "reference": published.reference,
                "kind": request.kind,
                "incident_id": incident.id,
                "looking_for": request.looking_for,
                "closes_at": closes_at.isoformat(),
                "photo_sha256": photo.sha256 if photo else None,
            },
        )
        await _publish(session, published)
        what = "witness call" if request.kind == "witness_call" else "action"
        await to_meldkamer.update_incident(
            session,
            settings,
            incident,
            "burgernet",
            f"Burgernet {what} {published.reference} started by {actor.username}: "
            f"{request.headline_nl}; open until {closes_at.isoformat()}",
            with_summary=False,
        )
        return view(action, published)


async def _publish(session: AsyncSession, published: PublishedAction) -> None:
    """To intake, which serves it to the apps; in version order per action, ahead of ordinary traffic. Only
    what the public may see travels (an ended action without whom it sought); the bridge keeps the whole."""
    await enqueue(
        session,
        messaging,
        BURGERNET_ACTION,
        published.public(),
        precedence=Precedence.URGENT,
        ordering_key=f"burgernet:{published.action_id}",
    )


async def end_action(
    session: AsyncSession,
    settings: BridgeSettings,
    action: BurgernetAction,
    actor: Who,
    outcome: str,
    message_nl: str | None,
    message_en: str | None,
    reason: str | None = None,
) -> PublishedAction:
    """Close or cancel: the closing message is published (always), the meldkamer's incident hears it, and every
    citizen who answered sees on their report's timeline what became of it."""
    standard_nl, standard_en = STANDARD_CLOSING[outcome]
    closing_nl = message_nl or standard_nl
    closing_en = message_en or (message_nl if message_nl and not message_en else standard_en)
    now = utcnow()
    published = PublishedAction.model_validate_json(action.document).model_copy(
        update={
            "version": action.version + 1,
            "status": "cancelled" if outcome == "cancelled" else "closed",
            "outcome": outcome,
            "closing_nl": closing_nl,
            "closing_en": closing_en,
            "closed_at": now,
        }
    )
    action.status, action.outcome, action.version = published.status, outcome, published.version
    action.closed_by, action.closed_at, action.document = actor.username, now, published.model_dump_json()
    session.add(action)
    audit(
        session,
        actor,
        f"burgernet.{published.status}",
        "burgernet",
        action.id,
        {"reference": action.reference, "outcome": outcome, "reason": reason},
    )
    await _publish(session, published)
    incident = await open_incident_of(session, action.incident_id)
    await to_meldkamer.update_incident(
        session,
        settings,
        incident,
        "burgernet",
        f"Burgernet {action.reference} {published.status} ({outcome}): {closing_nl}",
        with_summary=False,
    )
    answers = (await session.execute(select(BridgeReport).where(BridgeReport.appeal_id == action.id))).scalars()
    for stored in answers:
        if stored.state != ReportState.WITHDRAWN:
            await news.tell_citizen(
                session,
                stored.report_id,
                "appeal_closed",
                texts=(
                    f"The Burgernet action you answered has ended: {closing_en}",
                    f"De Burgernet-actie waarop u reageerde is beëindigd: {closing_nl}",
                ),
            )
    return published


async def _locked_action(session: AsyncSession, action_id: str) -> BurgernetAction:
    action = await session.get(BurgernetAction, action_id[:36], with_for_update=True)
    if action is None:
        raise not_found()
    return action


async def close_action(runtime: Runtime, actor: Who, action_id: str, closing: Closing) -> dict[str, Any]:
    if closing.outcome in ("expired", "cancelled"):
        raise invalid(
            "invalid_outcome",
            "close with found, arrested or called_off (a supervisor cancels)",
            "sluit af met found, arrested of called_off (intrekken doet een leidinggevende)",
        )
    async with runtime.db.transaction() as session:
        action = await _locked_action(session, action_id)
        if action.status != "open":
            raise already_ended(action)
        published = await end_action(
            session, runtime.settings, action, actor, closing.outcome, closing.message_nl, closing.message_en
        )
        return view(action, published)


async def cancel_action(runtime: Runtime, actor: Who, action_id: str, cancellation: Cancellation) -> dict[str, Any]:
    async with runtime.db.transaction() as session:
        action = await _locked_action(session, action_id)
        if action.status != "open":
            raise already_ended(action)
        published = await end_action(
            session,
            runtime.settings,
            action,
            actor,
            "cancelled",
            cancellation.message_nl,
            cancellation.message_en,
            reason=cancellation.reason,
        )
        return view(action, published)


def view(action: BurgernetAction, published: PublishedAction | None = None) -> dict[str, Any]:
    published = published or PublishedAction.model_validate_json(action.document)
    return {
        **published.model_dump(mode="json"),
        "incident_id": action.incident_id,
        "started_by": action.started_by,
        "closed_by": action.closed_by,
    }


async def figures(runtime: Runtime, session: AsyncSession, action: BurgernetAction) -> dict[str, Any]:
    """Per action: how many installations fetched it (intake counts their receipts), how many answered, the
    time to the first sighting, and the outcome."""
    answers = (await session.execute(select(BridgeReport).where(BridgeReport.appeal_id == action.id))).scalars().all()
    fetched: int | None = None
    try:
        reach = await peers.call_service(
            runtime, "report-intake", "GET", f"/internal/v1/burgernet/actions/{action.id}/reach"
        )
        fetched = int(reach.json()["installations"])
    except (httpx.HTTPError, ValueError, KeyError):
        pass  # shown as null, with the reason, not as a guess
    first = (action.first_sighting_at - action.started_at).total_seconds() if action.first_sighting_at else None
    return {
        "fetched_by_installations": fetched,
        "fetched_unavailable": fetched is None,
        "answers": len(answers),
        "answering_installations": events.witnesses(list(answers)),
        "seconds_to_first_answer": first,
        "outcome": action.outcome,
    }


async def get_action(runtime: Runtime, actor: Who, action_id: str) -> dict[str, Any]:
    async with runtime.db.transaction() as session:
        action = await session.get(BurgernetAction, action_id[:36])
        if action is None:
            raise not_found()
        audit(session, actor, "burgernet.viewed", "burgernet", action.id)
        answers = (
            await session.execute(
                select(BridgeReport.report_id, BridgeReport.reference)
                .where(BridgeReport.appeal_id == action.id)
                .order_by(col(BridgeReport.received_at))
            )
        ).all()
        return {
            **view(action),
            "figures": await figures(runtime, session, action),
            "answers": [{"report_id": r, "reference": ref} for r, ref in answers],
        }


async def list_actions(runtime: Runtime, status: str | None, limit: int) -> list[dict[str, Any]]:
    async with runtime.db.sessions() as session:
        query = select(BurgernetAction).order_by(col(BurgernetAction.number).desc()).limit(limit)
        if status:
            query = query.where(BurgernetAction.status == status)
        actions = (await session.execute(query)).scalars().all()
        return [{**view(a), "figures": await figures(runtime, session, a)} for a in actions]
