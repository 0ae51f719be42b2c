"""The figures page (`/console/figures`, supervisors): what citizen reports bring, per day or week, per category and
region, as server-rendered SVG charts, each with its table beside it and a CSV export of the same rows
(`/console/figures/{chart}.csv`). The figures are counted in `records.figures`; this module draws them."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated

import httpx
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from burgermelding_shared.app import Runtime, RuntimeDep
from burgermelding_shared.categories import CATEGORIES
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.timeutil import utcnow
from dispatch_bridge import peers
from dispatch_bridge.audit import audit
from dispatch_bridge.console.routes import language_of, page
from dispatch_bridge.console.sessions import ConsoleUser, SupervisorUser
from dispatch_bridge.console.texts import Texts
from dispatch_bridge.records import figures
from dispatch_bridge.records.figures import CHARTS, DEFINITIONS, Figure, Filters

router = APIRouter(prefix="/console/figures", include_in_schema=False)
DEFAULT_DAYS = 28
REACH_SECONDS = 4.0  # how long the page waits for intake's reach figures before it shows them as unknown
REACH_AT_ONCE = 8

TEXTS: dict[str, tuple[str, str]] = {  # key: (Dutch, English); the console's own words come from texts.Texts
    "figures_intro": (
        "Wat meldingen van burgers opleveren. Alleen aantallen en tijden; elke grafiek heeft haar tabel "
        "ernaast en een CSV-export met dezelfde rijen.",
        "What citizen reports bring. Counts and durations only; each chart has its table beside it and a CSV "
        "export with the same rows.",
    ),
    "period": ("Per", "Per"),
    "day": ("dag", "day"),
    "week": ("week", "week"),
    "from": ("Van", "From"),
    "to": ("Tot en met", "To"),
    "region": ("Regio (vak van 0,1°)", "Region (0.1° cell)"),
    "csv": ("CSV downloaden", "Download CSV"),
    "definitions": ("Definities", "Definitions"),
    "total": ("totaal", "total"),
    "highest": ("hoogste", "highest"),
    "chart_note": ("De tabel ernaast bevat elke waarde.", "The table beside it has every value."),
    "unplaced": (
        "{n} melding(en) in deze periode hebben geen categorie of regio meer (verwijderd voordat ze een incident "
        "bereikten) en ontbreken daardoor onder dit filter; zonder filter tellen ze mee.",
        "{n} report(s) in this period no longer have a category or region (purged before they reached an "
        "incident) and are missing under this filter; without a filter they count.",
    ),
    "reach_unknown": (
        "Van {n} actie(s) gaf intake het bereik niet (niet bereikbaar): hun bereik ontbreekt in de som.",
        "For {n} action(s) intake did not give the reach (unreachable): it is missing from the sum.",
    ),
    "no_data": ("Niets in deze periode.", "Nothing in this period."),
    # the charts
    "chart_reports": ("Meldingen: ontvangen en wat ermee gebeurde", "Reports: received and what became of them"),
    "chart_latency": (
        "Tijd van de melding tot de meldkamer (seconden)",
        "Time from the report to the meldkamer (seconds)",
    ),
    "chart_witnesses": ("Getuigen (meldingen) per incident", "Witnesses (reports) per incident"),
    "chart_incidents": ("Incidenten: begonnen of aangesloten", "Incidents: started or joined"),
    "chart_burgernet": ("Burgernet-acties: bereik, antwoorden, uitkomst", "Burgernet actions: reach, answers, outcome"),
    "chart_closed": ("Incidenten afgesloten door de meldkamer", "Incidents closed by the meldkamer"),
    # the columns
    "col_period": ("Periode", "Period"),
    "col_received": ("Ontvangen", "Received"),
    "col_forwarded": ("Doorgestuurd", "Forwarded"),
    "col_held_for_review": ("Vastgehouden voor beoordeling", "Held for review"),
    "col_rejected": ("Afgewezen als spam", "Rejected as spam"),
    "col_withdrawn": ("Ingetrokken", "Withdrawn"),
    "col_urgent_n": ("Spoed: n", "Urgent: n"),
    "col_urgent_p50_s": ("Spoed: p50 (s)", "Urgent: p50 (s)"),
    "col_urgent_p90_s": ("Spoed: p90 (s)", "Urgent: p90 (s)"),
    "col_ordinary_n": ("Overig: n", "Ordinary: n"),
    "col_ordinary_p50_s": ("Overig: p50 (s)", "Ordinary: p50 (s)"),
    "col_ordinary_p90_s": ("Overig: p90 (s)", "Ordinary: p90 (s)"),
    "col_incidents": ("Incidenten", "Incidents"),
    "col_reports": ("Meldingen", "Reports"),
    "col_mean_per_incident": ("Gemiddeld per incident", "Mean per incident"),
    "col_median_per_incident": ("Mediaan per incident", "Median per incident"),
    "col_most_in_one": ("Hoogste in één incident", "Most in one incident"),
    "col_incidents_with_2_or_more": ("Incidenten met 2 of meer", "Incidents with 2 or more"),
    "col_started_an_incident": ("Begon een incident", "Started an incident"),
    "col_joined_an_incident": ("Sloot aan bij een incident", "Joined an incident"),
    "col_answered_burgernet": ("Antwoord op Burgernet", "Answered Burgernet"),
    "col_actions": ("Acties", "Actions"),
    "col_reach_installations": ("Bereik (installaties)", "Reach (installations)"),
    "col_reach_unknown": ("Bereik onbekend", "Reach unknown"),
    "col_answers": ("Antwoorden", "Answers"),
    "col_found": ("Gevonden", "Found"),
    "col_arrested": ("Aangehouden", "Arrested"),
    "col_called_off": ("Afgeblazen", "Called off"),
    "col_expired": ("Verlopen", "Expired"),
    "col_cancelled": ("Ingetrokken/geannuleerd", "Cancelled"),
    "col_still_open": ("Nog open", "Still open"),
    "col_closed": ("Afgesloten", "Closed"),
    # the definitions' headings
    "def_general": ("Tellen en bewaren", "Counting and retention"),
    "def_category_region": ("Categorie en regio", "Category and region"),
}


class FigureTexts(Texts):
    """The console's words (`texts.Texts`) and this page's own."""

    def __call__(self, key: str) -> str:
        return TEXTS[key][self.index] if key in TEXTS else super().__call__(key)

    def definition(self, key: str) -> str:
        return DEFINITIONS[key][self.index]

    def period(self, label: str) -> str:
        return self("total") if label == "total" else label


# ---- the filters, from the query ----------------------------------------------------------------------------

Period = Annotated[str, Query(pattern="^(day|week)$")]
Day = Annotated[date | None, Query()]
CategoryFilter = Annotated[str | None, Query(max_length=40)]
RegionFilter = Annotated[str | None, Query(pattern=r"^(-?\d{1,3}\.\d,-?\d{1,3}\.\d)?$")]


def bad_filter(english: str, dutch: str) -> ServiceError:
    return ServiceError(422, "invalid_figures_filter", english, detail_nl=dutch)


def filters_of(period: str, start: date | None, end: date | None, category: str | None, region: str | None) -> Filters:
    today = utcnow().astimezone(figures.DUTCH_TIME).date()
    end = end or today
    start = start or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise bad_filter("the period starts after it ends", "de periode begint na haar einde")
    if (end - start).days >= figures.MAX_DAYS:
        raise bad_filter(
            f"a period of at most {figures.MAX_DAYS} days", f"een periode van hoogstens {figures.MAX_DAYS} dagen"
        )
    if category and category not in CATEGORIES:
        raise bad_filter("no such category", "deze categorie bestaat niet")
    return Filters(start, end, "week" if period == "week" else "day", category or None, region or None)


def query_of(filters: Filters) -> dict[str, str]:
    """The filters as the page's links carry them (the CSV links: the same rows as the tables)."""
    values = {"period": filters.period, "start": filters.start.isoformat(), "end": filters.end.isoformat()}
    if filters.category:
        values["category"] = filters.category
    if filters.region:
        values["region"] = filters.region
    return values


# ---- the figures ------------------------------------------------------------------------------------------------


async def reach_of(runtime: Runtime, action_ids: list[str]) -> dict[str, int | None]:
    """How many installations fetched each action, as intake counts them (the bridge does not keep it); None
    for those intake did not answer about within REACH_SECONDS."""
    found: dict[str, int | None] = dict.fromkeys(action_ids)
    gate = asyncio.Semaphore(REACH_AT_ONCE)

    async def one(action_id: str) -> None:
        async with gate:
            try:
                answer = await peers.call_service(
                    runtime, "report-intake", "GET", f"/internal/v1/burgernet/actions/{action_id}/reach"
                )
                found[action_id] = int(answer.json()["installations"])
            except (httpx.HTTPError, ValueError, KeyError, TypeError):
                pass  # shown as unknown, and counted as such, never guessed

    if action_ids:
        tasks = [asyncio.create_task(one(action_id)) for action_id in action_ids]
        _done, pending = await asyncio.wait(tasks, timeout=REACH_SECONDS)
        for task in pending:
            task.cancel()
    return found


async def compute(
    runtime: Runtime, user: ConsoleUser, filters: Filters, what: str
) -> tuple[dict[str, Figure], list[str]]:
    """Every figure of the period (and the regions that have anything in it); the look is audited, with the
    filters (nothing personal is shown, but the bridge records every view)."""
    async with runtime.db.sessions() as session:  # reads only: no write turn held while they run
        ledger = await figures.gather(session, filters, is_sqlite=runtime.db.is_sqlite)
    async with runtime.db.transaction() as session:
        audit(session, user.actor, "view_figures", "figures", what, {"filters": query_of(filters)})
    reach = await reach_of(runtime, [a.id for a in ledger.actions])
    return figures.all_figures(ledger, reach), ledger.regions()


# ---- the charts: small multiples of bars, one per plotted column ------------------------------------------

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 300, 130, 36, 18, 20


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: str


@dataclass(frozen=True)
class SmallChart:
    id: str
    column: str
    highest: str
    bars: list[Bar]
    first: str
    last: str
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    base: int = HEIGHT - BOTTOM
    top: int = TOP


def small_charts(figure: Figure) -> list[SmallChart]:
    rows = [r for r in figure.rows if r["period"] != "total"]
    kinds = {c.key: c.kind for c in figure.columns}
    charts = []
    for column in figure.plotted:
        values = [float(r[column]) if r[column] is not None else None for r in rows]
        highest = max((v for v in values if v is not None), default=0.0)
        plot_width = WIDTH - LEFT - 4
        step = plot_width / max(1, len(rows))
        space = HEIGHT - BOTTOM - TOP
        bars = []
        for index, (row, value) in enumerate(zip(rows, values, strict=True)):
            height = 0.0 if not value or highest <= 0 else max(1.0, space * value / highest)
            bars.append(
                Bar(
                    x=round(LEFT + index * step + step * 0.1, 2),
                    y=round(HEIGHT - BOTTOM - height, 2),
                    width=round(max(0.5, step * 0.8), 2),
                    height=round(height, 2),
                    label=row["period"],
                    value=figures.cell(row[column], kinds[column]) or "–",
                )
            )
        charts.append(
            SmallChart(
                id=f"{figure.chart}-{column}",
                column=column,
                highest=figures.cell(int(highest) if kinds[column] == "count" else highest, kinds[column]),
                bars=bars,
                first=rows[0]["period"] if rows else "",
                last=rows[-1]["period"] if rows else "",
            )
        )
    return charts


def table_rows(figure: Figure) -> list[list[str]]:
    """The rows as the table shows them and the CSV writes them: the same cells."""
    return [[figures.cell(row[c.key], c.kind) for c in figure.columns] for row in figure.rows]


# ---- the routes ---------------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
async def figures_page(
    request: Request,
    runtime: RuntimeDep,
    user: SupervisorUser,
    period: Period = "day",
    start: Day = None,
    end: Day = None,
    category: CategoryFilter = None,
    region: RegionFilter = None,
) -> HTMLResponse:
    filters = filters_of(period, start, end, category, region)
    shown, regions = await compute(runtime, user, filters, "*")
    language = language_of(request, user)
    return await page(
        request,
        "figures.html",
        user,
        t=FigureTexts(language),
        filters=filters,
        figures=[(shown[chart], small_charts(shown[chart]), table_rows(shown[chart])) for chart in CHARTS],
        regions=sorted({*regions, *([filters.region] if filters.region else [])}),
        categories=CATEGORIES,
        query=query_of(filters),
        definitions=["general", "category_region", *CHARTS],
    )


@router.get("/{chart}.csv")
async def figures_csv(
    runtime: RuntimeDep,
    user: SupervisorUser,
    chart: str,
    period: Period = "day",
    start: Day = None,
    end: Day = None,
    category: CategoryFilter = None,
    region: RegionFilter = None,
) -> Response:
    """One chart's table as CSV: a header of the columns' keys, then the table's rows, cell for cell."""
    if chart not in CHARTS:
        raise ServiceError(404, "no_such_chart", "no such chart", detail_nl="deze grafiek bestaat niet")
    filters = filters_of(period, start, end, category, region)
    shown, _regions = await compute(runtime, user, filters, chart)
    figure = shown[chart]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.key for c in figure.columns])
    writer.writerows(table_rows(figure))
    name = re.sub(r"[^a-z0-9_.-]", "", f"figures-{chart}-{filters.period}-{filters.start}-{filters.end}.csv")
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )
