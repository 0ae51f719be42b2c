"""From checks to a verdict: forward, review (a human should look) or reject, with a score and reasons.

Reject only on hard evidence (content that cannot be decoded or found); never because metadata is missing.
"""

from __future__ import annotations

from burgermelding_shared.contracts import CheckResult, PhotoVerification, Verdict
from verification.checks import WEIGHTS, check

# Hard evidence only: content that cannot be decoded or found, the same report sent again, spam.
HARD_FAILURES = {"photo_undecodable", "photo_missing", "resubmitted", "spam"}
REVIEW_BELOW = 0.5
TEXT_ONLY_SCORE = 0.7  # a tip without a photo is fine, but there is less to check


def decide(photos: list[PhotoVerification], duplicate_of: list[str],
           report_checks: list[CheckResult] | None = None) -> tuple[Verdict, float, list[CheckResult]]:
    reasons = [c for p in photos for c in p.checks if c.outcome in ("warn", "fail")]
    reasons += [c for c in report_checks or [] if c.outcome in ("warn", "fail")]
    for reason in reasons:  # weights are configured in this process; photo checks were made in worker processes
        reason.weight = WEIGHTS.get(reason.code, 0.0)
    if duplicate_of:
        reasons.append(check("exact_duplicate", "warn",
                             f"A photo in this report was already sent with {len(duplicate_of)} earlier report(s).",
                             f"Een foto in deze melding zat al bij {len(duplicate_of)} eerdere melding(en)."))
    if any(c.code in HARD_FAILURES and c.outcome == "fail" for c in reasons):
        return "reject", 0.0, reasons
    base = 1.0 if photos else TEXT_ONLY_SCORE
    score = max(0.0, min(1.0, base - sum(c.weight for c in reasons)))
    verdict: Verdict = "review" if (score < REVIEW_BELOW or duplicate_of) else "forward"
    return verdict, round(score, 3), reasons
