"""Delivery at a glance and dead letters: what did not arrive, and sending it again."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import func
from sqlmodel import col, select

from burgermelding_shared.app import Runtime
from burgermelding_shared.catalogue import REQUEST_FOR_SERVICE
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.messaging import DEAD, outbox_counts, replay_dead_letter
from dispatch_bridge import peers
from dispatch_bridge.accounts.tokens import Actor
from dispatch_bridge.audit import audit
from dispatch_bridge.models import Incident, messaging
from dispatch_bridge.states import DELIVERY_STATES, DeliveryState


async def delivery_overview(runtime: Runtime) -> dict[str, Any]:
    async with runtime.db.sessions() as session:
        states = {
            str(state): count
            for state, count in (
                await session.execute(
                    select(Incident.delivery_state, func.count()).group_by(col(Incident.delivery_state))
                )
            ).all()
        }
    return {
        "incidents_by_delivery_state": states,
        "outbox": await outbox_counts(runtime.db, messaging),
        "circuits": await runtime.relay.circuit_states(),
        "relay": {
            "delivered": runtime.relay.stats.delivered,
            "retried": runtime.relay.stats.retried,
            "dead": runtime.relay.stats.dead,
        },
    }


VERIFICATION_JOB = "verification-job:"  # the id prefix of verification's dead jobs among the dead letters


def verification_unreachable() -> ServiceError:
    return ServiceError(
        503,
        "verification_unreachable",
        "verification did not answer; try again shortly",
        detail_nl="de verificatiedienst antwoordt niet; probeer het zo opnieuw",
        headers={"Retry-After": "5"},
    )


async def dead_letters(runtime: Runtime, limit: int) -> list[dict[str, Any]]:
    """The bridge's own dead letters, then verification's dead jobs (their reports wait for a verdict)."""
    outbox = messaging.outbox
    async with runtime.db.sessions() as session:
        rows = (
            (
                await session.execute(
                    outbox.select().where(outbox.c.status == DEAD).order_by(outbox.c.id.desc()).limit(limit)
                )
            )
            .mappings()
            .all()
        )
    own = [
        {
            "message_id": r["message_id"],
            "destination": r["destination"],
            "kind": r["kind"],
            "attempts": r["attempts"],
            "reason": r["last_error"],
            "last_status_code": r["last_status_code"],
            "created_at": r["created_at"],
        }
        for r in rows
    ]
    try:
        response = await _ask_verification(runtime, "GET", f"/internal/v1/dead-jobs?limit={limit}")
        jobs = [
            {
                "message_id": VERIFICATION_JOB + job["job_id"],
                "destination": "verification",
                "kind": "verification.job",
                "attempts": job["attempts"],
                "reason": job["reason"],
                "last_status_code": None,
                "created_at": job["received_at"],
                "report_id": job["report_id"],
                "urgent": job["urgent"],
            }
            for job in response.json()
        ]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        # Not a reason to hide the bridge's own: say that verification's part is missing, and why.
        jobs = [
            {
                "message_id": None,
                "destination": "verification",
                "kind": "verification.unavailable",
                "attempts": None,
                "reason": f"verification's dead jobs could not be read: {type(exc).__name__}",
                "last_status_code": None,
                "created_at": None,
            }
        ]
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
            raise ServiceError(
                404,
                "dead_letter_not_found",
                "no dead letter with this id",
                detail_nl="geen onbestelbaar bericht met dit nummer",
            ) from exc
        except httpx.HTTPError as exc:
            raise verification_unreachable() from exc
        async with runtime.db.transaction() as session:
            audit(
                session,
                actor,
                "replay_verification_job",
                "report",
                job_id.split(":")[0],
                report_id=job_id.split(":")[0][:36],
            )
        return {"status": "queued"}
    if not await replay_dead_letter(runtime.db, messaging, message_id):
        raise ServiceError(
            404,
            "dead_letter_not_found",
            "no dead letter with this id",
            detail_nl="geen onbestelbaar bericht met dit nummer",
        )
    async with runtime.db.transaction() as session:
        audit(session, actor, "replay_dead_letter", "message", message_id)
        outbox = messaging.outbox
        row = (
            await session.execute(select(outbox.c.kind, outbox.c.payload).where(outbox.c.message_id == message_id))
        ).first()
        if row is not None and row.kind == REQUEST_FOR_SERVICE.kind:
            incident = await session.get(Incident, json.loads(row.payload)["requestId"], with_for_update=True)
            if incident is not None:
                incident.delivery_state = DELIVERY_STATES.move(incident.delivery_state, DeliveryState.QUEUED)
                incident.delivery_cause = None
                session.add(incident)
    return {"status": "queued"}
