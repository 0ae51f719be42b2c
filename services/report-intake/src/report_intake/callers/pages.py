"""The caller's page: `/c/{token}` on intake's public host, the link in the caller's SMS.

Plain HTML in the caller's language (the dispatcher's choice; a link switches), no script needed, nothing from
another host (a Content-Security-Policy says so to the browser too). First the consent screen: what will be
shared, with whom, for how long. A refusal is recorded and the dispatcher sees it; so is consent. A link that is
unknown, ended by the dispatcher or out of time gets a page saying so, and nothing is stored for it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from burgermelding_shared.app import RuntimeDep
from burgermelding_shared.timeutil import utcnow
from report_intake.callers import links
from report_intake.callers.texts import TEXTS
from report_intake.config import IntakeSettings
from report_intake.models import CallerLink

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token is in the path: never sent on to anyone
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
}
ENDED_STATUS = {links.Standing.UNKNOWN: 404, links.Standing.REVOKED: 410, links.Standing.EXPIRED: 410}


def language_of(asked: str | None, link: CallerLink | None) -> str:
    if asked in TEXTS:
        return str(asked)
    return link.language if link is not None and link.language in TEXTS else "nl"


def kept_days(settings: IntakeSettings) -> int:
    """How long a caller's images are kept at most, as the retention rules say (the first rule that removes a
    report's images whatever became of it)."""
    days = [r.after_days for r in settings.retention_rules if r.outcome == "any" and r.action in ("anonymise", "purge")]
    return round(min(days)) if days else 365


def clock(moment: datetime) -> str:
    return moment.astimezone(AMSTERDAM).strftime("%H:%M")


def render(request: Request, name: str, lang: str, heading_key: str, *, status: int = 200, **context: Any) -> Response:
    texts = TEXTS[lang]
    values = {"lang": lang, "other": "en" if lang == "nl" else "nl", "t": texts, "heading": texts[heading_key]}
    return templates.TemplateResponse(
        request, name, {**values, **context}, status_code=status, headers=HEADERS, media_type="text/html"
    )


def ended(request: Request, standing: links.Standing, lang: str) -> Response:
    key = standing.value
    return render(
        request, "ended.html", lang, f"{key}_title", status=ENDED_STATUS[standing], text=TEXTS[lang][f"{key}_text"]
    )


@router.get("/c/{token}", response_class=HTMLResponse)
async def caller_page(token: str, request: Request, runtime: RuntimeDep, lang: str | None = None) -> Response:
    async with runtime.db.transaction() as session:
        link = await links.find(session, token)
        standing = links.standing(link)
        language = language_of(lang, link)
        if standing != links.Standing.LIVE or link is None:
            return ended(request, standing, language)
        if link.opened_at is None:
            link.opened_at = utcnow()
            await links.tell_bridge(session, link, "opened")
        common: dict[str, Any] = {
            "ask": link.ask,
            "link_lang": link.language,
            "action": f"/c/{token}/consent",
            "valid_until": TEXTS[language]["valid_until"].format(until=clock(link.expires_at)),
        }
    if link.consent == "given":
        return render(request, "share.html", language, "share_title", **common)
    if link.consent == "refused":
        return render(request, "refused.html", language, "refused_title", **common)
    how_long = TEXTS[language]["how_long_text"].format(days=kept_days(runtime.settings))
    return render(request, "consent.html", language, "title", how_long=how_long, **common)


@router.post("/c/{token}/consent", response_class=HTMLResponse)
async def consent(token: str, request: Request, runtime: RuntimeDep) -> Response:
    form = await request.form()
    decision, asked = str(form.get("decision", "")), str(form.get("lang", ""))
    async with runtime.db.transaction() as session:
        link = await links.find(session, token)
        standing = links.standing(link)
        language = language_of(asked, link)
        if standing != links.Standing.LIVE or link is None:
            return ended(request, standing, language)
        answer = {"give": "given", "refuse": "refused"}.get(decision)
        if answer is not None and link.consent != answer:
            link.consent, link.consent_at = answer, utcnow()
            await links.tell_bridge(session, link, "consent_given" if answer == "given" else "consent_refused")
    # After a POST, the page itself (a reload then asks nothing again).
    return RedirectResponse(f"/c/{token}?lang={language}", status_code=303, headers={"Cache-Control": "no-store"})


@router.api_route("/c/{anything:path}", methods=["GET", "POST"], response_class=HTMLResponse)
async def not_a_link(anything: str, request: Request, lang: str | None = None) -> Response:
    """Whatever else is asked under /c/ (a link cut off or pasted wrong, a path someone tries): the page for a
    link that does not work, in HTML like the rest, never the API's JSON."""
    return ended(request, links.Standing.UNKNOWN, language_of(lang, None))
