"""What the citizen reads on the timeline for each step, Dutch and English."""

from __future__ import annotations

from burgermelding_shared.contracts import ReportEventType

EVENT_TEXTS: dict[str, tuple[str, str]] = {  # event: (English, Dutch)
    "verified": ("Your report has been checked.", "Uw melding is gecontroleerd."),
    "under_review": ("A colleague will look at your report.", "Een medewerker bekijkt uw melding."),
    "rejected": ("Your report could not be processed.", "Uw melding kon niet worden verwerkt."),
    "forwarded": ("Your report has been sent to the control room.", "Uw melding is doorgestuurd naar de meldkamer."),
    "accepted": ("The control room has taken up your report.", "De meldkamer heeft uw melding in behandeling."),
    "declined": (
        "The control room could not take up your report. If it is urgent, call 112.",
        "De meldkamer kon uw melding niet aannemen. Is het dringend? Bel 112.",
    ),
    "call_112": (
        "The control room has not yet confirmed your report. Is it urgent? Call 112 now.",
        "De meldkamer heeft uw melding nog niet bevestigd. Is het dringend? Bel nu 112.",
    ),
    "unit_assigned": ("A police unit has been sent.", "Er is een politie-eenheid ingezet."),
    "joined": (
        "Other people reported the same event: the control room handles your report together with theirs.",
        "Anderen meldden hetzelfde voorval: de meldkamer behandelt uw melding samen met die van hen.",
    ),
    "closed": (
        "The control room has closed this incident. Thank you for your report.",
        "De meldkamer heeft dit incident afgesloten. Dank u wel voor uw melding.",
    ),
}


# Meldkamer status -> citizen event. Several statuses mean the same to a citizen.
STATUS_EVENTS: dict[str, ReportEventType] = {
    "ResourcesAssigned": "unit_assigned",
    "ResourcesEnroute": "unit_assigned",
    "ResourcesOnscene": "unit_assigned",
    "Closed": "closed",
    "Cancelled": "closed",
}
