"""The dispatchers' API (`/v1/dispatch`), behind OAuth2 bearer tokens with roles."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from burgermelding_shared.app import RuntimeDep
from burgermelding_shared.errors import error_responses
from burgermelding_shared.ratelimit import client_address
from dispatch_bridge import auth, desk
from dispatch_bridge.auth import AnyDispatcher, Supervisor

router = APIRouter(prefix="/v1", tags=["dispatchers"])
AUTH_ERRORS = error_responses(401, 403)
Limit = Annotated[int, Query(ge=1, le=500)]


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105  (the OAuth2 token type, not a secret)


class Question(BaseModel):
    text: str = Field(min_length=1, max_length=2000, examples=["Welke kant liep de verdachte op?"])


@router.post("/auth/token", response_model=Token, summary="Log in (OAuth2 password flow); wrong passwords in a "
             "row make the next try wait, and lock the account after more (a supervisor lifts it)",
             responses=error_responses(401, 429, examples={401: [auth.wrong_credentials()],
                                                          429: [auth.login_throttled(4)]}))
async def token(form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request,
                runtime: RuntimeDep) -> Token:
    return Token(access_token=await auth.log_in(runtime, form.username, form.password, client_address(request)))


@router.get("/dispatch/incidents", summary="Incidents with their reports and the event they describe together "
            "(witnesses, time span, spread, photos best first), most urgent first (the view is audited)",
            responses=AUTH_ERRORS)
async def incidents(runtime: RuntimeDep, actor: AnyDispatcher, delivery_state: str | None = None,
                    priority: Annotated[int | None, Query(ge=1, le=3)] = None, category: str | None = None,
                    include_merged: bool = False, limit: Limit = 100) -> list[dict[str, Any]]:
    return await desk.list_incidents(runtime, actor, desk.IncidentFilter(delivery_state, priority, category,
                                                                         include_merged), limit)


@router.get("/dispatch/reports", summary="Reports with their verification summary, group and incident links "
            "(the view is audited)", responses=AUTH_ERRORS)
async def reports(runtime: RuntimeDep, actor: AnyDispatcher, state: str | None = None, verdict: str | None = None,
                  category: str | None = None, in_progress: bool | None = None, group_id: str | None = None,
                  limit: Limit = 100) -> list[dict[str, Any]]:
    return await desk.list_reports(runtime, actor, desk.ReportFilter(state, verdict, category, in_progress, group_id),
                                   limit)


@router.get("/dispatch/reports/{report_id}", summary="One report in full (the view is audited)",
            responses=error_responses(401, 403, 404))
async def report(report_id: str, runtime: RuntimeDep, actor: AnyDispatcher) -> dict[str, Any]:
    return await desk.view_report(runtime, actor, report_id)


@router.get("/dispatch/reports/{report_id}/photos/{photo_id}", response_class=Response,
            summary="A photo: the sanitised copy, or with `original=true` the evidence (supervisors only)",
            responses={200: {"content": {"image/jpeg": {}}}, **error_responses(401, 403, 404, 409)})
async def photo(report_id: str, photo_id: str, runtime: RuntimeDep, actor: AnyDispatcher,
                original: bool = False) -> Response:
    data, content_type = await desk.photo(runtime, actor, report_id, photo_id, original)
    return Response(data, media_type=content_type, headers={"Cache-Control": "no-store"})


@router.post("/dispatch/reports/{report_id}/questions", status_code=201, summary="Ask the citizen a question",
             responses=error_responses(401, 403, 404, 409, 422))
async def ask(report_id: str, question: Question, runtime: RuntimeDep, actor: AnyDispatcher) -> dict[str, Any]:
    return await desk.ask(runtime, actor, report_id, question.text)


@router.post("/dispatch/reports/{report_id}/forward", summary="Forward a report held for review",
             responses=error_responses(401, 403, 404, 409))
async def forward(report_id: str, runtime: RuntimeDep, actor: AnyDispatcher) -> dict[str, Any]:
    return await desk.decide_review(runtime, actor, report_id, forward=True)


@router.post("/dispatch/reports/{report_id}/reject", summary="Reject a report held for review",
             responses=error_responses(401, 403, 404, 409))
async def reject(report_id: str, runtime: RuntimeDep, actor: AnyDispatcher) -> dict[str, Any]:
    return await desk.decide_review(runtime, actor, report_id, forward=False)


@router.get("/dispatch/delivery", summary="Delivery states, outbox, and the circuit state per destination",
            responses=AUTH_ERRORS)
async def delivery(runtime: RuntimeDep, _actor: AnyDispatcher) -> dict[str, Any]:
    return await desk.delivery_overview(runtime)


@router.get("/dispatch/dead-letters", summary="Messages the bridge gave up on, and verification jobs given up on "
            "(ids starting `verification-job:`; their reports wait for a verdict), each with the reason",
            responses=AUTH_ERRORS)
async def dead_letters(runtime: RuntimeDep, _actor: AnyDispatcher, limit: Limit = 100) -> list[dict[str, Any]]:
    return await desk.dead_letters(runtime, limit)


@router.post("/dispatch/dead-letters/{message_id}/replay", summary="Send a dead letter again, or try a dead "
             "verification job again (supervisors; audited)", responses=error_responses(401, 403, 404, 503))
async def replay(message_id: str, runtime: RuntimeDep, actor: Supervisor) -> dict[str, str]:
    return await desk.replay(runtime, actor, message_id)


@router.get("/dispatch/audit", summary="The audit log: who viewed or did what, when (supervisors)",
            responses=AUTH_ERRORS)
async def audit_log(runtime: RuntimeDep, _actor: Supervisor, target_id: str | None = None,
                    limit: Limit = 100) -> list[dict[str, Any]]:
    return await desk.audit_log(runtime, target_id, limit)


class AccountState(BaseModel):
    username: str
    role: str
    disabled: bool
    locked: bool


@router.post("/dispatch/users/{username}/{change}", response_model=AccountState,
             summary="Disable or enable a dispatcher's account, or lift its lockout after too many wrong passwords "
             "(supervisors; audited). Disabling ends the user's tokens at once.",
             responses=error_responses(401, 403, 404, 422))
async def change_account(username: str, change: Literal["disable", "enable", "unlock"], runtime: RuntimeDep,
                         actor: Supervisor) -> dict[str, object]:
    return await auth.change_account(runtime, actor, username, change)
