"""A dispatcher's decisions: a question for the citizen, a review, a merge or a split."""

from __future__ import annotations

from typing import Any

from burgermelding_shared.app import Runtime
from burgermelding_shared.contracts import ReportSubmitted
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.timeutil import utcnow
from dispatch_bridge.accounts.tokens import Actor
from dispatch_bridge.audit import audit
from dispatch_bridge.citizens import conversation, news
from dispatch_bridge.desk.listings import find_report, incident_summaries, report_summary
from dispatch_bridge.incidents import events, merging, routing
from dispatch_bridge.meldkamer import requests as to_meldkamer
from dispatch_bridge.models import Incident
from dispatch_bridge.records import holds
from dispatch_bridge.states import CLOSED_STATUSES, REPORT_STATES, ReportState, state_nl


async def ask(runtime: Runtime, actor: Actor, report_id: str, text: str) -> dict[str, Any]:
    async with runtime.db.transaction() as session:
        stored = await find_report(session, report_id, lock=True)
        if stored.state in (ReportState.WITHDRAWN, ReportState.REJECTED):
            raise ServiceError(
                409,
                "report_closed",
                f"the report is {stored.state}",
                detail_nl=f"de melding is {state_nl(stored.state)}",
            )
        question = await conversation.ask_citizen(session, stored.report_id, text, actor.username)
        # The question's id, not its words: the chain keeps nothing that retention would have to remove.
        audit(
            session,
            actor,
            "ask_citizen",
            "report",
            stored.report_id,
            {"message_id": question.id},
            report_id=stored.report_id,
        )
    return {"id": question.id, "text": question.text, "sent_at": question.sent_at}


async def decide_review(runtime: Runtime, actor: Actor, report_id: str, forward: bool) -> dict[str, Any]:
    """A human decision on a report that verification held for review."""
    async with runtime.db.transaction() as session:
        if forward:
            await events.decide_one_at_a_time(session)  # it may join an incident: first, before row locks
        stored = await find_report(session, report_id, lock=True)
        if stored.state != ReportState.HELD_FOR_REVIEW:
            raise ServiceError(
                409,
                "not_held_for_review",
                f"the report is {stored.state}, not held for review",
                detail_nl=f"de melding is {state_nl(stored.state)} en wacht niet op beoordeling",
            )
        if forward:
            await routing.dispatch(
                session, runtime.settings, stored, ReportSubmitted.model_validate_json(stored.submission)
            )
        else:
            stored.state = REPORT_STATES.move(stored.state, ReportState.REJECTED)
            session.add(stored)
            await news.tell_citizen(session, stored.report_id, "rejected")
        audit(
            session,
            actor,
            "review_forward" if forward else "review_reject",
            "report",
            stored.report_id,
            report_id=stored.report_id,
        )
    return report_summary(stored)


def _not_open_because(incident: Incident) -> tuple[str, str]:
    """Why an incident cannot take part in a merge (English, Dutch)."""
    if incident.merged_into is not None:
        return f"merged into {incident.merged_into}", f"samengevoegd met {incident.merged_into}"
    if incident.operational_status in CLOSED_STATUSES:
        return (
            f"{incident.operational_status.lower()} by the meldkamer",
            f"{'afgesloten' if incident.operational_status == 'Closed' else 'geannuleerd'} door de meldkamer",
        )
    return f"not delivered ({incident.delivery_state})", f"niet afgeleverd ({state_nl(incident.delivery_state)})"


async def merge_incidents(runtime: Runtime, actor: Actor, incident_id: str, other_ids: list[str]) -> dict[str, Any]:
    """A dispatcher says these incidents are one event: the open ones become one, as when verification finds
    it (`forwarding.merge_incidents`: the accepted one, else the oldest, goes on; the meldkamer and the
    citizens are told), also when a dispatcher split one off another before. Returns the survivor."""
    ids = list(dict.fromkeys(i[:36] for i in (incident_id, *other_ids)))
    async with runtime.db.transaction() as session:
        await events.decide_one_at_a_time(session)  # before any row lock, as every merge
        given = {}
        for one in sorted(ids):  # the same order of row locks as forwarding.merge_incidents
            found = await session.get(Incident, one, with_for_update=True)
            if found is not None:
                given[one] = found
        unknown = [i for i in ids if i not in given]
        if unknown:
            raise ServiceError(
                404,
                "incident_not_found",
                f"no such incident: {', '.join(unknown)}",
                detail_nl=f"dit incident bestaat niet: {', '.join(unknown)}",
            )
        open_ids = [i for i in ids if events.is_open(given[i])]
        if len(open_ids) < 2:
            closed = [(i, *_not_open_because(given[i])) for i in ids if i not in open_ids]
            raise ServiceError(
                409,
                "incident_not_open",
                "a merge needs at least two open incidents; " + "; ".join(f"{i} is {en}" for i, en, _nl in closed),
                detail_nl="samenvoegen kan alleen met minstens twee open incidenten; "
                + "; ".join(f"{i} is {nl}" for i, _en, nl in closed),
            )
        survivor = await merging.merge_incidents(session, runtime.settings, open_ids, respect_splits=False)
        assert survivor is not None
        merged = [i for i in open_ids if i != survivor.id]
        audit(
            session,
            actor,
            "merge_incidents",
            "incident",
            survivor.id,
            {"merged": merged, "not_open": [i for i in ids if i not in open_ids]},
        )
        summary = (await incident_summaries(session, [survivor]))[0]
    return summary


async def split_report(runtime: Runtime, actor: Actor, report_id: str) -> dict[str, Any]:
    """A dispatcher says this report is another event than the rest of its incident: it leaves that incident
    and goes to the meldkamer as a new incident of its own (a request for service with its own EIDO), which
    the automatic merges keep apart from the old one; the old incident is told, with the event as it now
    stands. Returns the new incident."""
    async with runtime.db.transaction() as session:
        await events.decide_one_at_a_time(session)  # it forwards: first, before any row lock
        stored = await find_report(session, report_id, lock=True)
        if stored.state != ReportState.FORWARDED or stored.incident_id is None:
            raise ServiceError(
                409,
                "report_not_forwarded",
                f"the report is {stored.state}, not part of an incident "
                "at the meldkamer: there is nothing to split it off",
                detail_nl=f"de melding is {state_nl(stored.state)} en hoort niet bij een incident "
                "bij de meldkamer: er valt niets af te splitsen",
            )
        old = await routing.incident_of(session, stored)
        if not any(
            r.report_id != stored.report_id and r.state != ReportState.WITHDRAWN
            for r in await events.reports_of(session, old.id)
        ):
            raise ServiceError(
                409,
                "last_report_of_incident",
                "this is the only report of its incident (the others, "
                "if any, were withdrawn): there is nothing to split it off",
                detail_nl="dit is de enige melding van het incident (eventuele andere zijn "
                "ingetrokken): er valt niets af te splitsen",
            )
        new = await routing.forward(
            session, runtime.settings, stored, ReportSubmitted.model_validate_json(stored.submission)
        )
        new.split_from = old.id
        old.updated_at = utcnow()
        session.add_all([new, old])
        await holds.follow_split(session, old, new, stored)  # held evidence stays held in its new incident
        await to_meldkamer.update_incident(
            session,
            runtime.settings,
            old,
            "report_removed",
            f"Report {stored.reference} is another event, a dispatcher found: it was "
            f"split off this incident and is now incident {new.id}.",
        )
        audit(
            session,
            actor,
            "split_report",
            "report",
            stored.report_id,
            {"from_incident": old.id, "to_incident": new.id},
            report_id=stored.report_id,
        )
        summary = (await incident_summaries(session, [new]))[0]
    return summary
