"""From checks to a verdict: forward, review (a human should look) or reject, with a score and reasons.

Reject only on hard evidence (content that cannot be decoded or found); never because metadata is missing.
Independent witnesses of the same event raise the score (`corroborated`, a negative weight), and as more of
them arrive an earlier report is assessed again (`reassess`): a report held for review because it had little
to check can be forwarded once others confirm it.
"""

from __future__ import annotations

from burgermelding_shared.contracts import CheckResult, PhotoVerification, Verdict, VerificationCompleted
from verification.checks import CORROBORATION_CAP, WEIGHTS, check, corroboration_check

# Hard evidence only: content that cannot be decoded or found, the same report sent again, spam.
HARD_FAILURES = {"photo_undecodable", "photo_missing", "resubmitted", "spam"}
REVIEW_BELOW = 0.5
TEXT_ONLY_SCORE = 0.7  # a tip without a photo is fine, but there is less to check


def _judge(reasons: list[CheckResult], has_photos: bool, duplicate_of: list[str]) -> tuple[Verdict, float]:
    """The one place a verdict is made from weighed reasons."""
    if any(c.code in HARD_FAILURES and c.outcome == "fail" for c in reasons):
        return "reject", 0.0
    base = 1.0 if has_photos else TEXT_ONLY_SCORE
    score = max(0.0, min(1.0, base - sum(c.weight for c in reasons)))
    return ("review" if (score < REVIEW_BELOW or duplicate_of) else "forward"), round(score, 3)


def decide(
    photos: list[PhotoVerification],
    duplicate_of: list[str],
    report_checks: list[CheckResult] | None = None,
    independent_others: int = 0,
) -> tuple[Verdict, float, list[CheckResult]]:
    reasons = [c for p in photos for c in p.checks if c.outcome in ("warn", "fail")]
    reasons += [c for c in report_checks or [] if c.outcome in ("warn", "fail")]
    for reason in reasons:  # weights are configured in this process; photo checks were made in worker processes
        reason.weight = WEIGHTS.get(reason.code, 0.0)
    if duplicate_of:
        reasons.append(
            check(
                "exact_duplicate",
                "warn",
                f"A photo in this report was already sent with {len(duplicate_of)} earlier report(s).",
                f"Een foto in deze melding zat al bij {len(duplicate_of)} eerdere melding(en).",
            )
        )
    corroboration = corroboration_check(independent_others)
    if corroboration is not None:
        reasons.append(corroboration)
    verdict, score = _judge(reasons, bool(photos), duplicate_of)
    return verdict, score, reasons


def reassess(result: VerificationCompleted, independent_others: int) -> VerificationCompleted | None:
    """The result again with more independent witnesses counted; None when nothing would change."""
    if min(independent_others, CORROBORATION_CAP) <= min(result.independent_witnesses, CORROBORATION_CAP):
        return None  # beyond the cap more witnesses change nothing
    reasons = [r for r in result.reasons if r.code != "corroborated"]
    corroboration = corroboration_check(independent_others)
    if corroboration is not None:
        reasons.append(corroboration)
    verdict, score = _judge(reasons, bool(result.photos), result.duplicate_of_reports)
    return result.model_copy(
        update={
            "verdict": verdict,
            "score": score,
            "reasons": reasons,
            "independent_witnesses": independent_others,
            "assessment": result.assessment + 1,
        }
    )
