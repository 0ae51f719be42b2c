"""Figures for supervisors: what citizen reports bring (issue #32), from what the bridge keeps.

Every figure is counted from records that retention leaves alone, so that a report anonymised or purged after
the fact does not change a figure about the past:

- the audit chain (`audit_chain`, never deleted, nothing personal in it): when the bridge received each report
  (`report.received`), when it forwarded it and how (`report.sent_to_meldkamer`: a new incident, an update to an
  open one, an answer to a Burgernet action; `split_report` when a dispatcher moved it), verification's verdicts
  (`report.verdict`), what the citizen was told (`report.under_review`, `report.rejected`, `report.accepted`),
  and the meldkamer's status callbacks (`incident.status`);
- the deletion log (`deletion_log`): the reports the citizen withdrew (intake's rule `withdrawn-by-citizen`,
  or the rule that anonymises withdrawn reports);
- the incidents (`incidents`: never removed), for their category, place, merges and creation time;
- the Burgernet actions (`burgernet_actions`: never removed), for their outcome; their reach is counted by
  intake, which the page asks;
- the report's own row (`bridge_reports`) only for what anonymisation keeps of it: its category, its place
  rounded to two decimals, its state, and intake's `received_at` (the citizen's POST) in its submission.

What each figure counts is written in DEFINITIONS below, which the page shows. Nothing here is personal: counts
and durations only, per day or week, per category and region.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import and_, cast, func, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from burgermelding_shared.auditchain import timestamp
from burgermelding_shared.contracts import IncidentStatus, coarse
from dispatch_bridge.models import BridgeReport, BurgernetAction, Incident, deletions
from dispatch_bridge.models import audit as audit_tables
from dispatch_bridge.states import ReportState

DUTCH_TIME = ZoneInfo("Europe/Amsterdam")
Period = Literal["day", "week"]
CHARTS = ("reports", "latency", "witnesses", "incidents", "burgernet", "closed")
MAX_DAYS = 400  # the longest period a page covers
REGION_DEGREES_TENTHS = 1  # a region is a cell of 0.1 by 0.1 degree (about 11 by 7 km here)
# intake anonymises a withdrawn report under one of these rules (the bridge applies intake's order)
WITHDRAWN_RULES = ("withdrawn-by-citizen", "withdrawn-anonymised")
FORWARDINGS = ("report.sent_to_meldkamer", "split_report")
REPORT_ACTIONS = (
    "report.received",
    "report.sent_to_meldkamer",
    "split_report",
    "report.verdict",
    "report.under_review",
    "report.rejected",
    "report.accepted",
)
OUTCOMES = ("found", "arrested", "called_off", "expired", "cancelled")
ENDINGS = (IncidentStatus.CLOSED, IncidentStatus.CANCELLED)


# ---- what the figures mean (shown on the page: Dutch, English) ------------------------------------------

DEFINITIONS: dict[str, tuple[str, str]] = {
    "general": (
        "Een melding telt op de dag (Nederlandse tijd) waarop de brug haar ontving (auditketen, "
        "'report.received'), een incident op de dag dat het ontstond, een Burgernet-actie op de dag dat ze "
        "begon. Een week is een ISO-week (maandag tot en met zondag); een week aan de rand van de gekozen "
        "periode telt alleen de dagen erbinnen. De regel 'totaal' rekent over de hele periode. Alles komt uit "
        "wat de bewaartermijnen laten staan (auditketen, verwijderlog, incidenten, Burgernet-acties, en van "
        "een melding alleen wat anonimiseren bewaart), zodat een getal over het verleden niet verandert als "
        "meldingen later geanonimiseerd of verwijderd worden. Geen tekst, geen pseudoniemen: alleen aantallen "
        "en tijden.",
        "A report counts on the day (Dutch time) the bridge received it (audit chain, 'report.received'), an "
        "incident on the day it was created, a Burgernet action on the day it started. A week is an ISO week "
        "(Monday to Sunday); a week at the edge of the chosen period counts only the days inside it. The "
        "'total' row is over the whole period. Everything comes from what retention leaves (the audit chain, "
        "the deletion log, the incidents, the Burgernet actions, and of a report only what anonymisation "
        "keeps), so that a figure about the past does not change when reports are anonymised or purged later. "
        "No text, no pseudonyms: counts and durations only.",
    ),
    "category_region": (
        "Categorie en regio van een melding: haar eigen categorie en plaats (anonimiseren bewaart de "
        "categorie en rondt de plaats af op twee decimalen; de regio wordt altijd uit die afgeronde plaats "
        "bepaald, dus anonimiseren verandert haar niet). Is de melding verwijderd, dan die "
        "vastgelegd bij haar ontvangst in het auditlog ('report.received': categorie en regio, niets preciezer), "
        "en voor meldingen van voor die vastlegging die van het incident waarin zij eerst werd doorgestuurd. "
        "Een zo oude verwijderde melding die nooit een incident bereikte (een als spam afgewezen melding) "
        "telt mee zonder filter; het aantal dat een filter daardoor mist staat bij de grafiek. Regio: een vak van "
        "0,1 bij 0,1 graad (ongeveer 11 bij 7 km), genoemd naar zijn zuidwesthoek; de meldkamerregio kent de "
        "brug niet. Een incident en een Burgernet-actie: de categorie en plaats van het incident.",
        "A report's category and region: its own category and place (anonymisation keeps the category and "
        "rounds the place to two decimals; the region is always taken from that rounded place, so "
        "anonymisation does not move it). Once the report is purged, those recorded when it arrived (its "
        "'report.received' audit entry: the category and the region, nothing more precise), and for reports "
        "from before that entry said so, those of the incident it was first forwarded into. Such an old purged "
        "report that never reached an incident (one rejected as spam) counts when nothing is filtered, and how "
        "many a filter misses for that reason is shown with the chart. Region: a cell of 0.1 by 0.1 degree "
        "(about 11 by 7 km), named by its south-west corner; the bridge does not know the meldkamer's region. "
        "An incident and a Burgernet action: the incident's category and place.",
    ),
    "reports": (
        "Per melding die in de periode binnenkwam: ontvangen ('report.received'); doorgestuurd naar de "
        "meldkamer (een 'report.sent_to_meldkamer'); vastgehouden voor beoordeling ('report.under_review'); "
        "afgewezen als spam, door verificatie of door een supervisor na beoordeling ('report.rejected'); "
        "ingetrokken door de melder (de status 'ingetrokken' van de melding, of haar anonimisering onder een "
        "intrekkingsregel in het verwijderlog). Eén melding kan in meer kolommen tellen (vastgehouden en dan "
        "doorgestuurd; doorgestuurd en dan ingetrokken).",
        "Of the reports received in the period: received ('report.received'); forwarded to the meldkamer (a "
        "'report.sent_to_meldkamer'); held for review ('report.under_review'); rejected as spam, by "
        "verification or by a supervisor after review ('report.rejected'); withdrawn by the citizen (the "
        "report's state 'withdrawn', or its anonymisation under a withdrawal rule in the deletion log). One "
        "report may count in several columns (held, then forwarded; forwarded, then withdrawn).",
    ),
    "latency": (
        "Tijd van de POST van de melder tot de meldkamer: van intake's ontvangsttijd ('received_at' in de "
        "melding zoals de brug die bewaart; anonimiseren laat die staan) tot het moment dat de brug weet dat de "
        "meldkamer het incident heeft (het eerste 'report.accepted': het antwoord 200 op het verzoek, een "
        "statusmelding van de meldkamer, of aansluiten bij een incident dat zij al heeft). Na het verwijderen "
        "van een melding (na vijf jaar) telt vanaf de ontvangst door de brug; dan ontbreekt de stap van intake "
        "naar de brug. Spoed: de melding ging bij ontvangst meteen door, vóór verificatie (zo behandelt de "
        "brug een spoedmelding; in de auditketen: doorgestuurd vóór het eerste oordeel). Mediaan (p50) en p90 "
        "met de nearest-rank-methode, in seconden; n is het aantal meldingen met een aanname. Meldingen die de "
        "meldkamer (nog) niet aannam tellen niet mee.",
        "Time from the citizen's POST to the meldkamer: from intake's receipt ('received_at' in the report as "
        "the bridge keeps it; anonymisation leaves it) to the moment the bridge knows the meldkamer has the "
        "incident (the first 'report.accepted': the 200 answer to the request, a status callback from the "
        "meldkamer, or joining an incident it already has). Once a report is purged (after five years) the "
        "clock starts at the bridge's receipt, without the hop from intake to the bridge. Urgent: the report "
        "was forwarded at once on receipt, before verification (what the bridge does with an urgent report; in "
        "the audit chain: forwarded before its first verdict). Median (p50) and p90 by the nearest-rank "
        "method, in seconds; n is the number of reports accepted. Reports the meldkamer did not (yet) accept "
        "do not count.",
    ),
    "witnesses": (
        "Per incident dat in de periode ontstond (niet samengevoegd in een ander; de meldingen van een "
        "samengevoegd incident tellen bij het incident dat doorging): het aantal meldingen dat voor het voorval "
        "spreekt, zoals de brug ze aan de meldkamer telt: doorgestuurd in het incident (of afgesplitst erheen), "
        "niet ingetrokken, niet door verificatie afgewezen, en geen antwoord op een Burgernet-actie. Dat zijn "
        "meldingen, geen mensen: de pseudoniemen die twee meldingen van één afzender herkennen verdwijnen bij "
        "anonimisering, en het getal mag daar niet van afhangen (het aantal getuigen dat de meldkamer ziet kan "
        "dus lager zijn). Gemiddelde, mediaan, hoogste, en incidenten met twee of meer.",
        "Per incident created in the period (not merged into another; the reports of a merged incident count "
        "with the incident that went on): the reports that speak for the event, as the bridge counts them for "
        "the meldkamer: forwarded into the incident (or split off into it), not withdrawn, not rejected by "
        "verification, and not an answer to a Burgernet action. These are reports, not people: the pseudonyms "
        "that tell one sender's two reports apart go with anonymisation, and the figure must not depend on "
        "them (the witness count the meldkamer sees may be lower). Mean, median, highest, and incidents with "
        "two or more.",
    ),
    "incidents": (
        "Van de meldingen die in de periode binnenkwamen en werden doorgestuurd, bij hun eerste doorsturen "
        "('report.sent_to_meldkamer', veld 'as'): begonnen een nieuw incident ('request_for_service'); sloten "
        "aan bij een open incident van hetzelfde voorval ('incident_update'); antwoordden op een "
        "Burgernet-actie en kwamen bij haar incident ('burgernet_answer'). Samen is dat de kolom doorgestuurd "
        "van 'Meldingen'. Elk incident van de brug begint met een melding van een burger; afsplitsen door een "
        "centralist telt hier niet.",
        "Of the reports received in the period and forwarded, at their first forwarding "
        "('report.sent_to_meldkamer', field 'as'): started a new incident ('request_for_service'); joined an "
        "open incident of the same event ('incident_update'); answered a Burgernet action and went to its "
        "incident ('burgernet_answer'). Together that is the forwarded column of 'Reports'. Every incident of "
        "the bridge starts with a citizen's report; a dispatcher's split does not count here.",
    ),
    "burgernet": (
        "Burgernet-acties en getuigenoproepen die in de periode begonnen (tabel 'burgernet_actions', die de "
        "bewaartermijnen niet raken), met hun uitkomst: gevonden, aangehouden, afgeblazen (door een "
        "centralist), verlopen (de eindtijd), ingetrokken (door een supervisor), of nog open. Antwoorden: "
        "meldingen die als antwoord bij het incident van de actie kwamen ('report.sent_to_meldkamer' met "
        "'as' 'burgernet_answer'); als spam afgewezen antwoorden tellen niet. Bereik: het aantal app-installaties "
        "dat de actie ophaalde, zoals intake het telt (de brug vraagt het intake bij het tonen); leeg als "
        "intake niet antwoordde, en het aantal acties zonder bereik staat erbij.",
        "Burgernet actions and witness calls started in the period (table 'burgernet_actions', which retention "
        "does not touch), with their outcome: found, arrested, called off (by a dispatcher), expired (their "
        "deadline), cancelled (by a supervisor), or still open. Answers: reports that went to the action's "
        "incident as its answers ('report.sent_to_meldkamer' with 'as' 'burgernet_answer'); answers rejected "
        "as spam do not count. Reach: how many app installations fetched the action, as intake counts them "
        "(the bridge asks intake when it shows the figures); empty when intake did not answer, and how many "
        "actions lack their reach is shown beside it.",
    ),
    "closed": (
        "Incidenten die de meldkamer afsloot met een uitkomst: hun laatste statusmelding van de meldkamer "
        "('incident.status' in de auditketen) is 'Closed' (afgesloten) of 'Cancelled' (geannuleerd), en het "
        "incident staat nog zo. Het telt op de dag van die statusmelding. Een incident dat de brug zelf "
        "annuleerde omdat al zijn melders introkken, telt niet: dat meldde de meldkamer niet.",
        "Incidents the meldkamer closed with an outcome: its last status callback from the meldkamer "
        "('incident.status' in the audit chain) is 'Closed' or 'Cancelled', and the incident still stands so. "
        "It counts on the day of that callback. An incident the bridge cancelled itself because every citizen "
        "withdrew does not count: the meldkamer did not report that.",
    ),
}


# ---- filters, periods, regions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    start: date  # the first Dutch calendar day, inclusive
    end: date  # the last, inclusive
    period: Period = "day"
    category: str | None = None
    region: str | None = None  # a region code (`region_of`)

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time(), DUTCH_TIME).astimezone(UTC)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time(), DUTCH_TIME).astimezone(UTC)

    def bucket(self, moment: datetime) -> str:
        return bucket_of(moment, self.period)

    def buckets(self) -> list[str]:
        """Every day or week of the period, in order, also those without anything."""
        labels: list[str] = []
        day = self.start
        while day <= self.end:
            label = day.isoformat() if self.period == "day" else week_label(day)
            if not labels or labels[-1] != label:
                labels.append(label)
            day += timedelta(days=1)
        return labels

    def covers(self, moment: datetime) -> bool:
        return self.since <= moment < self.until

    def matches(self, category: str | None, region: str | None) -> bool:
        return (self.category is None or self.category == category) and (self.region is None or self.region == region)

    @property
    def filtered(self) -> bool:
        return self.category is not None or self.region is not None


def week_label(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def bucket_of(moment: datetime, period: Period) -> str:
    day = moment.astimezone(DUTCH_TIME).date()
    return day.isoformat() if period == "day" else week_label(day)


def region_of(lat: float | None, lon: float | None) -> str | None:
    """The region of a place: its 0.1-degree cell, from the place rounded as anonymisation rounds it
    (`contracts.coarse`), so a report's region is the same before and after anonymisation. Named by the cell's
    south-west corner, e.g. "52.0,5.1"."""
    if lat is None or lon is None:
        return None
    cells = []
    for degrees in (lat, lon):
        hundredths = round(coarse(degrees) * 100)
        cells.append(math.floor(hundredths / 10))
    return f"{cells[0] / 10:.1f},{cells[1] / 10:.1f}"


def nearest_rank(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile: the smallest value with at least `fraction` of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def _moment(at: str) -> datetime:
    return datetime.fromisoformat(at)


# ---- what the bridge keeps, gathered per report and per incident ------------------------------------------


@dataclass
class ReportFacts:
    report_id: str
    received_at: datetime  # the bridge's receipt (audit chain)
    posted_at: datetime | None = None  # intake's receipt: the citizen's POST (kept by anonymisation)
    own_category: str | None = None  # from its row, while kept
    own_region: str | None = None
    entry_category: str | None = None  # from its report.received audit entry (kept for good)
    entry_region: str | None = None
    state: str | None = None
    first_forwarding: tuple[int, datetime, str, str] | None = None  # (seq, at, incident id, as)
    current_incident: str | None = None  # where the latest forwarding or split put it
    burgernet_action: str | None = None  # the action's reference, for an answer
    first_verdict_seq: int | None = None
    last_verdict: str | None = None
    held: bool = False
    rejected: bool = False
    withdrawn: bool = False
    accepted_at: datetime | None = None

    @property
    def forwarded(self) -> bool:
        return self.first_forwarding is not None

    @property
    def forwarded_as(self) -> str | None:
        return self.first_forwarding[3] if self.first_forwarding else None

    @property
    def urgent(self) -> bool:
        """Forwarded at once on receipt, before any verdict: what the bridge does with an urgent report."""
        if self.first_forwarding is None:
            return False
        return self.first_verdict_seq is None or self.first_forwarding[0] < self.first_verdict_seq


@dataclass(frozen=True)
class IncidentFacts:
    id: str
    category: str
    region: str | None
    created_at: datetime
    merged_into: str | None


@dataclass
class Ledger:
    filters: Filters
    reports: dict[str, ReportFacts] = field(default_factory=dict)
    incidents: dict[str, IncidentFacts] = field(default_factory=dict)
    actions: list[BurgernetAction] = field(default_factory=list)
    endings: dict[str, tuple[datetime, str]] = field(default_factory=dict)  # incident: (when, Closed|Cancelled)

    def survivor(self, incident_id: str | None) -> str | None:
        """The incident that went on, after merges."""
        seen: set[str] = set()
        while incident_id is not None and incident_id not in seen:
            seen.add(incident_id)
            incident = self.incidents.get(incident_id)
            if incident is None or incident.merged_into is None:
                return incident_id
            incident_id = incident.merged_into
        return incident_id

    def placed(self, report: ReportFacts) -> tuple[str | None, str | None]:
        """A report's (category, region): its own while its row is kept, else what its report.received entry
        says, else (entries from before they said it) its first incident's."""
        if report.own_category is not None:
            return report.own_category, report.own_region
        if report.entry_category is not None:
            return report.entry_category, report.entry_region
        incident = self.incidents.get(report.first_forwarding[2]) if report.first_forwarding else None
        return (incident.category, incident.region) if incident else (None, None)

    def received_reports(self) -> list[ReportFacts]:
        return [r for r in self.reports.values() if self.filters.covers(r.received_at)]

    def regions(self) -> list[str]:
        """The regions with anything in the period (for the filter's choices)."""
        found = {self.placed(r)[1] for r in self.received_reports()}
        found |= {i.region for i in self.incidents.values() if self.filters.covers(i.created_at)}
        return sorted(r for r in found if r is not None)


def _posted_at(is_sqlite: bool) -> Any:
    submission = col(BridgeReport.submission)
    if is_sqlite:
        return func.json_extract(submission, "$.received_at")
    return cast(submission, JSONB)["received_at"].astext


async def gather(session: AsyncSession, filters: Filters, *, is_sqlite: bool) -> Ledger:
    """What the figures of the period need, in a few queries: the audit entries of the reports received in the
    period and of those forwarded since its start (an incident of the period may be joined later), their
    kept rows and withdrawals, the incidents they went to, the period's Burgernet actions and closings."""
    entries = audit_tables.entries
    since, until = timestamp(filters.since), timestamp(filters.until)
    concerned = select(entries.c.report_id).where(
        entries.c.report_id.is_not(None),
        or_(
            and_(entries.c.action == "report.received", entries.c.at >= since, entries.c.at < until),
            and_(entries.c.action.in_(FORWARDINGS), entries.c.at >= since),
        ),
    )
    ledger = Ledger(filters)
    rows = await session.execute(
        select(entries.c.report_id, entries.c.seq, entries.c.action, entries.c.at, entries.c.detail)
        .where(entries.c.report_id.in_(concerned), entries.c.action.in_(REPORT_ACTIONS))
        .order_by(entries.c.seq)
    )
    pending: list[Any] = []
    for row in rows:
        if row.action == "report.received":
            facts = ledger.reports.setdefault(row.report_id, ReportFacts(row.report_id, _moment(row.at)))
            # Kept in the entry (receiving.py) since the figures came: what a purged report is counted by.
            detail = json.loads(row.detail) if row.detail else {}
            facts.entry_category = facts.entry_category or detail.get("category")
            facts.entry_region = facts.entry_region or detail.get("region")
        else:
            pending.append(row)
    for row in pending:  # in chain order
        report = ledger.reports.get(row.report_id)
        if report is None:  # received before the bridge kept its audit chain: nothing to count it by
            continue
        _apply(report, row.seq, row.action, _moment(row.at), json.loads(row.detail) if row.detail else {})
    kept = await session.execute(
        select(
            col(BridgeReport.report_id),
            col(BridgeReport.category),
            col(BridgeReport.lat),
            col(BridgeReport.lon),
            col(BridgeReport.state),
            _posted_at(is_sqlite).label("posted_at"),
        ).where(col(BridgeReport.report_id).in_(concerned))
    )
    for row in kept:
        report = ledger.reports.get(row.report_id)
        if report is None:
            continue
        report.own_category, report.own_region, report.state = row.category, region_of(row.lat, row.lon), row.state
        report.withdrawn = report.withdrawn or row.state == ReportState.WITHDRAWN
        report.posted_at = datetime.fromisoformat(row.posted_at).astimezone(UTC) if row.posted_at else None
    withdrawn = await session.execute(
        select(deletions.c.report_id)
        .where(deletions.c.report_id.in_(concerned), deletions.c.rule.in_(WITHDRAWN_RULES))
        .distinct()
    )
    for (report_id,) in withdrawn:
        if report_id in ledger.reports:
            ledger.reports[report_id].withdrawn = True
    actions = await session.execute(
        select(BurgernetAction)
        .where(col(BurgernetAction.started_at) >= filters.since, col(BurgernetAction.started_at) < filters.until)
        .order_by(col(BurgernetAction.started_at))
    )
    ledger.actions = list(actions.scalars())
    closing = await session.execute(
        select(entries.c.target_id, entries.c.at, entries.c.detail)
        .where(
            entries.c.action == "incident.status",
            entries.c.target_type == "incident",
            entries.c.at >= since,  # and after the period: a later reopening takes an ending back
        )
        .order_by(entries.c.seq)
    )
    for incident_id, at, detail in closing:
        status = json.loads(detail or "{}").get("status")
        if status in ENDINGS:
            ledger.endings[incident_id] = (_moment(at), status)
        else:
            ledger.endings.pop(incident_id, None)  # reopened (or moving again) after it ended
    wanted = {r.first_forwarding[2] for r in ledger.reports.values() if r.first_forwarding}
    wanted |= {r.current_incident for r in ledger.reports.values() if r.current_incident}
    wanted |= {a.incident_id for a in ledger.actions} | set(ledger.endings)
    await _load_incidents(session, ledger, filters, wanted)
    return ledger


def _apply(report: ReportFacts, seq: int, action: str, at: datetime, detail: Mapping[str, Any]) -> None:
    if action == "report.sent_to_meldkamer":
        incident_id = str(detail.get("incident_id"))
        if report.first_forwarding is None:
            report.first_forwarding = (seq, at, incident_id, str(detail.get("as")))
            if detail.get("as") == "burgernet_answer":
                report.burgernet_action = str(detail.get("action"))
        report.current_incident = incident_id
    elif action == "split_report":
        report.current_incident = str(detail.get("to_incident"))
    elif action == "report.verdict":
        if report.first_verdict_seq is None:
            report.first_verdict_seq = seq
        report.last_verdict = detail.get("verdict")
    elif action == "report.under_review":
        report.held = True
    elif action == "report.rejected":
        report.rejected = True
    elif action == "report.accepted" and report.accepted_at is None:
        report.accepted_at = at


async def _load_incidents(session: AsyncSession, ledger: Ledger, filters: Filters, wanted: set[str]) -> None:
    """The incidents created in the period, those the reports and actions name, and where they merged to."""
    columns = (
        col(Incident.id),
        col(Incident.category),
        col(Incident.lat),
        col(Incident.lon),
        col(Incident.created_at),
        col(Incident.merged_into),
    )
    found = list(
        await session.execute(
            select(*columns).where(col(Incident.created_at) >= filters.since, col(Incident.created_at) < filters.until)
        )
    )
    while True:
        for row in found:
            ledger.incidents[row.id] = IncidentFacts(
                row.id, row.category, region_of(row.lat, row.lon), row.created_at, row.merged_into
            )
        wanted |= {i.merged_into for i in ledger.incidents.values() if i.merged_into}
        missing = sorted(wanted - set(ledger.incidents))
        if not missing:
            return
        found = []
        for first in range(0, len(missing), 500):  # bounded IN lists
            found += list(
                await session.execute(select(*columns).where(col(Incident.id).in_(missing[first : first + 500])))
            )
        if not found:
            return


# ---- the figures: one table each (its rows are the chart, the table and the CSV) --------------------------


@dataclass(frozen=True)
class Column:
    key: str  # the CSV's header, and the key of the label
    kind: Literal["text", "count", "seconds", "mean"] = "count"


@dataclass
class Figure:
    chart: str
    columns: list[Column]
    rows: list[dict[str, Any]]  # one per day or week, then the total
    plotted: list[str]  # the columns drawn, one small chart each
    # reports a filter cannot place (purged before they reached an incident: so only the reports' outcomes miss
    # them; such a report was never forwarded, so it is in no other figure)
    unplaced: int = 0
    reach_unknown: int = 0


def _by_bucket(filters: Filters, items: Iterable[tuple[datetime, Any]]) -> dict[str, list[Any]]:
    groups: dict[str, list[Any]] = {label: [] for label in filters.buckets()}
    for moment, item in items:
        label = filters.bucket(moment)
        if label in groups:
            groups[label].append(item)
    return groups


def _table(filters: Filters, items: list[tuple[datetime, Any]], row: Any) -> list[dict[str, Any]]:
    """One row per bucket and a total, each `row(items)` computed over the bucket's items."""
    groups = _by_bucket(filters, items)
    rows = [{"period": label, **row(members)} for label, members in groups.items()]
    rows.append({"period": "total", **row([item for members in groups.values() for item in members])})
    return rows


def report_outcomes(ledger: Ledger) -> Figure:
    filters = ledger.filters
    received = ledger.received_reports()
    shown = [r for r in received if filters.matches(*ledger.placed(r))]

    def row(members: list[ReportFacts]) -> dict[str, Any]:
        return {
            "received": len(members),
            "forwarded": sum(r.forwarded for r in members),
            "held_for_review": sum(r.held for r in members),
            "rejected": sum(r.rejected for r in members),
            "withdrawn": sum(r.withdrawn for r in members),
        }

    columns = ["received", "forwarded", "held_for_review", "rejected", "withdrawn"]
    return Figure(
        "reports",
        [Column("period", "text"), *(Column(c) for c in columns)],
        _table(filters, [(r.received_at, r) for r in shown], row),
        columns,
        unplaced=_unplaced(ledger, received),
    )


def _unplaced(ledger: Ledger, reports: list[ReportFacts]) -> int:
    if not ledger.filters.filtered:
        return 0
    return sum(1 for r in reports if ledger.placed(r) == (None, None))


def latency(ledger: Ledger) -> Figure:
    filters = ledger.filters
    received = ledger.received_reports()
    measured = [
        (r.received_at, (r.urgent, max(0.0, (r.accepted_at - (r.posted_at or r.received_at)).total_seconds())))
        for r in received
        if r.accepted_at is not None and filters.matches(*ledger.placed(r))
    ]

    def row(members: list[tuple[bool, float]]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, urgent in (("urgent", True), ("ordinary", False)):
            seconds = [s for u, s in members if u == urgent]
            values[f"{name}_n"] = len(seconds)
            values[f"{name}_p50_s"] = nearest_rank(seconds, 0.5)
            values[f"{name}_p90_s"] = nearest_rank(seconds, 0.9)
        return values

    columns = [f"{n}_{m}" for n in ("urgent", "ordinary") for m in ("n", "p50_s", "p90_s")]
    return Figure(
        "latency",
        [Column("period", "text"), *(Column(c, "count" if c.endswith("_n") else "seconds") for c in columns)],
        _table(filters, measured, row),
        ["urgent_p50_s", "urgent_p90_s", "ordinary_p50_s", "ordinary_p90_s"],
    )


def witnesses(ledger: Ledger) -> Figure:
    filters = ledger.filters
    counted: dict[str, int] = defaultdict(int)
    for report in ledger.reports.values():
        if (
            report.current_incident is None
            or report.withdrawn
            or report.last_verdict == "reject"
            or report.forwarded_as == "burgernet_answer"
        ):
            continue
        survivor = ledger.survivor(report.current_incident)
        if survivor is not None:
            counted[survivor] += 1
    incidents = [
        (i.created_at, counted.get(i.id, 0))
        for i in ledger.incidents.values()
        if i.merged_into is None and filters.covers(i.created_at) and filters.matches(i.category, i.region)
    ]

    def row(members: list[int]) -> dict[str, Any]:
        return {
            "incidents": len(members),
            "reports": sum(members),
            "mean_per_incident": round(sum(members) / len(members), 2) if members else None,
            "median_per_incident": nearest_rank([float(m) for m in members], 0.5),
            "most_in_one": max(members, default=None),
            "incidents_with_2_or_more": sum(1 for m in members if m >= 2),
        }

    columns = [
        "incidents",
        "reports",
        "mean_per_incident",
        "median_per_incident",
        "most_in_one",
        "incidents_with_2_or_more",
    ]
    return Figure(
        "witnesses",
        [Column("period", "text"), *(Column(c, "mean" if "_per_" in c else "count") for c in columns)],
        _table(filters, incidents, row),
        ["incidents", "mean_per_incident", "incidents_with_2_or_more"],
    )


def started_joined(ledger: Ledger) -> Figure:
    filters = ledger.filters
    received = ledger.received_reports()
    forwarded = [
        (r.received_at, r.forwarded_as) for r in received if r.forwarded and filters.matches(*ledger.placed(r))
    ]

    def row(members: list[str]) -> dict[str, Any]:
        return {
            "started_an_incident": members.count("request_for_service"),
            "joined_an_incident": members.count("incident_update"),
            "answered_burgernet": members.count("burgernet_answer"),
        }

    columns = ["started_an_incident", "joined_an_incident", "answered_burgernet"]
    return Figure(
        "incidents",
        [Column("period", "text"), *(Column(c) for c in columns)],
        _table(filters, forwarded, row),
        columns,
    )


def burgernet(ledger: Ledger, reach: Mapping[str, int | None]) -> Figure:
    filters = ledger.filters
    answers: dict[str, int] = defaultdict(int)
    for report in ledger.reports.values():
        if report.burgernet_action:
            answers[report.burgernet_action] += 1
    shown = []
    for action in ledger.actions:
        incident = ledger.incidents.get(action.incident_id)
        if filters.matches(incident.category if incident else None, incident.region if incident else None):
            shown.append((action.started_at, action))

    def row(members: list[BurgernetAction]) -> dict[str, Any]:
        known = [reach[a.id] for a in members if reach.get(a.id) is not None]
        values: dict[str, Any] = {
            "actions": len(members),
            "reach_installations": sum(v for v in known if v is not None) if known else None,
            "reach_unknown": len(members) - len(known),
            "answers": sum(answers.get(a.reference, 0) for a in members),
        }
        for outcome in OUTCOMES:
            values[outcome] = sum(1 for a in members if a.outcome == outcome)
        values["still_open"] = sum(1 for a in members if a.status == "open")
        return values

    columns = ["actions", "reach_installations", "reach_unknown", "answers", *OUTCOMES, "still_open"]
    return Figure(
        "burgernet",
        [Column("period", "text"), *(Column(c) for c in columns)],
        _table(filters, shown, row),
        ["actions", "reach_installations", "answers", "found", "arrested", "called_off"],
        reach_unknown=sum(1 for _, a in shown if reach.get(a.id) is None),
    )


def closed(ledger: Ledger) -> Figure:
    filters = ledger.filters
    shown = []
    for incident_id, (at, status) in ledger.endings.items():
        incident = ledger.incidents.get(incident_id)
        if incident is not None and filters.covers(at) and filters.matches(incident.category, incident.region):
            shown.append((at, status))

    def row(members: list[str]) -> dict[str, Any]:
        return {"closed": members.count(IncidentStatus.CLOSED), "cancelled": members.count(IncidentStatus.CANCELLED)}

    return Figure(
        "closed",
        [Column("period", "text"), Column("closed"), Column("cancelled")],
        _table(filters, shown, row),
        ["closed", "cancelled"],
    )


def all_figures(ledger: Ledger, reach: Mapping[str, int | None]) -> dict[str, Figure]:
    return {
        "reports": report_outcomes(ledger),
        "latency": latency(ledger),
        "witnesses": witnesses(ledger),
        "incidents": started_joined(ledger),
        "burgernet": burgernet(ledger, reach),
        "closed": closed(ledger),
    }


def cell(value: Any, kind: str = "count") -> str:
    """A value as the table and the CSV both write it: counts whole, seconds to one decimal, a mean to two;
    nothing for a figure that cannot be computed (no reports to take a percentile of)."""
    if value is None:
        return ""
    if kind == "seconds":
        return f"{float(value):.1f}"
    if kind == "mean":
        return f"{float(value):.2f}"
    return str(value)
