"""The near-duplicate index: every photo seen before, searchable by Hamming distance in about a millisecond.

Held in memory (faiss binary flat indexes: exact search, no training, 8 bytes a photo for pHash and 32 for
PDQ, split over one shard per core that are searched in parallel), rebuilt from the database at start-up
and brought up to date from the database before every search, so two replicas of this service each see
what the other stored. Flat search is exhaustive: it never misses a match within the radius, which an
approximate index could.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import faiss
import numpy as np
from sqlmodel import col, select

from burgermelding_shared.db import Database
from verification.models import PhotoFingerprint
from verification.phash import to_unsigned

RESCAN = 1000  # ids committed out of order (concurrent transactions) are picked up by re-reading this window


@dataclass(frozen=True)
class Thresholds:
    """Hamming distances (inclusive). Defaults from ../shared/reference/photo-verification.md: pHash <= 6 or
    PDQ <= 31 is the same image; pHash 7-12 or PDQ 32-50 a candidate a human should compare; PDQ hashes of
    quality below 50 are not indexed (Meta ignores them: flat images hash unreliably)."""

    phash_same: int = 6
    phash_candidate: int = 12
    pdq_same: int = 31
    pdq_candidate: int = 50
    pdq_min_quality: int = 50


@dataclass(frozen=True)
class Match:
    fingerprint_id: int
    phash_distance: int | None
    pdq_distance: int | None
    same_image: bool  # within the "same image" thresholds; otherwise a candidate for review


def phash_code(value: int) -> np.ndarray:
    return np.frombuffer(to_unsigned(value).to_bytes(8, "big"), dtype=np.uint8).reshape(1, 8)


class _Shard:
    """One faiss flat index and the fingerprint id of each of its rows."""

    def __init__(self, bits: int) -> None:
        self.index = faiss.IndexBinaryFlat(bits)
        # Grown by doubling: copying every id on every insert would cost 40 MB a photo at ten million.
        self._ids = np.empty(1024, dtype=np.int64)
        self._count = 0

    @property
    def ids(self) -> np.ndarray:
        return self._ids[: self._count]

    def add(self, ids: np.ndarray, codes: np.ndarray) -> None:
        needed = self._count + len(ids)
        if needed > len(self._ids):
            grown = np.empty(max(needed, 2 * len(self._ids)), dtype=np.int64)
            grown[: self._count] = self._ids[: self._count]
            self._ids = grown
        self.index.add(np.ascontiguousarray(codes))
        self._ids[self._count : needed] = ids
        self._count = needed

    def within(self, codes: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
        """(fingerprint ids, distances) of the rows strictly closer than `radius` + 1 to any query code."""
        if self.index.ntotal == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int32)
        _single_threaded_faiss()
        _limits, distances, positions = self.index.range_search(codes, radius + 1)
        return self._ids[positions], distances


class _BinaryIndex:
    """Codes of one kind (pHash or PDQ), split over one shard per core.

    A flat search of one query runs on one core; with the codes split, every core scans its own share at the
    same time (faiss releases the GIL), which halves a query on two cores. Small indexes are searched in the
    calling thread: below PARALLEL_FROM rows the hand-over costs more than it saves."""

    PARALLEL_FROM = 200_000

    def __init__(self, bits: int) -> None:
        self.shards = [_Shard(bits) for _ in range(max(1, os.cpu_count() or 1))]
        self._pending_codes: list[np.ndarray] = []
        self._pending_ids: list[int] = []

    @property
    def size(self) -> int:
        return sum(shard.index.ntotal for shard in self.shards)

    def add(self, fingerprint_id: int, code: np.ndarray) -> None:
        self._pending_codes.append(code.reshape(1, -1))
        self._pending_ids.append(fingerprint_id)

    def add_many(self, ids: np.ndarray, codes: np.ndarray) -> None:
        """Add a batch at once: a large one spread over every shard, a small one to the shard that holds
        fewest, so the shards stay about equal (and so does the time each takes to scan)."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) < 1024:
            min(self.shards, key=lambda shard: shard.index.ntotal).add(ids, codes)
            return
        for shard, part_ids, part_codes in zip(
            self.shards, np.array_split(ids, len(self.shards)), np.array_split(codes, len(self.shards)), strict=True
        ):
            shard.add(part_ids, part_codes)

    def flush(self) -> None:
        if self._pending_codes:
            self.add_many(np.asarray(self._pending_ids, dtype=np.int64), np.vstack(self._pending_codes))
            self._pending_codes, self._pending_ids = [], []

    def within(self, codes: np.ndarray, radius: int) -> dict[int, int]:
        """fingerprint id -> smallest distance, for every stored code within `radius` of any query code."""
        codes = np.ascontiguousarray(codes)
        if self.size >= self.PARALLEL_FROM and len(self.shards) > 1:
            # The other shards go to the pool; this thread scans the first itself (one hand-off fewer).
            others = [_search_threads().submit(shard.within, codes, radius) for shard in self.shards[1:]]
            parts = [self.shards[0].within(codes, radius), *(future.result() for future in others)]
        else:
            parts = [shard.within(codes, radius) for shard in self.shards]
        found: dict[int, int] = {}
        for ids, distances in parts:
            for fid, distance in zip(ids.tolist(), distances.tolist(), strict=True):
                found[fid] = min(distance, found.get(fid, distance))
        return found

    def memory_bytes(self) -> int:
        return sum(shard.index.ntotal * shard.index.code_size + shard._ids.nbytes for shard in self.shards)


def _single_threaded_faiss() -> None:
    """faiss's OpenMP threads spin while they wait for work: with them, a search of a few hundred hashes cost
    more CPU than the rest of a photo's verification (range_search was 14-22% of the service's samples in the
    throughput bench with under a thousand photos stored; 460 instead of 15 us of CPU a search). Parallel
    scans use the shards' threads instead. OpenMP's thread count is a setting of the calling thread, so it is
    set in whichever thread searches (an executor's, not the one that imported faiss); it costs nothing."""
    faiss.omp_set_num_threads(1)


@functools.cache
def _search_threads() -> ThreadPoolExecutor:
    # One thread per shard.
    return ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1), thread_name_prefix="near-index")


class NearDuplicateIndex:
    def __init__(self, thresholds: Thresholds | None = None) -> None:
        self.thresholds = thresholds or Thresholds()
        self.phash = _BinaryIndex(64)
        self.pdq = _BinaryIndex(256)
        self.known: set[int] = set()
        self.max_id = 0

    def add(self, fingerprint_id: int, phash: int | None, pdq: bytes | None, pdq_quality: int | None) -> None:
        if fingerprint_id in self.known:
            return
        self.known.add(fingerprint_id)
        self.max_id = max(self.max_id, fingerprint_id)
        if phash is not None:
            self.phash.add(fingerprint_id, phash_code(phash))
        if pdq is not None and (pdq_quality or 0) >= self.thresholds.pdq_min_quality:
            self.pdq.add(fingerprint_id, np.frombuffer(pdq, dtype=np.uint8))

    async def sync(self, db: Database) -> None:
        """Load what was stored since the last sync (by this or any other replica)."""
        async with db.sessions() as session:
            rows = (
                await session.execute(
                    select(
                        PhotoFingerprint.id, PhotoFingerprint.phash, PhotoFingerprint.pdq, PhotoFingerprint.pdq_quality
                    )
                    .where(col(PhotoFingerprint.id) > self.max_id - RESCAN)
                    .order_by(col(PhotoFingerprint.id))
                )
            ).all()
        for fid, phash, pdq, quality in rows:
            self.add(fid, phash, pdq, quality)
        self.phash.flush()
        self.pdq.flush()
        # Only ids that a later re-scan can see again need remembering.
        self.known = {fid for fid in self.known if fid > self.max_id - 2 * RESCAN}

    def search(self, phash: int | None, pdq_variants: list[bytes]) -> list[Match]:
        """Stored photos that are the same image or a candidate for review (pHash, or PDQ of any rotation or
        mirror of the query)."""
        limits = self.thresholds
        by_phash = self.phash.within(phash_code(phash), limits.phash_candidate) if phash is not None else {}
        by_pdq = (
            self.pdq.within(np.vstack([np.frombuffer(v, dtype=np.uint8) for v in pdq_variants]), limits.pdq_candidate)
            if pdq_variants
            else {}
        )
        matches = []
        for fid in sorted(set(by_phash) | set(by_pdq)):
            phash_distance, pdq_distance = by_phash.get(fid), by_pdq.get(fid)
            same = (phash_distance is not None and phash_distance <= limits.phash_same) or (
                pdq_distance is not None and pdq_distance <= limits.pdq_same
            )
            matches.append(Match(fid, phash_distance, pdq_distance, same))
        return matches

    def memory_bytes(self) -> int:
        return self.phash.memory_bytes() + self.pdq.memory_bytes()
