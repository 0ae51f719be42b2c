"""The bridge's state fields and the table of each: which state may follow which (`Workflow.move` checks it wherever
a state changes), and how people read each state (Dutch, English)."""

from __future__ import annotations

from enum import StrEnum

from burgermelding_shared.contracts import IncidentStatus
from burgermelding_shared.workflow import Workflow


class ReportState(StrEnum):
    """A report at the bridge."""

    WAITING_VERIFICATION = "waiting_verification"
    FORWARDED = "forwarded"  # in an incident the meldkamer has (or is about to have)
    HELD_FOR_REVIEW = "held_for_review"  # verification doubts it: a supervisor forwards or rejects it
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"  # by its citizen, whatever it was before


REPORT_STATES = Workflow[ReportState](
    "a report's state",
    {
        ReportState.WAITING_VERIFICATION: {
            ReportState.FORWARDED,
            ReportState.HELD_FOR_REVIEW,
            ReportState.REJECTED,
            ReportState.WITHDRAWN,
        },
        ReportState.HELD_FOR_REVIEW: {ReportState.FORWARDED, ReportState.REJECTED, ReportState.WITHDRAWN},
        ReportState.FORWARDED: {ReportState.WITHDRAWN},
        ReportState.REJECTED: {ReportState.WITHDRAWN},
        ReportState.WITHDRAWN: set(),
    },
)


class DeliveryState(StrEnum):
    """An incident's request for service on its way to the meldkamer."""

    QUEUED = "queued"
    SENT = "sent"  # out, no decision yet (an error, a timeout, or the meldkamer's 180/182 "in progress")
    ACCEPTED = "accepted"
    REJECTED = "rejected"  # the meldkamer refused it
    DEAD_LETTERED = "dead_lettered"  # the outbox gave up
    CANCELLED = "cancelled"  # merged into another incident before its request was ever sent


# A status callback proves the meldkamer has the incident whatever our request's fate seemed (`accepted` from
# every state that is not final); a supervisor's replay queues a refused or given-up request again.
DELIVERY_STATES = Workflow[DeliveryState](
    "an incident's delivery state",
    {
        DeliveryState.QUEUED: {
            DeliveryState.SENT,
            DeliveryState.ACCEPTED,
            DeliveryState.REJECTED,
            DeliveryState.DEAD_LETTERED,
            DeliveryState.CANCELLED,
        },
        DeliveryState.SENT: {DeliveryState.ACCEPTED, DeliveryState.REJECTED, DeliveryState.DEAD_LETTERED},
        DeliveryState.REJECTED: {DeliveryState.QUEUED, DeliveryState.ACCEPTED},
        DeliveryState.DEAD_LETTERED: {DeliveryState.QUEUED, DeliveryState.ACCEPTED},
        DeliveryState.ACCEPTED: set(),
        DeliveryState.CANCELLED: set(),
    },
)


NOT_ACCEPTED = (DeliveryState.QUEUED, DeliveryState.SENT, DeliveryState.DEAD_LETTERED, DeliveryState.REJECTED)


_RESOURCES = {IncidentStatus.RESOURCES_ASSIGNED, IncidentStatus.RESOURCES_ENROUTE, IncidentStatus.RESOURCES_ONSCENE}


_ENDS = {IncidentStatus.CLOSED, IncidentStatus.CANCELLED}


# The incident's operational status is the meldkamer's to decide: a move outside this table is recorded all the
# same (the control room is right about its own incident), but logged, so a changed dispatcher workflow shows.
INCIDENT_STATUSES = Workflow[IncidentStatus](
    "an incident's operational status",
    {
        IncidentStatus.ACTIVE: _RESOURCES | _ENDS,
        **{status: (_RESOURCES - {status}) | _ENDS for status in _RESOURCES},
        IncidentStatus.CLOSED: {IncidentStatus.REOPENED},
        IncidentStatus.CANCELLED: {IncidentStatus.REOPENED},
        IncidentStatus.REOPENED: {IncidentStatus.ACTIVE} | _RESOURCES | _ENDS,
    },
)


CLOSED_STATUSES = tuple(_ENDS)


# Report and delivery states as people read them: (Dutch, English). The console's words, and the Dutch problem
# texts of the dispatchers' API.
STATE_NAMES: dict[str, tuple[str, str]] = {
    "queued": ("in de wachtrij", "queued"),
    "sent": ("verstuurd, nog niet aangenomen", "sent, not yet accepted"),
    "accepted": ("aangenomen", "accepted"),
    "rejected": ("geweigerd", "refused"),
    "dead_lettered": ("opgegeven (onbestelbaar)", "given up (dead letter)"),
    "cancelled": ("geannuleerd", "cancelled"),
    "waiting_verification": ("wacht op verificatie", "being verified"),
    "forwarded": ("doorgestuurd", "forwarded"),
    "held_for_review": ("wacht op beoordeling", "held for review"),
    "withdrawn": ("ingetrokken", "withdrawn"),
}


def state_nl(code: str | None) -> str:
    return STATE_NAMES[code][0] if code in STATE_NAMES else str(code)
