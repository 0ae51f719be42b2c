"""What the console says, Dutch first and English. One table: a template asks `t("key")`, never a literal."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from burgermelding_shared.categories import CATEGORIES
from dispatch_bridge.states import STATE_NAMES

DUTCH_TIME = ZoneInfo("Europe/Amsterdam")  # the meldkamer's clock, whatever the server's
# Closer than this, the address is the place; farther, the distance is said ("550 m van Domplein 29, Utrecht").
AT_ADDRESS_METRES = 50.0
POSTCODE = re.compile(r", \d{4} ?[A-Z]{2} ")  # "Domplein 29, 3512JE Utrecht": the postcode slows the reading

TEXTS: dict[str, tuple[str, str]] = {  # key: (Dutch, English)
    "app": ("Burgermelding: meldkamerconsole", "Burgermelding: control-room console"),
    "skip": ("Naar de inhoud", "Skip to content"),
    "nav": ("Hoofdmenu", "Main menu"),
    "incidents": ("Incidenten", "Incidents"),
    "map": ("Kaart", "Map"),
    "supervision": ("Supervisie", "Supervision"),
    "figures": ("Cijfers", "Figures"),  # the nav's link to the figures page (console/figures.py)
    "audit": ("Auditlog", "Audit log"),
    "logout": ("Uitloggen", "Log out"),
    "language": ("English", "Nederlands"),  # the link to the other language names it in that language
    "login": ("Inloggen", "Log in"),
    "username": ("Gebruikersnaam", "User name"),
    "password": ("Wachtwoord", "Password"),
    "logged_in_as": ("Ingelogd als", "Logged in as"),
    "role_dispatcher": ("centralist", "dispatcher"),
    "role_supervisor": ("supervisor", "supervisor"),
    "session_expired": (
        "Uw sessie is beëindigd omdat u een tijd niets deed. Log opnieuw in.",
        "Your session ended after a period of inactivity. Please log in again.",
    ),
    "session_ended": ("U bent uitgelogd.", "You have been logged out."),
    "live": ("Live: nieuwe meldingen verschijnen vanzelf", "Live: new reports appear by themselves"),
    "live_lost": (
        "Verbinding met de live-stroom verbroken: opnieuw verbinden…",
        "Connection to the live feed lost: reconnecting…",
    ),
    "new_urgent": ("Nieuw spoedincident", "New urgent incident"),
    "alarm_112": (
        "ALARM: spoedmelding niet aangenomen door de meldkamer binnen de 112-termijn",
        "ALARM: urgent report not accepted by the meldkamer within the 112 deadline",
    ),
    "alarm_112_detail": (
        "De melder is gevraagd 112 te bellen. Neem dit incident direct op:",
        "The citizen was told to call 112. Take up this incident at once:",
    ),
    "filters": ("Filters", "Filters"),
    "apply": ("Toepassen", "Apply"),
    "any": ("alle", "any"),
    "priority": ("Prioriteit", "Priority"),
    "category": ("Categorie", "Category"),
    "delivery_state": ("Levering aan meldkamer", "Delivery to the meldkamer"),
    "include_merged": ("Ook samengevoegde incidenten", "Include merged incidents"),
    "witnesses": ("Getuigen", "Witnesses"),
    "reports": ("Meldingen", "Reports"),
    "age": ("Leeftijd", "Age"),
    "verdict": ("Verificatie", "Verification"),
    "incident": ("Incident", "Incident"),
    "no_incidents": ("Geen incidenten onder dit filter.", "No incidents under this filter."),
    "open": ("Openen", "Open"),
    "urgent": ("SPOED", "URGENT"),
    "event": ("Het voorval", "The event"),
    "first_last_seen": ("Gezien tussen", "Seen between"),
    "radius": ("Spreiding", "Spread"),
    "descriptions": ("Beschrijvingen", "Descriptions"),
    "report": ("Melding", "Report"),
    "received": ("Ontvangen", "Received"),
    "state": ("Status", "State"),
    "photos": ("Foto's", "Photos"),
    "photo_of": ("Foto bij melding", "Photo of report"),
    "video_of": ("Video bij melding", "Video of report"),
    "caller_images": ("Beelden van een beller", "Images from a caller"),
    "caller_phone": ("Mobiel nummer van de beller", "Caller's mobile number"),
    "caller_ask": ("Wat moet de beller laten zien?", "What should the caller show?"),
    "caller_language": ("Taal van sms en pagina", "Language of the SMS and page"),
    "send_link": ("Link per sms sturen", "Send link by SMS"),
    "revoke_link": ("Link intrekken", "Revoke link"),
    "phone_ending": ("nummer eindigt op", "number ending"),
    "files": ("bestanden", "files"),
    "caller_state_sent": ("Verstuurd", "Sent"),
    "caller_state_opened": ("Geopend", "Opened"),
    "caller_state_consent_given": ("Toestemming gegeven", "Consent given"),
    "caller_state_consent_refused": ("Toestemming geweigerd", "Consent refused"),
    "caller_state_uploading": ("Bezig met versturen", "Uploading"),
    "caller_refused": ("Niet aangenomen (de beller zag waarom)", "Not taken (the caller was told why)"),
    "caller_state_received": ("Ontvangen", "Received"),
    "caller_state_revoked": ("Ingetrokken", "Revoked"),
    "caller_state_expired": ("Verlopen", "Expired"),
    "caller_state_failed": ("Sms mislukt", "SMS failed"),
    "video_fallback": ("Deze browser speelt deze video niet af:", "This browser does not play this video:"),
    "video_compatible_pending": (
        "Een kopie die in elke browser speelt wordt gemaakt; speelt de video hier niet, dan verschijnt die vanzelf.",
        "A copy that plays in every browser is being made; if the video does not play here, it appears by itself.",
    ),
    "download_video": ("download de video", "download the video"),
    "seconds": ("s", "s"),
    "original": ("Origineel (bewijs) tonen", "Show original (evidence)"),
    "original_title": ("Originele foto (bewijs)", "Original photo (evidence)"),
    "original_note": ("Wordt vastgelegd in het auditlog.", "Recorded in the audit log."),
    "custody": ("Bewaarketen", "Chain of custody"),
    "reasons": ("Waarom dit oordeel", "Why this verdict"),
    "duplicates": ("Dubbele meldingen", "Duplicate reports"),
    "near_duplicates": ("Bijna gelijke foto's in andere meldingen", "Near-duplicate photos in other reports"),
    "group": ("Zelfde voorval (groep)", "Same event (group)"),
    "messages": ("Berichten met de melder", "Messages with the citizen"),
    "no_messages": ("Nog geen berichten.", "No messages yet."),
    "to_citizen": ("Aan melder", "To citizen"),
    "from_citizen": ("Van melder", "From citizen"),
    "ask": ("Vraag stellen aan de melder", "Ask the citizen a question"),
    "question": ("Vraag", "Question"),
    "send": ("Versturen", "Send"),
    "forward": ("Doorsturen naar meldkamer", "Forward to the meldkamer"),
    "reject": ("Afwijzen", "Reject"),
    "held_title": ("Wacht op beoordeling", "Held for review"),
    "no_held": ("Geen meldingen die op beoordeling wachten.", "No reports held for review."),
    "held": ("Deze melding wacht op beoordeling door een centralist.", "This report is held for review."),
    "merge": ("Samenvoegen met ander incident", "Merge with another incident"),
    "merge_with": ("Incident dat hetzelfde voorval is", "Incident that is the same event"),
    "no_merge_candidates": (
        "Geen ander open incident van rond deze tijd.",
        "No other open incident from around this time.",
    ),
    "merged_into": ("Samengevoegd in", "Merged into"),
    "merged_from": ("Samengevoegd uit", "Merged from"),
    "split_from": ("Afgesplitst van", "Split off from"),
    "split": ("Afsplitsen als eigen incident", "Split off as an incident of its own"),
    "burgernet_actions": ("Burgernet-acties bij dit incident", "Burgernet actions of this incident"),
    "action_open": ("loopt", "open"),
    "action_closed": ("afgesloten", "closed"),
    "action_cancelled": ("ingetrokken", "cancelled"),
    "outcome": ("Uitkomst", "Outcome"),
    "outcome_found": ("gevonden", "found"),
    "outcome_arrested": ("aangehouden", "arrested"),
    "outcome_called_off": ("afgeblazen", "called off"),
    "close_action": ("Afsluiten (met het standaardbericht)", "Close (with the standard message)"),
    "cancel_reason": ("Reden van intrekken", "Reason for cancelling"),
    "cancel_action": ("Intrekken", "Cancel"),
    "burgernet": ("Burgernet-actie starten", "Start a Burgernet action"),
    "looking_for": ("Gezocht", "Looking for"),
    "headline": ("Kop (Nederlands)", "Headline (Dutch)"),
    "description": ("Omschrijving (Nederlands)", "Description (Dutch)"),
    "centre_lat": ("Middelpunt: breedtegraad", "Centre: latitude"),
    "centre_rounded": (
        "Voorgesteld: het midden van het incident, afgerond op ongeveer 100 meter (met één getuige "
        "is de exacte plek vaak iemands huis, en het gebied is openbaar). Vul zelf een exact middelpunt "
        "in als dat nodig is.",
        "Proposed: the incident's centre, rounded to about 100 metres (with one witness the exact "
        "place is often someone's home, and the area is public). Enter an exact centre yourself if "
        "it is needed.",
    ),
    "centre_lon": ("Middelpunt: lengtegraad", "Centre: longitude"),
    "radius_m": ("Straal rond het incident (meter)", "Radius around the incident (metres)"),
    "duration": ("Duur (minuten)", "Duration (minutes)"),
    "start": ("Starten", "Start"),
    "done": ("Gedaan.", "Done."),
    "delivery": ("Levering en storingen", "Delivery and faults"),
    "outbox": ("Uitgaande berichten", "Outgoing messages"),
    "circuits": ("Verbindingen (stroomonderbrekers)", "Connections (circuit breakers)"),
    "dead_letters": ("Onbestelbare berichten", "Dead letters"),
    "replay": ("Opnieuw versturen", "Send again"),
    "no_dead_letters": ("Geen onbestelbare berichten.", "No dead letters."),
    "destination": ("Bestemming", "Destination"),
    "attempts": ("Pogingen", "Attempts"),
    "reason": ("Reden", "Reason"),
    "when": ("Wanneer", "When"),
    "who": ("Wie", "Who"),
    "what": ("Wat", "What"),
    "target": ("Waarover", "About"),
    "filter_target": ("Alleen over (nummer)", "Only about (id)"),
    "custody_of": ("Bewaarketen van foto", "Chain of custody of photo"),
    "service": ("Dienst", "Service"),
    "unavailable": ("Niet bereikbaar (ontbreekt in dit overzicht)", "Unreachable (missing from this record)"),
    "error": ("Er ging iets mis", "Something went wrong"),
    "back": ("Terug", "Back"),
    "map_no_tiles": (
        "Geen achtergrondkaart ingesteld: alleen de meldingen worden getoond.",
        "No background map is set: only the reports are shown.",
    ),
    "map_legend": (
        "Rood: spoed; blauw: overig. Kies een incident in de lijst.",
        "Red: urgent; blue: other. Choose an incident in the list.",
    ),
    "yes": ("ja", "yes"),
    "no": ("nee", "no"),
    "in_progress": ("Nu bezig", "In progress"),
    "danger": ("Levensgevaar", "Danger to life"),
    "burgernet_action": ("Antwoord op Burgernet-actie", "Answer to Burgernet action"),
    "show": ("Tonen", "Show"),
    "prio": ("Prio", "Prio"),
    "witnesses_short": ("Getuigen", "Witnesses"),
    "show_open": ("Open incidenten", "Open incidents"),
    "show_closed": ("Gesloten incidenten", "Closed incidents"),
    "show_all": ("Alle incidenten", "All incidents"),
    "closed": ("gesloten", "closed"),
    "place": ("Plaats", "Place"),
    "coordinates": ("Coördinaten", "Coordinates"),
    "time": ("Tijd", "Time"),
    "mk_number": ("MK-nummer", "MK number"),
    "no_mk_yet": ("nog geen MK-nummer", "no MK number yet"),
    "best_photos": ("Beste foto's", "Best photos"),
    "actions": ("Handelingen", "Actions"),
    "per_report": ("Per melding", "Per report"),
    "ask_link": ("Vraag stellen", "Ask a question"),
    "matches": ("bekijken", "show them"),
    "list_and_map": ("Lijst en kaart", "List and map"),
    "shortcuts": ("Sneltoetsen", "Keyboard shortcuts"),
    "shortcuts_button": ("Sneltoetsen (?)", "Shortcuts (?)"),
    "close": ("Sluiten", "Close"),
    "key_next": ("volgende incident in de lijst", "next incident in the list"),
    "key_previous": ("vorige incident in de lijst", "previous incident in the list"),
    "key_urgent": ("volgende spoedincident", "next urgent incident"),
    "key_open": ("gekozen incident openen", "open the chosen incident"),
    "key_question": ("vraag stellen aan de melder (op een incident)", "ask the citizen a question (on an incident)"),
    "key_back": ("terug naar de lijst", "back to the list"),
    "key_help": ("deze hulp tonen", "show this help"),
    "key_note": (
        "Sneltoetsen werken niet terwijl u in een tekstveld typt.",
        "Shortcuts do nothing while you type in a text field.",
    ),
}

STATES = STATE_NAMES  # delivery states and report states, for people
VERDICTS: dict[str, tuple[str, str]] = {
    "forward": ("betrouwbaar", "trustworthy"),
    "review": ("twijfel: beoordelen", "doubtful: review"),
    "reject": ("afgewezen", "rejected"),
}
CIRCUITS: dict[str, tuple[str, str]] = {  # a circuit breaker's state, for people (with its technical name)
    "closed": ("in orde (closed)", "working (closed)"),
    "open": ("onderbroken: berichten wachten (open)", "broken: messages wait (open)"),
    "half_open": ("op proef: één bericht probeert het (half-open)", "on trial: one message tries (half-open)"),
}
LOOKING_FOR: dict[str, tuple[str, str]] = {
    "person": ("persoon", "person"),
    "vehicle": ("voertuig", "vehicle"),
    "missing_child": ("vermist kind", "missing child"),
    "witnesses": ("getuigen", "witnesses"),
}


class Texts:
    """The console's words in one language, for the templates."""

    def __init__(self, language: str) -> None:
        self.language = language if language in ("nl", "en") else "nl"
        self.index = 0 if self.language == "nl" else 1

    def __call__(self, key: str) -> str:
        return TEXTS[key][self.index]

    def state(self, code: str | None) -> str:
        return STATES[code][self.index] if code in STATES else (code or "–")

    def verdict(self, code: str | None) -> str:
        return (
            VERDICTS[code][self.index]
            if code in VERDICTS
            else ("nog niet geverifieerd" if self.index == 0 else "not yet verified")
        )

    def category(self, code: str) -> str:
        category = CATEGORIES.get(code)
        return code if category is None else (category.name_nl if self.index == 0 else category.name_en)

    def circuit(self, code: str) -> str:
        return CIRCUITS[code][self.index] if code in CIRCUITS else code

    def looking_for(self, code: str) -> str:
        return LOOKING_FOR[code][self.index]

    def age(self, seconds: float) -> str:
        seconds = max(0, int(seconds))
        if seconds < 60:
            return f"{seconds} s"
        if seconds < 3600:
            return f"{seconds // 60} min"
        return (
            f"{seconds // 3600} u {seconds % 3600 // 60} min"
            if self.index == 0
            else f"{seconds // 3600} h {seconds % 3600 // 60} min"
        )

    def incident_name(self, category: str, meldkamer_incident_id: str | None) -> str:
        """What a dispatcher calls an incident: the meldkamer's number once it gave one, and its category."""
        return (
            f"{meldkamer_incident_id} · {self.category(category)}" if meldkamer_incident_id else self.category(category)
        )

    def place(self, incident: dict[str, Any]) -> str:
        """An incident's place as read aloud: its nearest address (how far, when not at it), else coordinates."""
        address = incident.get("address")
        if address:
            short = POSTCODE.sub(", ", address)
            distance = incident.get("address_distance_m") or 0.0
            if distance < AT_ADDRESS_METRES:
                return short
            return f"{round(distance, -1):.0f} m {'van' if self.index == 0 else 'from'} {short}"
        return self.coordinates(incident.get("lat"), incident.get("lon"))

    def coordinates(self, lat: float | None, lon: float | None) -> str:
        return "–" if lat is None or lon is None else f"{lat:.5f}, {lon:.5f}"

    def clock(self, moment: datetime, now: datetime) -> str:
        """A time as the clock on the meldkamer's wall shows it, beside how long ago: "21:14 · 22 min" (with the
        date when it was not today)."""
        local, today = moment.astimezone(DUTCH_TIME), now.astimezone(DUTCH_TIME)
        shown = local.strftime("%H:%M") if local.date() == today.date() else local.strftime("%d-%m %H:%M")
        return f"{shown} · {self.age((now - moment).total_seconds())}"
