"""A report's status as its citizen follows it, and the one table of how it moves (`STATUSES`).

Events from the bridge can arrive out of order: one the table does not allow from where the report stands (an
earlier step arriving after a later one) is kept on the timeline but does not change the status. A report is open
until it reaches a final status: then no photos or messages can be added, and retention counts from there."""

from __future__ import annotations

from enum import StrEnum

from burgermelding_shared.workflow import Workflow


class ReportStatus(StrEnum):
    RECEIVED = "received"
    VERIFIED = "verified"
    UNDER_REVIEW = "under_review"
    FORWARDED = "forwarded"
    ACCEPTED = "accepted"
    UNIT_ASSIGNED = "unit_assigned"
    REJECTED = "rejected"  # by verification or a supervisor
    DECLINED = "declined"  # the meldkamer could not take it up
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"  # by its citizen


S = ReportStatus


FINAL_STATUSES = frozenset({S.REJECTED, S.DECLINED, S.CLOSED, S.WITHDRAWN})


_ENDINGS = {S.REJECTED, S.DECLINED, S.CLOSED, S.WITHDRAWN}


STATUSES = Workflow[ReportStatus](
    "a report's status",
    {
        S.RECEIVED: {S.VERIFIED, S.UNDER_REVIEW, S.FORWARDED, S.ACCEPTED, S.UNIT_ASSIGNED} | _ENDINGS,
        S.VERIFIED: {S.FORWARDED, S.ACCEPTED, S.UNIT_ASSIGNED} | _ENDINGS,
        S.UNDER_REVIEW: {S.FORWARDED, S.ACCEPTED, S.UNIT_ASSIGNED} | _ENDINGS,
        S.FORWARDED: {S.ACCEPTED, S.UNIT_ASSIGNED} | _ENDINGS,
        S.ACCEPTED: {S.UNIT_ASSIGNED} | _ENDINGS,
        S.UNIT_ASSIGNED: _ENDINGS,
        # A refused report's incident may still be closed by the meldkamer (it joined one before the refusal).
        S.REJECTED: {S.CLOSED},
        S.DECLINED: {S.CLOSED},
        S.CLOSED: set(),
        S.WITHDRAWN: set(),
    },
)


# How far along each status is, kept beside the status (`Report.status_rank`) for queries of open reports. The
# table above only ever moves a report to a higher rank.
RANK = {
    S.RECEIVED: 0,
    S.VERIFIED: 1,
    S.UNDER_REVIEW: 1,
    S.FORWARDED: 2,
    S.ACCEPTED: 3,
    S.UNIT_ASSIGNED: 4,
    S.REJECTED: 9,
    S.DECLINED: 9,
    S.CLOSED: 10,
    S.WITHDRAWN: 10,
}


FINAL_RANK = min(RANK[s] for s in FINAL_STATUSES)


def is_status(event: str) -> bool:
    """Whether a timeline event is a status (others, such as call_112, joined or message, only add to it)."""
    return event in ReportStatus.__members__.values()
