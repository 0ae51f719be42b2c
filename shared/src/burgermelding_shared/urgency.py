"""Urgency: the one rule for whether a report is urgent, and the meldkamer's priority scale."""

from __future__ import annotations

from enum import IntEnum


def is_urgent(*, in_progress: bool, danger_to_life: bool, answers_live_search: bool = False) -> bool:
    """The one rule for urgency: happening now, someone's life in danger, or a sighting for a live Burgernet
    search (the person sought may be near now). An urgent report is forwarded at once (never held for
    verification, never waiting for its display copies), its citizen is told to call 112, its work goes before
    ordinary work everywhere, and the meldkamer gets it as prio 1 (`MeldkamerPriority.URGENT`)."""
    return in_progress or danger_to_life or answers_live_search


class MeldkamerPriority(IntEnum):
    """The priority the meldkamer works an incident by: 1 is the most urgent. Lower is more urgent, the opposite
    of the outbox's `messaging.Precedence`, which is why the two are different types."""

    URGENT = 1
    HIGH = 2
    NORMAL = 3
