"""Citizen-facing texts, Dutch and English."""

from __future__ import annotations

CALL_112 = {
    "nl": "Is het nu aan de gang of is er levensgevaar? Bel direct 112. Deze app vervangt 112 niet.",
    "en": "Is it happening now or is someone's life in danger? Call 112 now. This app does not replace 112.",
}

RECEIVED = {
    "nl": "Uw melding is ontvangen.",
    "en": "Your report has been received.",
}

PHOTO_UNREADABLE = (
    "A photo of your report could not be read: it is kept as it arrived, but cannot be shown.",
    "Een foto bij uw melding kon niet worden gelezen: hij wordt bewaard zoals hij binnenkwam, maar "
    "kan niet worden getoond.",
)
PHOTOS_ADDED = ("Photos were added to your report.", "Er zijn foto's aan uw melding toegevoegd.")
WITHDRAWN = ("You withdrew this report.", "U heeft deze melding ingetrokken.")
QUESTION = ("The control room asks: ", "De meldkamer vraagt: ")
