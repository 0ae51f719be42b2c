"""The near-duplicate index: every photo seen before, searchable by Hamming distance in about a millisecond.

Held in memory (faiss binary flat indexes: exact search, no training, 8 bytes a photo for pHash and 32 for
PDQ), rebuilt from the database at start-up and brought up to date from the database before every search, so
two replicas of this service each see what the other stored. Flat search is exhaustive: it never misses a
match within the radius, which an approximate index could.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np
from sqlalchemy import select

from burgermelding_shared.db import Database
from verification.models import PhotoFingerprint
from verification.phash import to_unsigned

# From ../shared/reference/photo-verification.md: same image / candidate for review.
PHASH_SAME, PHASH_CANDIDATE = 6, 12
PDQ_SAME, PDQ_CANDIDATE, PDQ_MIN_QUALITY = 31, 50, 50
RESCAN = 1000  # ids committed out of order (concurrent transactions) are picked up by re-reading this window


@dataclass(frozen=True)
class Match:
    fingerprint_id: int
    phash_distance: int | None
    pdq_distance: int | None

    @property
    def same_image(self) -> bool:
        return (self.phash_distance is not None and self.phash_distance <= PHASH_SAME) or (
            self.pdq_distance is not None and self.pdq_distance <= PDQ_SAME)


def phash_code(value: int) -> np.ndarray:
    return np.frombuffer(to_unsigned(value).to_bytes(8, "big"), dtype=np.uint8).reshape(1, 8)


class _BinaryIndex:
    def __init__(self, bits: int) -> None:
        self.index = faiss.IndexBinaryFlat(bits)
        self.ids = np.empty(0, dtype=np.int64)
        self._pending_codes: list[np.ndarray] = []
        self._pending_ids: list[int] = []

    def add(self, fingerprint_id: int, code: np.ndarray) -> None:
        self._pending_codes.append(code.reshape(1, -1))
        self._pending_ids.append(fingerprint_id)

    def flush(self) -> None:
        if self._pending_codes:
            self.index.add(np.vstack(self._pending_codes))
            self.ids = np.concatenate([self.ids, np.asarray(self._pending_ids, dtype=np.int64)])
            self._pending_codes, self._pending_ids = [], []

    def within(self, codes: np.ndarray, radius: int) -> dict[int, int]:
        """fingerprint id -> smallest distance, for every stored code within `radius` of any query code."""
        if self.index.ntotal == 0:
            return {}
        _limits, distances, positions = self.index.range_search(np.ascontiguousarray(codes), radius + 1)
        found: dict[int, int] = {}
        for position, distance in zip(positions.tolist(), distances.tolist(), strict=True):
            fid = int(self.ids[position])
            found[fid] = min(distance, found.get(fid, distance))
        return found

    def memory_bytes(self) -> int:
        return self.index.ntotal * self.index.code_size + self.ids.nbytes


class NearDuplicateIndex:
    def __init__(self) -> None:
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
        if pdq is not None and (pdq_quality or 0) >= PDQ_MIN_QUALITY:  # Meta ignores low-quality PDQ hashes
            self.pdq.add(fingerprint_id, np.frombuffer(pdq, dtype=np.uint8))

    async def sync(self, db: Database) -> None:
        """Load what was stored since the last sync (by this or any other replica)."""
        async with db.sessions() as session:
            rows = (await session.execute(
                select(PhotoFingerprint.id, PhotoFingerprint.phash, PhotoFingerprint.pdq, PhotoFingerprint.pdq_quality)
                .where(PhotoFingerprint.id > self.max_id - RESCAN).order_by(PhotoFingerprint.id))).all()
        for fid, phash, pdq, quality in rows:
            self.add(fid, phash, pdq, quality)
        self.phash.flush()
        self.pdq.flush()
        # Only ids that a later re-scan can see again need remembering.
        self.known = {fid for fid in self.known if fid > self.max_id - 2 * RESCAN}

    def search(self, phash: int | None, pdq_variants: list[bytes]) -> list[Match]:
        """Stored photos that are the same image or a candidate for review (pHash, or PDQ of any rotation or
        mirror of the query)."""
        by_phash = self.phash.within(phash_code(phash), PHASH_CANDIDATE) if phash is not None else {}
        by_pdq = self.pdq.within(np.vstack([np.frombuffer(v, dtype=np.uint8) for v in pdq_variants]),
                                 PDQ_CANDIDATE) if pdq_variants else {}
        return [Match(fid, by_phash.get(fid), by_pdq.get(fid)) for fid in sorted(set(by_phash) | set(by_pdq))]

    def memory_bytes(self) -> int:
        return self.phash.memory_bytes() + self.pdq.memory_bytes()
