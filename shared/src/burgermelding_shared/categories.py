"""The report categories a citizen chooses from, in Dutch and English, mapped to the meldkamer's vocabularies.

`lmc` is the Dutch national meldkamer classification (LMC, three levels: top / middle / detail as far as a
citizen's choice allows); `apco` is the EIDO `incidentTypeCommonRegistryText` (APCO common incident types).
`priority` is the proposed meldkamer priority when nothing is urgent (prio 1 is reserved for reports that are
in progress or endanger life, decided per report). `family` says which categories can describe one event (a
fight reported as violence by one witness and as robbery by another): see `events.py`; "any" fits every event.
The APCO codes other than those named in the reference material still need checking against the registry
before a real integration.
"""

from __future__ import annotations

from dataclasses import dataclass

from burgermelding_shared.urgency import MeldkamerPriority

URGENT, HIGH, NORMAL = MeldkamerPriority.URGENT, MeldkamerPriority.HIGH, MeldkamerPriority.NORMAL


@dataclass(frozen=True)
class Category:
    code: str
    name_nl: str
    name_en: str
    hint_nl: str
    hint_en: str
    lmc: str
    apco: str
    priority: MeldkamerPriority
    family: str


CATEGORIES: dict[str, Category] = {
    c.code: c
    for c in [
        Category(
            "burglary",
            "Inbraak",
            "Burglary",
            "Iemand breekt in of is ingebroken",
            "Someone is breaking in or has broken in",
            "Bezitsaantasting / Inbraak",
            "BURGLARY",
            HIGH,
            "crime",
        ),
        Category(
            "theft",
            "Diefstal",
            "Theft",
            "Iets is of wordt gestolen",
            "Something is or was stolen",
            "Bezitsaantasting / Diefstal",
            "THEFT",
            NORMAL,
            "crime",
        ),
        Category(
            "robbery",
            "Overval of beroving",
            "Robbery or mugging",
            "Iemand wordt met geweld beroofd",
            "Someone is robbed with force or threat",
            "Bezitsaantasting / Overval",
            "ROBBERY",
            HIGH,
            "crime",
        ),
        Category(
            "violence",
            "Geweld of vechtpartij",
            "Violence or fight",
            "Mensen worden aangevallen of vechten",
            "People are being attacked or fighting",
            "Veiligheid en openbare orde / Vechtpartij",
            "ASSAULT",
            HIGH,
            "crime",
        ),
        Category(
            "suspicious_situation",
            "Verdachte situatie",
            "Suspicious situation",
            "Iets of iemand gedraagt zich verdacht",
            "A person or thing behaves suspiciously",
            "Veiligheid en openbare orde / Verdachte situatie",
            "PERSUSP",
            HIGH,
            "crime",
        ),
        Category(
            "vandalism",
            "Vernieling",
            "Vandalism",
            "Iets wordt vernield of beklad",
            "Something is being damaged or defaced",
            "Bezitsaantasting / Vernieling",
            "VANDALISM",
            NORMAL,
            "crime",
        ),
        Category(
            "traffic_accident",
            "Verkeersongeval",
            "Traffic accident",
            "Een aanrijding of ongeluk",
            "A collision or crash",
            "Ongeval / Wegvervoer",
            "COLLISION",
            HIGH,
            "traffic",
        ),
        Category(
            "dangerous_driving",
            "Gevaarlijk rijgedrag",
            "Dangerous driving",
            "Iemand rijdt gevaarlijk of onder invloed",
            "Someone drives dangerously or under influence",
            "Verkeer / Rijgedrag",
            "TRAFFIC",
            NORMAL,
            "traffic",
        ),
        Category(
            "fire",
            "Brand",
            "Fire",
            "Er is brand of rook",
            "There is fire or smoke",
            "Brand / Buiten",
            "FIRE",
            HIGH,
            "fire",
        ),
        Category(
            "drugs",
            "Drugsoverlast",
            "Drugs",
            "Handel in of overlast van drugs",
            "Drug dealing or nuisance",
            "Veiligheid en openbare orde / Drugs",
            "DRUGS",
            NORMAL,
            "crime",
        ),
        Category(
            "public_nuisance",
            "Overlast",
            "Public nuisance",
            "Lawaai, hinder of intimidatie",
            "Noise, disturbance or intimidation",
            "Veiligheid en openbare orde / Overlast",
            "DISTURB",
            NORMAL,
            "crime",
        ),
        Category(
            "missing_person",
            "Vermiste persoon",
            "Missing person",
            "U ziet iemand die vermist wordt",
            "You see someone who is missing",
            "Veiligheid en openbare orde / Vermissing",
            "MISSING",
            HIGH,
            "crime",
        ),
        Category(
            "other",
            "Anders",
            "Other",
            "Iets anders dat de politie moet weten",
            "Something else the police should know",
            "Veiligheid en openbare orde / Overig",
            "NONEMERG",
            NORMAL,
            "any",
        ),
    ]
}
