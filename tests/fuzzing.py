"""What the fuzzers share (tests/test_fuzz_photos.py, tests/test_fuzz_videos.py): Hypothesis settings that are
reproducible and scalable, a check that every case asked for ran, a readable sample, and byte damage."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import wraps
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# A longer campaign: BM_FUZZ_SCALE=20 runs twenty times as many examples (from the same fixed seed).
SCALE = max(1, int(os.environ.get("BM_FUZZ_SCALE", "1")))


def fuzz_settings(examples: int) -> settings:
    # The data is large and varied on purpose (whole files): Hypothesis's size and speed health checks would
    # only tell us so. No database: a failure is reproduced by the derandomized run itself.
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )


def fuzz(examples: int) -> Callable[[Any], Any]:
    """A fuzz test's settings (put above its `@given`), and a check after it: it fails unless every one of the
    `examples` cases (times BM_FUZZ_SCALE) reached the test's body. A strategy that throws most of what it draws
    away, or a search space smaller than asked for, would otherwise pass on a handful of cases, or none."""
    wanted = examples * SCALE

    def decorate(test: Any) -> Any:
        ran = [0]
        inner = test.hypothesis.inner_test

        @wraps(inner)
        def counted(*args: Any, **kwargs: Any) -> None:
            ran[0] += 1
            inner(*args, **kwargs)

        test.hypothesis.inner_test = counted
        configured = fuzz_settings(examples)(test)

        @wraps(configured)
        def checked(*args: Any, **kwargs: Any) -> None:
            ran[0] = 0
            configured(*args, **kwargs)
            assert ran[0] >= wanted, f"only {ran[0]} of the {wanted} fuzz cases asked for ran"

        return checked

    return decorate


class Sample:
    """A fuzzed file and how it was made (shown when a property fails, instead of kilobytes of bytes)."""

    def __init__(self, recipe: str, data: bytes) -> None:
        self.recipe, self.data = recipe, data

    def __repr__(self) -> str:
        return f"Sample({self.recipe!r}, {len(self.data)} bytes)"


@st.composite
def byte_damage(draw: st.DrawFn, data: bytes, focus: tuple[int, int] = (0, 600)) -> tuple[str, bytes]:
    """Up to three kinds of damage, half of them in `focus` (by default the start, where the headers are): cut
    off, bits flipped, bytes overwritten, inserted, removed or repeated."""
    notes = []
    for _ in range(draw(st.integers(1, 3)) if draw(st.booleans()) else 0):  # half the files structurally whole
        if not data:
            break
        start = min(focus[0], len(data) - 1)
        at = draw(
            st.one_of(st.integers(start, max(start, min(len(data), focus[1]) - 1)), st.integers(0, len(data) - 1))
        )
        kind = draw(st.sampled_from(["truncate", "flip", "overwrite", "insert", "delete", "repeat"]))
        if kind == "truncate":
            data = data[:at]
        elif kind == "flip":
            data = data[:at] + bytes([data[at] ^ (1 << draw(st.integers(0, 7)))]) + data[at + 1 :]
        elif kind == "overwrite":
            patch = draw(
                st.one_of(
                    st.binary(min_size=1, max_size=8),
                    st.sampled_from(
                        [
                            b"\x00\x00",
                            b"\xff\xff",
                            b"\xff\xff\xff\xff",
                            b"\xff\xd9",
                            b"\xff\xd8\xff",
                            b"\x00\x00\x00\x01",
                        ]
                    ),
                )
            )
            data = data[:at] + patch + data[at + len(patch) :]
        elif kind == "insert":
            data = data[:at] + draw(st.binary(min_size=1, max_size=64)) + data[at:]
        elif kind == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 256)) :]
        else:
            span = draw(st.integers(1, 256))
            data = data[: at + span] + data[at : at + span] + data[at + span :]
        notes.append(f"{kind}@{at}")
    return ", ".join(notes), data
