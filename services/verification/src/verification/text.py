"""A report's words: hashed to compare without keeping them, and whether they say anything at all."""

from __future__ import annotations

import hashlib

from burgermelding_shared.contracts import ReportSubmitted
from burgermelding_shared.events import normalise_text


def text_hash(text: str) -> str:
    return hashlib.sha256(normalise_text(text).encode()).hexdigest()


def content_hash(report: ReportSubmitted) -> str:
    parts = [report.category, normalise_text(report.description), *sorted(p.sha256 for p in report.photos)]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def is_meaningless(text: str) -> bool:
    words = normalise_text(text).split()
    letters = sum(ch.isalpha() for ch in text)
    if letters < 3 or not words:
        return True
    compact = "".join(words)
    if max(compact.count(ch) for ch in set(compact)) / len(compact) > 0.8:  # "aaaaaa", "!!!!!1"
        return True
    return len(words) >= 3 and len(set(words)) == 1  # "test test test"
