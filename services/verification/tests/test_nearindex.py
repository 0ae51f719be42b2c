"""The near-duplicate index's bands: same image, candidate for review, different; thresholds configurable."""

from __future__ import annotations

import random

from verification.nearindex import NearDuplicateIndex, Thresholds


def flip(value: int, bits: int, seed: int = 7) -> int:
    """`value` with `bits` distinct bits flipped (a pHash at exactly that Hamming distance)."""
    for position in random.Random(seed).sample(range(64), bits):
        value ^= 1 << position
    return value


def index_with(stored: dict[int, int], thresholds: Thresholds | None = None) -> NearDuplicateIndex:
    index = NearDuplicateIndex(thresholds)
    for fingerprint_id, phash in stored.items():
        index.add(fingerprint_id, phash, None, None)
    index.phash.flush()
    return index


def test_distances_fall_into_same_candidate_and_different() -> None:
    base = 0x9F3A_51C7_0E2B_D468
    index = index_with({1: base, 2: flip(base, 9, seed=1), 3: flip(base, 20, seed=2)})
    found = {m.fingerprint_id: m for m in index.search(base, [])}
    assert found[1].phash_distance == 0 and found[1].same_image
    assert found[2].phash_distance == 9 and not found[2].same_image  # 7-12: a person should compare
    assert 3 not in found  # 20 bits apart: unrelated photos are at least this far apart


def test_the_edges_of_the_default_bands() -> None:
    base = 0x0123_4567_89AB_CDEF
    index = index_with(
        {1: flip(base, 6, seed=3), 2: flip(base, 7, seed=4), 3: flip(base, 12, seed=5), 4: flip(base, 13, seed=6)}
    )
    found = {m.fingerprint_id: m.same_image for m in index.search(base, [])}
    assert found == {1: True, 2: False, 3: False}


def test_thresholds_come_from_settings() -> None:
    from verification.config import VerificationSettings

    settings = VerificationSettings(phash_same_max=2, phash_candidate_max=4)
    base = 0x0F0F_0F0F_F0F0_F0F0
    index = index_with({1: flip(base, 3, seed=8), 2: flip(base, 6, seed=9)}, settings.near_duplicate_thresholds())
    found = {m.fingerprint_id: m.same_image for m in index.search(base, [])}
    assert found == {1: False}  # 3 bits: now only a candidate; 6 bits: now different


def test_the_sharded_parallel_search_finds_exactly_what_a_brute_force_scan_finds(monkeypatch) -> None:
    import numpy as np

    from verification.nearindex import _BinaryIndex

    rng = np.random.default_rng(11)
    codes = rng.integers(0, 256, (5000, 8), dtype=np.uint8)
    queries = codes[:20].copy()
    queries[:, 0] ^= 0b1011  # a few bits off, so every query has close neighbours
    index = _BinaryIndex(64)
    index.add_many(np.arange(100, 100 + 4000), codes[:4000])  # a batch, spread over the shards
    for i in range(4000, 5000):  # and one at a time, as the service adds them
        index.add(100 + i, codes[i])
    index.flush()
    assert index.size == 5000 and min(s.index.ntotal for s in index.shards) > 0
    monkeypatch.setattr(_BinaryIndex, "PARALLEL_FROM", 1)
    as_int = codes.view(">u8").ravel()
    for query in queries:
        q = query.view(">u8")[0]
        distances = np.array([bin(int(v) ^ int(q)).count("1") for v in as_int])
        expected = {100 + int(i): int(distances[i]) for i in np.flatnonzero(distances <= 24)}
        assert index.within(query.reshape(1, 8), 24) == expected


def test_a_search_in_a_worker_thread_runs_faiss_single_threaded() -> None:
    """The service searches from executor threads; faiss's OpenMP thread count is per thread, and its spinning
    threads made each search cost 30 times the CPU of the scan itself. A search leaves its thread at one."""
    import threading

    import faiss

    index = NearDuplicateIndex()
    index.add(1, 0x0123456789ABCDEF, bytes(range(32)), 90)
    index.phash.flush()
    index.pdq.flush()
    seen: list[int] = []

    def search_in_fresh_thread() -> None:
        index.search(0x0123456789ABCDEF, [bytes(range(32))])
        seen.append(faiss.omp_get_max_threads())

    thread = threading.Thread(target=search_in_fresh_thread)
    thread.start()
    thread.join()
    assert seen == [1]
