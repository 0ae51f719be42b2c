"""Routes of the dispatchers' and supervisors' API."""

from __future__ import annotations

import json
import shutil
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field
from sqlalchemy import select
from starlette.background import BackgroundTask

from burgermelding_shared.app import RuntimeDep
from burgermelding_shared.errors import error_responses
from burgermelding_shared.ratelimit import client_address
from burgermelding_shared.urgency import MeldkamerPriority
from dispatch_bridge.accounts import logins, passwords, users
from dispatch_bridge.accounts.tokens import AnyDispatcher, Supervisor
from dispatch_bridge.callers import links
from dispatch_bridge.desk import decisions, deliveries, listings
from dispatch_bridge.desk.views import (
    AccountState,
    AuditEntry,
    CallerLinkRequest,
    CallerLinkView,
    CustodyRecord,
    DeadLetter,
    DeletionRecord,
    DeliveryOverview,
    HoldState,
    IncidentSummary,
    QuestionAsked,
    ReplayQueued,
    ReportDetail,
    ReportListItem,
    ReportSummary,
    Token,
)
from dispatch_bridge.models import deletions
from dispatch_bridge.records import evidence, holds
from dispatch_bridge.states import DeliveryState, ReportState

router = APIRouter(prefix="/v1", tags=["dispatchers"])


AUTH_ERRORS = error_responses(401, 403)


Limit = Annotated[int, Query(ge=1, le=500)]


class Question(BaseModel):
    text: str = Field(min_length=1, max_length=2000, examples=["Welke kant liep de verdachte op?"])


@router.post(
    "/auth/token",
    response_model=Token,
    summary="Log in (OAuth2 password flow). Never locks an account: "
    "wrong passwords in a row make the next try from that source wait longer (429 with Retry-After), "
    "and tries for a name from sources it has not logged in from lately have a ceiling, which delays "
    "but never refuses its owner at a desk with a recent good login (audited)",
    responses=error_responses(
        401,
        429,
        503,
        examples={401: [logins.wrong_credentials()], 429: [logins.login_throttled(4)], 503: [passwords.logins_busy()]},
    ),
)
async def request_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request, runtime: RuntimeDep
) -> Token:
    return Token(access_token=await logins.log_in(runtime, form.username, form.password, client_address(request)))


@router.get(
    "/dispatch/incidents",
    response_model=list[IncidentSummary],
    summary="Incidents with their reports and the event they describe together "
    "(witnesses, time span, spread, photos best first), most urgent first (the view is audited)",
    responses=AUTH_ERRORS,
)
async def list_incidents(
    runtime: RuntimeDep,
    actor: AnyDispatcher,
    delivery_state: DeliveryState | None = None,
    priority: Annotated[MeldkamerPriority | None, Query()] = None,
    category: str | None = None,
    include_merged: bool = False,
    limit: Limit = 100,
) -> list[dict[str, Any]]:
    return await listings.list_incidents(
        runtime, actor, listings.IncidentFilter(delivery_state, priority, category, include_merged), limit
    )


@router.get(
    "/dispatch/reports",
    response_model=list[ReportListItem],
    summary="Reports with their verification summary, group and incident links (the view is audited)",
    responses=AUTH_ERRORS,
)
async def list_reports(
    runtime: RuntimeDep,
    actor: AnyDispatcher,
    state: ReportState | None = None,
    verdict: str | None = None,
    category: str | None = None,
    in_progress: bool | None = None,
    group_id: str | None = None,
    limit: Limit = 100,
) -> list[dict[str, Any]]:
    return await listings.list_reports(
        runtime, actor, listings.ReportFilter(state, verdict, category, in_progress, group_id), limit
    )


@router.get(
    "/dispatch/reports/{report_id}",
    response_model=ReportDetail,
    summary="One report in full (the view is audited)",
    responses=error_responses(401, 403, 404),
)
async def get_report(report_id: str, runtime: RuntimeDep, actor: AnyDispatcher) -> dict[str, Any]:
    return await listings.view_report(runtime, actor, report_id)


@router.get(
    "/dispatch/reports/{report_id}/photos/{photo_id}",
    response_class=Response,
    summary="A photo: the sanitised copy, or with `original=true` the evidence (supervisors only)",
    responses={200: {"content": {"image/jpeg": {}}}, **error_responses(401, 403, 404, 409)},
)
async def get_report_photo(
    report_id: str, photo_id: str, runtime: RuntimeDep, actor: AnyDispatcher, original: bool = False
) -> Response:
    return await listings.photo_answer(runtime, actor, report_id, photo_id, original, {"Cache-Control": "no-store"})


VIDEO_BODY = {"schema": {"type": "string", "format": "binary"}}
VideoCopyQuery = Annotated[
    listings.VideoCopy,
    Query(
        description="`playable`: the remuxed copy, the pictures as recorded (`playable_codecs` says whether a browser "
        "plays them); `compatible`: the H.264 copy intake makes after the 202 for a codec not every browser plays "
        "(HEVC; the photo's `compatible` says when it is `ready`, 409 while it is `pending`)"
    ),
]


@router.get(
    "/dispatch/reports/{report_id}/photos/{photo_id}/video",
    response_class=Response,
    summary="A video's playable copy (remuxed, without metadata) or its compatible copy; byte ranges for seeking",
    responses={
        200: {"content": {"video/mp4": VIDEO_BODY, "video/webm": VIDEO_BODY}},
        206: {"description": "the asked byte range", "content": {"video/mp4": VIDEO_BODY, "video/webm": VIDEO_BODY}},
        **error_responses(401, 403, 404, 409, 416, 422),
    },
)
async def get_report_video(
    report_id: str,
    photo_id: str,
    request: Request,
    runtime: RuntimeDep,
    actor: AnyDispatcher,
    copy: VideoCopyQuery = "playable",
) -> Response:
    return await listings.video_answer(request, runtime, actor, report_id, photo_id, copy)


@router.post(
    "/dispatch/reports/{report_id}/questions",
    status_code=201,
    response_model=QuestionAsked,
    summary="Ask the citizen a question",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def ask_question(report_id: str, question: Question, runtime: RuntimeDep, actor: AnyDispatcher) -> dict[str, Any]:
    return await decisions.ask(runtime, actor, report_id, question.text)


@router.post(
    "/dispatch/incidents/{incident_id}/caller-links",
    status_code=201,
    response_model=CallerLinkView,
    summary="Ask a caller for photos and video: a one-time link to their phone by SMS",
    responses=error_responses(401, 403, 404, 422, 503),
)
async def send_caller_link(
    incident_id: str, ask: CallerLinkRequest, runtime: RuntimeDep, actor: AnyDispatcher
) -> dict[str, Any]:
    return await links.send_link(runtime, actor, incident_id, ask.phone, ask.language, ask.ask)


@router.get(
    "/dispatch/incidents/{incident_id}/caller-links",
    response_model=list[CallerLinkView],
    summary="The links sent to callers for this incident, newest first, with what became of them",
    responses=error_responses(401, 403),
)
async def list_caller_links(incident_id: str, runtime: RuntimeDep, _actor: AnyDispatcher) -> list[dict[str, Any]]:
    return await links.links_of(runtime, incident_id)


@router.post(
    "/dispatch/caller-links/{link_id}/revoke",
    response_model=CallerLinkView,
    summary="End a caller's link now: the page refuses it from then on",
    responses=error_responses(401, 403, 404),
)
async def revoke_caller_link(link_id: str, runtime: RuntimeDep, actor: AnyDispatcher) -> dict[str, Any]:
    return await links.revoke(runtime, actor, link_id)


@router.post(
    "/dispatch/reports/{report_id}/forward",
    response_model=ReportSummary,
    summary="Forward a report held for review",
    responses=error_responses(401, 403, 404, 409),
)
async def forward_report(report_id: str, runtime: RuntimeDep, actor: AnyDispatcher) -> dict[str, Any]:
    return await decisions.decide_review(runtime, actor, report_id, forward=True)


@router.post(
    "/dispatch/reports/{report_id}/reject",
    response_model=ReportSummary,
    summary="Reject a report held for review",
    responses=error_responses(401, 403, 404, 409),
)
async def reject_report(report_id: str, runtime: RuntimeDep, actor: AnyDispatcher) -> dict[str, Any]:
    return await decisions.decide_review(runtime, actor, report_id, forward=False)


class MergeRequest(BaseModel):
    incident_ids: list[Annotated[str, Field(max_length=36)]] = Field(
        min_length=1, max_length=20, description="the incidents that are the same event as this one"
    )


@router.post(
    "/dispatch/incidents/{incident_id}/merge",
    response_model=IncidentSummary,
    summary="Merge incidents that are one event: the open "
    "ones become one (the one the meldkamer accepted, else the oldest, goes on), also one a dispatcher "
    "split off before; the meldkamer and the citizens are told (audited). Returns the incident that goes "
    "on",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def merge_incidents(
    incident_id: str, merge: MergeRequest, runtime: RuntimeDep, actor: AnyDispatcher
) -> dict[str, Any]:
    return await decisions.merge_incidents(runtime, actor, incident_id, merge.incident_ids)


@router.post(
    "/dispatch/reports/{report_id}/split",
    response_model=IncidentSummary,
    summary="Split a report off its incident, as another event: "
    "it goes to the meldkamer as a new incident of its own, the old incident is told, and verification's "
    "merges keep the two apart (audited). Returns the new incident",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def split_report(report_id: str, runtime: RuntimeDep, actor: AnyDispatcher) -> dict[str, Any]:
    return await decisions.split_report(runtime, actor, report_id)


@router.get(
    "/dispatch/delivery",
    response_model=DeliveryOverview,
    summary="Delivery states, outbox, and the circuit state per destination",
    responses=AUTH_ERRORS,
)
async def get_delivery(runtime: RuntimeDep, _actor: AnyDispatcher) -> dict[str, Any]:
    return await deliveries.delivery_overview(runtime)


@router.get(
    "/dispatch/dead-letters",
    response_model=list[DeadLetter],
    response_model_exclude_unset=True,  # a verification job's report_id and urgent: only on those
    summary="Messages the bridge gave up on, and verification jobs given up on "
    "(ids starting `verification-job:`; their reports wait for a verdict), each with the reason",
    responses=AUTH_ERRORS,
)
async def list_dead_letters(runtime: RuntimeDep, _actor: AnyDispatcher, limit: Limit = 100) -> list[dict[str, Any]]:
    return await deliveries.dead_letters(runtime, limit)


@router.post(
    "/dispatch/dead-letters/{message_id}/replay",
    response_model=ReplayQueued,
    summary="Send a dead letter again, or try a dead verification job again (supervisors; audited)",
    responses=error_responses(401, 403, 404, 503),
)
async def replay_dead_letter(message_id: str, runtime: RuntimeDep, actor: Supervisor) -> dict[str, str]:
    return await deliveries.replay(runtime, actor, message_id)


@router.get(
    "/dispatch/audit",
    response_model=list[AuditEntry],
    summary="The audit log: who viewed or did what, when (supervisors)",
    responses=AUTH_ERRORS,
)
async def list_audit_entries(
    runtime: RuntimeDep, _actor: Supervisor, target_id: str | None = None, limit: Limit = 100
) -> list[dict[str, Any]]:
    return await listings.audit_log(runtime, target_id, limit)


class HoldRequest(BaseModel):
    reason: str = Field(
        min_length=1, max_length=300, examples=["Zaak 2026-0412: aangifte mishandeling, OM vraagt beelden"]
    )


@router.get(
    "/dispatch/reports/{report_id}/custody",
    response_model=CustodyRecord,
    summary="The chain of custody of a report and its photos: "
    "every entry about it in the audit chains of intake, verification and the bridge (supervisors; "
    "audited)",
    responses=error_responses(401, 403, 404),
)
async def get_report_custody(report_id: str, runtime: RuntimeDep, actor: Supervisor) -> dict[str, Any]:
    return await evidence.custody(runtime, actor, report_id)


@router.get(
    "/dispatch/reports/{report_id}/photos/{photo_id}/custody",
    response_model=CustodyRecord,
    summary="The chain of custody of one "
    "photo: received, examined, forwarded, fetched, viewed, exported, deleted (supervisors; audited)",
    responses=error_responses(401, 403, 404),
)
async def get_photo_custody(report_id: str, photo_id: str, runtime: RuntimeDep, actor: Supervisor) -> dict[str, Any]:
    return await evidence.custody(runtime, actor, report_id, photo_id)


@router.post(
    "/dispatch/incidents/{incident_id}/legal-hold",
    response_model=HoldState,
    summary="Mark an incident as evidence: its reports are kept everywhere until the hold is lifted "
    "(supervisors; audited)",
    responses=error_responses(401, 403, 404, 422, 503),
)
async def set_legal_hold(incident_id: str, hold: HoldRequest, runtime: RuntimeDep, actor: Supervisor) -> dict[str, Any]:
    return await holds.set_hold(runtime, actor, incident_id, hold.reason)


@router.post(
    "/dispatch/incidents/{incident_id}/legal-hold/lift",
    response_model=HoldState,
    summary="Lift an incident's legal hold: retention applies to its reports again (supervisors; audited)",
    responses=error_responses(401, 403, 404, 503),
)
async def lift_legal_hold(incident_id: str, runtime: RuntimeDep, actor: Supervisor) -> dict[str, Any]:
    return await holds.lift_hold(runtime, actor, incident_id)


@router.post(
    "/dispatch/incidents/{incident_id}/evidence-export",
    response_class=FileResponse,
    summary="An evidence package for the prosecutor (OM): originals, hashes, sanitised copies, "
    "verification with reasons, custody and audit entries, under a signed manifest (supervisors; "
    "audited). Check it offline with `python -m burgermelding_shared.evidence verify <file>`. What "
    "retention removed before the export (photos, whole reports) is listed in the signed manifest "
    "(`removed_by_retention`) and in the headers `Evidence-Complete` and `Evidence-Removed-By-Retention`.",
    responses={200: {"content": {"application/zip": {}}}, **error_responses(401, 403, 404, 409, 503)},
)
async def export_evidence(incident_id: str, runtime: RuntimeDep, actor: Supervisor) -> FileResponse:
    path, signed = await evidence.export_evidence(runtime, actor, incident_id)
    return FileResponse(
        path,
        media_type="application/zip",
        filename=path.name,
        headers={
            "Cache-Control": "no-store",
            "Evidence-Manifest-SHA256": signed["manifest_sha256"],
            "Evidence-Export-Id": signed["export_id"],
            # Said to the supervisor as in the package: what retention removed before.
            "Evidence-Complete": "false" if signed["removed_by_retention"] else "true",
            "Evidence-Removed-By-Retention": removed_summary(signed["removed_by_retention"]),
        },
        background=BackgroundTask(shutil.rmtree, path.parent, True),
    )


def removed_summary(removed: list[dict[str, Any]], most: int = 20) -> str:
    """The references retention removed something of, for a header: the first `most`, then how many more (a
    header must stay short enough for every proxy; the manifest lists them all)."""
    references = sorted({r["reference"] or r["report_id"] for r in removed})
    more = f", and {len(references) - most} more (see the manifest)" if len(references) > most else ""
    return ", ".join(references[:most]) + more


@router.get(
    "/dispatch/deletions",
    response_model=list[DeletionRecord],
    response_model_exclude_unset=True,  # `removed` names only the parts a deletion concerned
    summary="The deletion log: what retention (or a citizen) removed, when and "
    "under which rule, nothing personal (supervisors)",
    responses=AUTH_ERRORS,
)
async def list_deletions(
    runtime: RuntimeDep, _actor: Supervisor, report_id: str | None = None, limit: Limit = 100
) -> list[dict[str, Any]]:
    async with runtime.db.sessions() as session:
        query = select(deletions).order_by(deletions.c.id.desc()).limit(limit)
        if report_id:
            query = query.where(deletions.c.report_id == report_id)
        rows = (await session.execute(query)).mappings().all()
    return [{**row, "removed": json.loads(row["removed"])} for row in rows]


@router.post(
    "/dispatch/users/{username}/{change}",
    response_model=AccountState,
    summary="Disable or enable a dispatcher's account, which ends every token and console session issued "
    "to it before, or lift its name's login ceiling (`unlock`: tries from sources it has not logged in "
    "from lately are let through again, e.g. once a guessing campaign is blocked upstream; `locked` says "
    "whether the ceiling holds). Supervisors; audited.",
    responses=error_responses(401, 403, 404, 422),
)
async def change_account(
    username: str, change: Literal["disable", "enable", "unlock"], runtime: RuntimeDep, actor: Supervisor
) -> dict[str, object]:
    return await users.change_account(runtime, actor, username, change)
