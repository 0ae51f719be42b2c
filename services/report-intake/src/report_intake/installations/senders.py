"""Who sent a request: an app installation or a network address, by a daily pseudonym, and whether it is an
independent witness of its own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from report_intake.models import Installation


def independent_source(installation: Installation, at: datetime) -> str | None:
    """The witness a report this installation makes at `at` counts as, when that is not the installation
    itself (None); the one rule, decided here only, once per report: the report keeps it
    (`Report.independent_source`), and every later message about it (photos added, display copies made, after
    the hour too) carries the same one.

    One address can register many installations within minutes, so fresh credentials alone would let one
    person be many witnesses; behind carrier-grade NAT many honest witnesses share an address, so the address
    alone cannot decide either. Installations registered from one address count as one source (that address's
    pseudonym) for the reports they make in their first NEW_INSTALLATION; after that each is its own. The window
    is fixed per installation when it registers: nothing a client does later moves it.

    What this rule does not stop, by design: someone who registers many installations and waits out the hour
    before reporting has as many witnesses (the rule raises the cost of a fake crowd, from minutes to an hour
    of patience, and the registration limit per address still bounds how many; it tells nothing about who
    holds a phone). And the pseudonym changes at midnight with the day's salt: installations registered just
    before and just after midnight count as two sources."""
    if installation.registered_from and installation.new_until and at < installation.new_until:
        return installation.registered_from
    return None


SubmitterKind = Literal["installation", "address", "integrator"]


@dataclass(frozen=True)
class Sender:
    """Who sends a request, as far as limits, flood checks and witness counts need to know; never stored (but
    a report keeps the independent source it was made with)."""

    address: str | None
    installation_id: str | None = None
    # Set while the installation is new: the one witness it counts as with the others new from its address
    # (installations.independent_source). A report made now keeps it (`Report.independent_source`).
    independent_source: str | None = None
    # An Open311 integrator whose api_key came with the request: its own limits, and its reports marked as its.
    integrator_id: str | None = None


@dataclass(frozen=True)
class Submitter:
    """What a message about a report carries of the sender of the request behind it: the daily pseudonym
    verification's flood checks count by. (The independent source is not the sender's but the report's: it
    keeps the one it was made with, `Report.independent_source`.)"""

    tag: str
    kind: SubmitterKind
