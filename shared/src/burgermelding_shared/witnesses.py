"""Independent witnesses: the one rule for how many separate people an event's reports stand for.

A report counts as its sender (an app installation, by its daily pseudonym). One person can register many
installations from one address within minutes, so intake gives a report from an installation in its first hour
an independent source: the pseudonym of the address it registered from (`ReportSubmitted.independent_source`,
decided in report-intake's `installations.independent_source`). Reports that share a sender or an independent
source are one witness, however they are chained: an installation that reported both in its first hour and
later is still one witness with those registered beside it. Installations older than that are each their own
witness, however many share an address (carrier-grade NAT puts thousands of phones behind one).

A report is the witness its first message said, whatever its revisions (photos added, display copies made) say
later: intake keeps the source a report was made with and sends that one with every revision, verification keeps
the sender and source of a report's first message, and the bridge the first it saw of each. Otherwise a photo
added after the installation's first hour, or on the next day under that day's pseudonym, would make new
witnesses of old reports.

Verification counts corroboration by this rule and the bridge the event's witnesses, so the two never disagree.

Limits of the rule, by design: installations registered and then left for more than the hour before they report
are each their own witness (the rule costs a fake crowd an hour of patience, and the registration limit per
address bounds its size; nothing here knows who holds a phone); and the address pseudonym changes at midnight,
so installations registered from one address just before and just after midnight are two sources.
"""

from __future__ import annotations

from collections.abc import Iterable


def independent_witnesses(reports: Iterable[tuple[str, str | None]], excluding: str | None = None) -> int:
    """How many witnesses reports given as (sender, independent source or None) stand for. With `excluding` (a
    sender), the witness that sender is part of is left out: the others a report is corroborated by."""
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for sender, source in reports:
        one = root(f"sender:{sender}")
        if source is not None:
            parent[one] = root(f"source:{source}")
    witnesses = {root(node) for node in list(parent) if node.startswith("sender:")}
    if excluding is not None and f"sender:{excluding}" in parent:
        witnesses.discard(root(f"sender:{excluding}"))
    return len(witnesses)
