"""The dispatchers' console (`/console`): server-rendered pages over the same desk functions as the API.

Every page is a plain HTML form or link, so it works by keyboard and without script; `console.js` adds the live
parts (the feed, the signal for a new urgent incident, the 112 alarm). Changes are POST forms carrying the
session's CSRF token and end in a redirect back to the page (post/redirect/get), with what happened in the URL.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from burgermelding_shared.app import Runtime, RuntimeDep
from burgermelding_shared.burgernet import Area, Circle
from burgermelding_shared.categories import CATEGORIES
from burgermelding_shared.contracts import PhotoRef
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.ratelimit import client_address
from burgermelding_shared.timeutil import utcnow
from burgermelding_shared.urgency import MeldkamerPriority
from burgermelding_shared.videos import COMPATIBLE_CODECS, COMPATIBLE_TYPE
from dispatch_bridge.accounts import logins
from dispatch_bridge.burgernet import actions
from dispatch_bridge.burgernet.actions import ActionRequest, Cancellation, Closing
from dispatch_bridge.callers import links
from dispatch_bridge.console import live, sessions, views
from dispatch_bridge.console.sessions import ConsoleUser, FeedUser, SupervisorUser, User
from dispatch_bridge.console.texts import DUTCH_TIME, LOOKING_FOR, STATES, Texts
from dispatch_bridge.desk import decisions, deliveries, listings
from dispatch_bridge.records import evidence
from dispatch_bridge.states import DeliveryState, ReportState

router = APIRouter(prefix="/console", include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
FEED_KEEPALIVE_SECONDS = 15.0
FEED_SESSION_CHECK_SECONDS = 5.0
DELIVERY_STATES = tuple(DeliveryState)


def language_of(request: Request, user: ConsoleUser | None = None) -> str:
    wanted = request.query_params.get("lang")
    if wanted in sessions.LANGUAGES:
        return wanted
    if user is not None:
        return user.language
    cookie = request.cookies.get(sessions.LANGUAGE_COOKIE)
    return cookie if cookie in sessions.LANGUAGES else "nl"


async def page(
    request: Request, template: str, user: ConsoleUser | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    language = language_of(request, user)
    if user is not None and language != user.language:
        await sessions.set_language(request.app.state.runtime, user, language)
    response = templates.TemplateResponse(
        request,
        template,
        {
            "t": Texts(language),
            "lang": language,
            "user": user,
            "now": utcnow(),
            "path": request.url.path,
            "notice": request.query_params.get("done"),
            "problem": problem_shown(request, user),
            **context,
        },
        status_code=status_code,
    )
    sessions.set_cookie(response, sessions.LANGUAGE_COOKIE, language, max_age=365 * 86400)
    return response


def back_to(url: str, user: ConsoleUser, problem: str | None = None) -> RedirectResponse:
    """Back to the page, saying the change was done, or what stood in its way. The words travel in the URL,
    sealed with the session's own secret so that a link made by someone else cannot put words on our page."""
    outcome = {"done": "1"} if problem is None else {"problem": problem, "seal": seal(user, problem)}
    return RedirectResponse(f"{url}?{urlencode(outcome)}", status_code=303)


def seal(user: ConsoleUser, problem: str) -> str:
    return hmac.new(user.csrf_token.encode(), problem.encode(), hashlib.sha256).hexdigest()[:32]


def problem_shown(request: Request, user: ConsoleUser | None) -> str | None:
    problem, sealed = request.query_params.get("problem"), request.query_params.get("seal", "")
    if problem is None or user is None or not hmac.compare_digest(sealed.encode(), seal(user, problem).encode()):
        return None
    return problem


def problem_text(error: ServiceError, language: str) -> str:
    return error.detail_nl if language == "nl" else error.detail


async def checked(request: Request, user: ConsoleUser) -> dict[str, Any]:
    """The form of a change, after its CSRF token and origin are checked."""
    form = dict(await request.form())
    sessions.check_csrf(
        request, user.csrf_token, str(form.get("csrf_token") or "") or request.headers.get("x-csrf-token")
    )
    return form


async def act(request: Request, user: ConsoleUser, url: str, change: Any) -> RedirectResponse:
    """Run a change and go back to the page with its outcome (or its problem, in the dispatcher's language)."""
    try:
        await change
    except ServiceError as exc:
        return back_to(url, user, problem=problem_text(exc, user.language))
    return back_to(url, user)


# ---- login and session ------------------------------------------------------------------------------------


@router.get("", response_class=RedirectResponse)
async def home() -> RedirectResponse:
    return RedirectResponse("/console/incidents", status_code=303)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, reason: str | None = None) -> HTMLResponse:
    token = sessions.new_login_token()
    response = await page(request, "login.html", None, login_token=token, reason=reason)
    sessions.set_cookie(response, sessions.LOGIN_COOKIE, token, max_age=1800)
    return response


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    runtime: RuntimeDep,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    sessions.check_csrf(request, request.cookies.get(sessions.LOGIN_COOKIE) or "", csrf_token)
    language = language_of(request)
    try:
        good = await logins.authenticate(runtime, username, password, client_address(request))
        await sessions.end_cookie(runtime, request.cookies.get(sessions.SESSION_COOKIE))  # this browser's old one
        # At the epoch the password was checked at: an account changed since gets no session (401).
        token, _csrf = await sessions.start(runtime, good, language)
    except ServiceError as exc:
        # 401; 429 and 503 with Retry-After, as the API says them (the words, with the wait, in the page's
        # language; the header for whatever reads it).
        login_token = sessions.new_login_token()
        response = await page(
            request,
            "login.html",
            None,
            status_code=exc.status_code,
            login_token=login_token,
            login_problem=problem_text(exc, language),
            username=username[:64],
        )
        if exc.headers and "Retry-After" in exc.headers:
            response.headers["Retry-After"] = exc.headers["Retry-After"]
        sessions.set_cookie(response, sessions.LOGIN_COOKIE, login_token, max_age=1800)
        return response
    to_the_list = RedirectResponse("/console/incidents", status_code=303)
    sessions.set_cookie(to_the_list, sessions.SESSION_COOKIE, token)
    to_the_list.delete_cookie(sessions.LOGIN_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return to_the_list


@router.post("/logout")
async def logout(request: Request, runtime: RuntimeDep, user: User) -> RedirectResponse:
    await checked(request, user)
    await sessions.end(runtime, user)
    response = RedirectResponse("/console/login?reason=ended", status_code=303)
    response.delete_cookie(sessions.SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response


@router.post("/activity", status_code=204)
async def activity(request: Request, user: User) -> Response:
    """The dispatcher pressed a key or clicked: their session stays on (the dependency touched it)."""
    await checked(request, user)
    return Response(status_code=204)


# ---- the incident list and the live feed ------------------------------------------------------------------


Priority = Annotated[MeldkamerPriority | None, Query()]
# The form's "all" is an empty value; anything else must be a delivery state (else 422).
DeliveryStateFilter = Annotated[str | None, Query(pattern="^(" + "|".join(DeliveryState) + ")?$")]
# Which incidents by the meldkamer's status: the open ones unless asked otherwise (after a busy hour the closed
# ones would bury them). A plain query parameter, so the links that choose it work without script.
SHOWS: dict[str, bool | None] = {"open": False, "closed": True, "all": None}
Show = Annotated[Literal["open", "closed", "all"], Query()]


def incident_filter(
    delivery_state: DeliveryStateFilter = None,
    priority: Priority = None,
    category: str | None = None,
    include_merged: bool = False,
    show: Show = "open",
) -> listings.IncidentFilter:
    """The list's filters as its page, its live rows and its map ask for them."""
    return listings.IncidentFilter(
        DeliveryState(delivery_state) if delivery_state else None,
        priority,
        category or None,
        include_merged,
        SHOWS[show],
    )


Filters = Annotated[listings.IncidentFilter, Depends(incident_filter)]


def show_of(filters: listings.IncidentFilter) -> str:
    return next(name for name, closed in SHOWS.items() if closed == filters.closed)


def chosen(filters: listings.IncidentFilter, page_url: str) -> dict[str, Any]:
    """What a page listing incidents shows of its filters: which incidents (open, closed, all) with a link to
    each choice keeping the other filters, and the query its live parts and map ask with."""
    links = {name: f"{page_url}?{filter_query(replace(filters, closed=closed))}" for name, closed in SHOWS.items()}
    return {"filters": filters, "show": show_of(filters), "show_links": links, "query": filter_query(filters)}


def filter_query(filters: listings.IncidentFilter) -> str:
    """The filters as a query string: for the live rows and the map's data of the page that shows them."""
    asked = {
        "delivery_state": filters.delivery_state.value if filters.delivery_state else None,
        "priority": int(filters.priority) if filters.priority else None,
        "category": filters.category,
        "include_merged": "true" if filters.include_merged else None,
        "show": show_of(filters),
    }
    return urlencode({k: v for k, v in asked.items() if v is not None})


@router.get("/incidents", response_class=HTMLResponse)
async def incident_list(request: Request, runtime: RuntimeDep, user: User, filters: Filters) -> HTMLResponse:
    """The incidents and, on a wide screen, the map beside them; the reports held for review below."""
    shown = await listings.list_incidents(runtime, user.actor, filters, 200)
    return await page(
        request,
        "incidents.html",
        user,
        incidents=shown,
        held=await held_reports(runtime, user),
        categories=CATEGORIES,
        delivery_states=DELIVERY_STATES,
        **chosen(filters, "/console/incidents"),
        **map_settings(runtime),
    )


@router.get("/incidents/rows", response_class=HTMLResponse)
async def incident_rows(request: Request, runtime: RuntimeDep, user: FeedUser, filters: Filters) -> HTMLResponse:
    """The list's rows alone, fetched by the page when the feed says something changed."""
    shown = await listings.list_incidents(runtime, user.actor, filters, 200)
    return await page(request, "_incident_rows.html", user, incidents=shown)


@router.get("/events")
async def events(request: Request, runtime: RuntimeDep, user: FeedUser) -> StreamingResponse:
    """Server-sent events: `desk` when something changed (with the open urgent incidents and those past the
    112 deadline), `session` when the session ended. A comment every 15 s keeps proxies from closing it."""
    feed = live.feed_of(runtime)
    cookie = request.cookies.get(sessions.SESSION_COOKIE)
    if not feed.admit(user.session_digest):
        raise ServiceError(
            429,
            "too_many_feeds",
            f"this session has {live.FEEDS_PER_SESSION} live feeds open already: close a tab",
            detail_nl=f"deze sessie heeft al {live.FEEDS_PER_SESSION} live-verbindingen open: sluit een tabblad",
            headers={"Retry-After": "5"},
        )
    digest = user.session_digest

    async def stream() -> Any:
        seen: str | None = None
        checked_at = asyncio.get_running_loop().time()
        yield "retry: 2000\n\n"
        try:
            while not await request.is_disconnected():
                snapshot = await feed.wait(seen, FEED_SESSION_CHECK_SECONDS)
                if snapshot is not None:
                    seen = snapshot.version
                    yield f"event: desk\ndata: {snapshot.event()}\n\n"
                if asyncio.get_running_loop().time() - checked_at >= FEED_SESSION_CHECK_SECONDS:
                    checked_at = asyncio.get_running_loop().time()
                    try:
                        await sessions.find(runtime, cookie, activity=False)
                    except sessions.LoginRequired as ended:
                        yield f"event: session\ndata: {ended.reason}\n\n"
                        return
                    yield ": still here\n\n"
        finally:
            feed.release(digest)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )


# ---- one incident -----------------------------------------------------------------------------------------


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
async def incident_page(request: Request, runtime: RuntimeDep, user: User, incident_id: str) -> HTMLResponse:
    shown = await views.incident_page(runtime, user.actor, incident_id)
    return await page(request, "incident.html", user, **shown, looking_for=LOOKING_FOR)


@router.get("/incidents/{incident_id}/reports", response_class=HTMLResponse)
async def incident_reports(request: Request, runtime: RuntimeDep, user: FeedUser, incident_id: str) -> HTMLResponse:
    """The incident's reports and messages alone, fetched by the page when the feed says something changed."""
    shown = await views.incident_page(runtime, user.actor, incident_id)
    return await page(request, "_incident_reports.html", user, **shown, looking_for=LOOKING_FOR)


@router.get("/reports/held", response_class=HTMLResponse)
async def held_rows(request: Request, runtime: RuntimeDep, user: FeedUser) -> HTMLResponse:
    """The reports held for review (they have no incident yet), fetched by the list page when the desk changes."""
    return await page(request, "_held_rows.html", user, held=await held_reports(runtime, user))


async def held_reports(runtime: Any, user: ConsoleUser) -> list[dict[str, Any]]:
    held = listings.ReportFilter(state=ReportState.HELD_FOR_REVIEW)
    return await listings.list_reports(runtime, user.actor, held, 100)


@router.get("/reports/{report_id}", response_class=HTMLResponse)
async def report_page(request: Request, runtime: RuntimeDep, user: User, report_id: str) -> HTMLResponse:
    return await page(request, "report.html", user, **await views.report_page(runtime, user.actor, report_id))


@router.get("/reports/{report_id}/photos/{photo_id}")
async def photo(runtime: RuntimeDep, user: FeedUser, report_id: str, photo_id: str, original: bool = False) -> Response:
    # (FeedUser: the browser fetching an image again is not the dispatcher doing something.)
    headers = {"Cache-Control": "no-store", "Content-Disposition": "inline"}
    return await listings.photo_answer(runtime, user.actor, report_id, photo_id, original, headers)


@router.get("/reports/{report_id}/photos/{photo_id}/video")
async def video(
    request: Request,
    runtime: RuntimeDep,
    user: FeedUser,
    report_id: str,
    photo_id: str,
    copy: listings.VideoCopy = "playable",
) -> Response:
    return await listings.video_answer(request, runtime, user.actor, report_id, photo_id, copy)


@router.get("/reports/{report_id}/photos/{photo_id}/view", response_class=HTMLResponse)
async def photo_page(
    request: Request, runtime: RuntimeDep, user: User, report_id: str, photo_id: str, original: bool = False
) -> HTMLResponse:
    """A photo at full size inside the console (its alarms stay in view); the original only for supervisors."""
    if original and not user.is_supervisor:
        raise ServiceError(
            403,
            "forbidden",
            "only a supervisor may see the original photo",
            detail_nl="alleen een supervisor mag de originele foto zien",
        )
    back = request.query_params.get("back", "")
    ref = await listings.media_ref(runtime, report_id, photo_id)
    return await page(
        request,
        "photo.html",
        user,
        report_id=report_id,
        photo_id=photo_id,
        original=original,
        back=back if BACK.fullmatch(back) else "",
        kind=ref.kind if ref else "photo",
        p=listings.photo_view(ref) if ref else {},
    )


def incident_url(incident_id: str) -> str:
    return f"/console/incidents/{quote(incident_id[:36], safe='')}"


BACK = re.compile(r"/console/(incidents|reports)/[0-9A-Za-z-]{1,36}")


def back_of(form: dict[str, Any]) -> str:
    """Where a change on a report returns to: the page it was made on, only ever one of ours."""
    back = str(form.get("back") or "")
    return back if BACK.fullmatch(back) else "/console/incidents"


@router.post("/reports/{report_id}/question")
async def ask(request: Request, runtime: RuntimeDep, user: User, report_id: str) -> RedirectResponse:
    form = await checked(request, user)
    return await ask_citizen(request, runtime, user, report_id, form, back_of(form))


@router.post("/incidents/{incident_id}/question")
async def ask_from_panel(request: Request, runtime: RuntimeDep, user: User, incident_id: str) -> RedirectResponse:
    """The incident page's side panel: the same question, to the report chosen in the form."""
    form = await checked(request, user)
    report_id = str(form.get("report_id") or "")[:36]
    return await ask_citizen(request, runtime, user, report_id, form, incident_url(incident_id))


@router.post("/incidents/{incident_id}/caller-links")
async def send_caller_link(request: Request, runtime: RuntimeDep, user: User, incident_id: str) -> RedirectResponse:
    """The side panel's "images from a caller": a one-time link by SMS (the API's sendCallerLink)."""
    form = await checked(request, user)
    url = incident_url(incident_id) + "#caller-links"
    phone, ask = str(form.get("phone") or "")[:32], str(form.get("ask") or "").strip()
    language = "en" if form.get("language") == "en" else "nl"
    if not 1 <= len(ask) <= 500:
        return back_to(url, user, problem=Texts(user.language)("caller_ask") + ": 1–500")
    if not await sessions.first_submission(runtime, user, form):
        return back_to(url, user)  # sent twice (a double click): one SMS
    return await act(request, user, url, links.send_link(runtime, user.actor, incident_id, phone, language, ask))


@router.post("/caller-links/{link_id}/revoke")
async def revoke_caller_link(request: Request, runtime: RuntimeDep, user: User, link_id: str) -> RedirectResponse:
    form = await checked(request, user)
    return await act(request, user, back_of(form), links.revoke(runtime, user.actor, link_id))


async def ask_citizen(
    request: Request, runtime: Runtime, user: ConsoleUser, report_id: str, form: dict[str, Any], url: str
) -> RedirectResponse:
    text = str(form.get("text") or "").strip()
    if not 1 <= len(text) <= 2000:
        return back_to(url, user, problem=Texts(user.language)("question") + ": 1–2000")
    if not await sessions.first_submission(runtime, user, form):
        return back_to(url, user)  # sent twice (a double click): asked once
    return await act(request, user, url, decisions.ask(runtime, user.actor, report_id, text))


@router.post("/reports/{report_id}/{decision}")
async def decide(request: Request, runtime: RuntimeDep, user: User, report_id: str, decision: str) -> RedirectResponse:
    form = await checked(request, user)
    url = back_of(form)
    if decision == "split":
        try:
            split = await decisions.split_report(runtime, user.actor, report_id)
        except ServiceError as exc:
            return back_to(url, user, problem=problem_text(exc, user.language))
        return back_to(incident_url(split["incident_id"]), user)
    if decision not in ("forward", "reject"):
        raise ServiceError(404, "not_found", "no such action", detail_nl="deze handeling bestaat niet")
    return await act(
        request, user, url, decisions.decide_review(runtime, user.actor, report_id, forward=decision == "forward")
    )


@router.post("/incidents/{incident_id}/merge")
async def merge(request: Request, runtime: RuntimeDep, user: User, incident_id: str) -> RedirectResponse:
    form = await checked(request, user)
    other = str(form.get("other_id") or "").strip()[:36]
    if not other or other == incident_id:
        return back_to(incident_url(incident_id), user, problem=Texts(user.language)("merge_with") + "?")
    try:
        survivor = await decisions.merge_incidents(runtime, user.actor, incident_id, [other])
    except ServiceError as exc:
        return back_to(incident_url(incident_id), user, problem=problem_text(exc, user.language))
    return back_to(incident_url(survivor["incident_id"]), user)


@router.post("/incidents/{incident_id}/burgernet")
async def start_burgernet(request: Request, runtime: RuntimeDep, user: User, incident_id: str) -> RedirectResponse:
    form = await checked(request, user)
    url = incident_url(incident_id)
    try:
        action = ActionRequest.model_validate(
            {  # the form's words, checked by the model as the API's JSON is
                "incident_id": incident_id,
                "looking_for": str(form.get("looking_for") or ""),
                "headline_nl": str(form.get("headline_nl") or ""),
                "description_nl": str(form.get("description_nl") or ""),
                "area": Area(
                    circle=Circle(
                        lat=float(str(form.get("lat"))),
                        lon=float(str(form.get("lon"))),
                        radius_m=float(str(form.get("radius_m") or 0)),
                    )
                ),
                "duration_minutes": int(str(form["duration_minutes"]))
                if str(form.get("duration_minutes") or "").strip()
                else None,
            }
        )  # left empty: the bridge's default; 0 or less: refused, not silently the default
    except (ValidationError, ValueError) as exc:
        return back_to(url, user, problem=_form_problem(exc, user.language))
    if not await sessions.first_submission(runtime, user, form):
        return back_to(url, user)  # sent twice (a double click): started once
    return await act(request, user, url, actions.start_action(runtime, user.actor, action))


@router.post("/burgernet/{action_id}/{ending}")
async def end_burgernet(
    request: Request, runtime: RuntimeDep, user: User, action_id: str, ending: str
) -> RedirectResponse:
    """Close an action with its outcome (any dispatcher), or cancel it (supervisors), as in the API."""
    form = await checked(request, user)
    url = back_of(form)
    try:
        if ending == "close":
            change = actions.close_action(
                runtime, user.actor, action_id, Closing.model_validate({"outcome": str(form.get("outcome") or "")})
            )
        elif ending == "cancel" and user.is_supervisor:
            change = actions.cancel_action(
                runtime, user.actor, action_id, Cancellation(reason=str(form.get("reason") or ""))
            )
        else:
            raise ServiceError(
                403,
                "forbidden",
                "only a supervisor may cancel an action",
                detail_nl="alleen een supervisor mag een actie intrekken",
            )
    except ValidationError as exc:
        return back_to(url, user, problem=_form_problem(exc, user.language))
    return await act(request, user, url, change)


def _form_problem(exc: Exception, language: str) -> str:
    if isinstance(exc, ValidationError):
        where = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        return ("Controleer deze velden: " if language == "nl" else "Check these fields: ") + where
    return "Controleer de getallen in het formulier" if language == "nl" else "Check the numbers in the form"


# ---- the map -----------------------------------------------------------------------------------------------


def map_settings(runtime: Runtime) -> dict[str, Any]:
    settings = runtime.settings
    return {"tile_url": settings.console_tile_url, "tile_attribution": settings.console_tile_attribution}


@router.get("/map", response_class=HTMLResponse)
async def map_page(request: Request, runtime: RuntimeDep, user: User, filters: Filters) -> HTMLResponse:
    """The map at full size (the list page shows it beside the list on a wide screen)."""
    shown = await listings.list_incidents(runtime, user.actor, filters, 200)
    return await page(
        request,
        "map.html",
        user,
        incidents=shown,
        **chosen(filters, "/console/map"),
        **map_settings(runtime),
    )


@router.get("/map/data")
async def map_data(runtime: RuntimeDep, user: FeedUser, filters: Filters) -> JSONResponse:
    """The incidents and their reports' places, for the map (the view is audited as the list is)."""
    shown = await listings.list_incidents(runtime, user.actor, filters, 200)
    places = await views.report_places(runtime, user.actor, [r["report_id"] for i in shown for r in i["reports"]])
    t = Texts(user.language)
    return JSONResponse(
        [
            {
                "label": (t("urgent") + " · " if i["urgent"] else "")
                + t.incident_name(i["category"], i["meldkamer_incident_id"]),
                "place": t.place(i),
                "incident_id": i["incident_id"],
                "priority": i["priority"],
                "category": i["category"],
                "delivery_state": i["delivery_state"],
                "witnesses": (i["event"] or {}).get("witnessCount", 0),
                "centre": (i["event"] or {}).get("centre"),
                "radius_m": (i["event"] or {}).get("radiusMeters", 0),
                "reports": [
                    {"reference": r["reference"], **places[r["report_id"]]}
                    for r in i["reports"]
                    if r["report_id"] in places
                ],
            }
            for i in shown
        ],
        headers={"Cache-Control": "no-store"},
    )


# ---- supervisors ---------------------------------------------------------------------------------------------


@router.get("/supervision", response_class=HTMLResponse)
async def supervision(request: Request, runtime: RuntimeDep, user: SupervisorUser) -> HTMLResponse:
    overview = await deliveries.delivery_overview(runtime)
    letters = await deliveries.dead_letters(runtime, 100)
    return await page(request, "supervision.html", user, overview=overview, letters=letters, states=STATES)


@router.post("/dead-letters/{message_id}/replay")
async def replay(request: Request, runtime: RuntimeDep, user: SupervisorUser, message_id: str) -> RedirectResponse:
    await checked(request, user)
    return await act(request, user, "/console/supervision", deliveries.replay(runtime, user.actor, message_id))


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request,
    runtime: RuntimeDep,
    user: SupervisorUser,
    target_id: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    entries = await listings.audit_log(runtime, target_id or None, 200)
    return await page(request, "audit.html", user, entries=entries, target_id=target_id or "")


@router.get("/reports/{report_id}/photos/{photo_id}/custody", response_class=HTMLResponse)
async def custody(
    request: Request, runtime: RuntimeDep, user: SupervisorUser, report_id: str, photo_id: str
) -> HTMLResponse:
    record = await evidence.custody(runtime, user.actor, report_id, photo_id)
    return await page(request, "custody.html", user, record=record, report_id=report_id, photo_id=photo_id)


def when(value: datetime | str | None, language: str) -> str:
    """A time as the meldkamer reads it: Dutch local time."""
    if value is None:
        return "–"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    moment = moment.astimezone(DUTCH_TIME)
    return moment.strftime("%d-%m-%Y %H:%M:%S" if language == "nl" else "%Y-%m-%d %H:%M:%S")


def hhmm(value: datetime | str) -> str:
    """A time of day as the meldkamer's clock shows it (the event's first and last sighting)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(DUTCH_TIME).strftime("%H:%M")


def playable_mime(photo: PhotoRef | dict[str, Any]) -> str:
    """A video's playable copy's type with its codec (`video/mp4; codecs="hvc1.1.6.L120.90"`), for <source>; of
    a report's photo as intake sent it, or as the dispatchers' API shows it (listings.photo_view)."""
    view = listings.photo_view(photo) if isinstance(photo, PhotoRef) else photo
    media_type, codecs = view.get("playable_type") or "video/mp4", view.get("playable_codecs")
    return f'{media_type}; codecs="{codecs}"' if codecs else media_type


templates.env.filters["when"] = when
templates.env.filters["playable_mime"] = playable_mime
templates.env.globals["compatible_mime"] = f'{COMPATIBLE_TYPE}; codecs="{COMPATIBLE_CODECS}"'
templates.env.filters["hhmm"] = hhmm
templates.env.globals["nonce"] = sessions.new_nonce  # one per form as rendered (sessions.first_submission)
