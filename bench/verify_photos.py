"""Verification benchmark: per-photo work against a bare reduced decode, and near-duplicate search at scale.

Prints one JSON line and a readable table. Not a test: figures depend on the machine.

    uv run python bench/verify_photos.py [--photos 12] [--millions 1 10]

1. Per photo, on 12 MP JPEGs (4000x3000, quality 90, with EXIF) made here: the full verification work of one
   photo (`analyse_photo`: digest check, EXIF, the pixels of intake's display copy, pHash, PDQ of all 8
   rotations and mirrors, thumbnail, C2PA scan, checks) against a bare reduced decode (`draft` + `load`) of the
   same files in the same run. Target: at most 1.5x. Also without a display copy (the original decoded).
2. Near-duplicate search (the index the service uses): p50 and p99 of one pHash query (radius 12) against 1
   and 10 million stored 64-bit hashes, and one PDQ query (8 variants, radius 50) against 1 million 256-bit
   hashes; memory per million. Targets on 2 cores: p50 <= 1 ms at 1M, <= 10 ms at 10M.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from PIL import Image

from burgermelding_shared.blobstore import BlobStoreConfig, LocalBlobStore
from tests.helpers import exif_time, gps_tags, make_scene
from verification.analysis import PhotoJob, analyse_photo
from verification.checks import Claim
from verification.nearindex import NearDuplicateIndex, Thresholds


def twelve_megapixel(seed: int) -> bytes:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Google", "Pixel 8"
    exif.get_ifd(0x8769).update({0x9003: exif_time(datetime.now(UTC)), 0x9011: "+00:00"})
    exif.get_ifd(0x8825).update(gps_tags(52.09, 5.12))
    buffer = io.BytesIO()
    make_scene(seed, (4000, 3000)).save(buffer, "JPEG", quality=90, exif=exif.tobytes())
    return buffer.getvalue()


def bare_reduced_decode(data: bytes) -> None:
    """The reference's bare reduced decode: draft at 1/8, load."""
    with Image.open(io.BytesIO(data)) as im:
        w, h = im.size
        im.draft("RGB", (w // 8, h // 8))
        im.load()


def per_photo(count: int) -> dict[str, float]:
    photos = [twelve_megapixel(seed) for seed in range(count)]
    with tempfile.TemporaryDirectory() as folder:
        store = LocalBlobStore(Path(folder))
        digests = [store.put_bytes(p) for p in photos]
        displays = [store.put_bytes(display_copy(Path(folder), p)) for p in photos]
        now = datetime.now(UTC)
        claim = Claim(observed_at=now, received_at=now, lat=52.09, lon=5.12, accuracy_m=10)
        # As the suite runs it (pixels from intake's display copy), and without one (the original decoded).
        jobs = [
            PhotoJob(BlobStoreConfig(folder), f"p{i}", d, claim, 50_000_000, 24, 500, display)
            for i, (d, display) in enumerate(zip(digests, displays, strict=True))
        ]
        fallback_jobs = [
            PhotoJob(BlobStoreConfig(folder), f"p{i}", d, claim, 50_000_000, 24, 500) for i, d in enumerate(digests)
        ]
        analyse_photo(jobs[0])  # warm-up: imports, first allocations
        bare_reduced_decode(photos[0])
        bare, full, fallback = [], [], []
        for _ in range(3):  # interleaved, so all see the same machine state
            for data, job, fallback_job in zip(photos, jobs, fallback_jobs, strict=True):
                t = time.perf_counter()
                bare_reduced_decode(data)
                bare.append(time.perf_counter() - t)
                t = time.perf_counter()
                analyse_photo(job)
                full.append(time.perf_counter() - t)
                t = time.perf_counter()
                analyse_photo(fallback_job)
                fallback.append(time.perf_counter() - t)
    b, f, o = (statistics.median(v) * 1000 for v in (bare, full, fallback))
    return {
        "photo_mb": round(statistics.mean(len(p) for p in photos) / 1e6, 2),
        "bare_reduced_decode_ms": round(b, 1),
        "verification_ms": round(f, 1),
        "ratio": round(f / b, 2),
        "verification_without_display_copy_ms": round(o, 1),
    }


def display_copy(folder: Path, data: bytes) -> bytes:
    """The display copy intake makes (by intake's own code)."""
    from burgermelding_shared.images import check_photo

    upload = folder / "upload.jpg"
    upload.write_bytes(data)
    return check_photo(upload, max_pixels=50_000_000, display_max_side=2048, index=0).display_jpeg


def rss_bytes() -> int:
    with open(f"/proc/{os.getpid()}/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def search(millions: float, queries: int = 200) -> dict[str, float]:
    rng = np.random.default_rng(7)
    index = NearDuplicateIndex()
    n = int(millions * 1_000_000)
    before = rss_bytes()
    chunk = 1_000_000
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        index.phash.add_many(np.arange(start, start + size), rng.integers(0, 256, (size, 8), dtype=np.uint8))
    memory = rss_bytes() - before
    timings = []
    for _ in range(queries):
        query = int(rng.integers(0, 2**63))
        t = time.perf_counter()
        code = np.frombuffer(query.to_bytes(8, "big"), dtype=np.uint8).reshape(1, 8)
        index.phash.within(code, Thresholds().phash_candidate)
        timings.append(time.perf_counter() - t)
    timings.sort()
    return {
        "stored": n,
        "p50_ms": round(timings[len(timings) // 2] * 1000, 3),
        "p99_ms": round(timings[int(len(timings) * 0.99)] * 1000, 3),
        "memory_mb_per_million": round(memory / millions / 1e6, 1),
        "index_bytes_per_million": round(index.memory_bytes() / millions),
    }


def pdq_search(queries: int = 50) -> dict[str, float]:
    rng = np.random.default_rng(8)
    index = NearDuplicateIndex()
    for start in range(0, 1_000_000, 250_000):
        index.pdq.add_many(np.arange(start, start + 250_000), rng.integers(0, 256, (250_000, 32), dtype=np.uint8))
    timings = []
    for _ in range(queries):
        variants = rng.integers(0, 256, (8, 32), dtype=np.uint8)
        t = time.perf_counter()
        index.pdq.within(variants, Thresholds().pdq_candidate)
        timings.append(time.perf_counter() - t)
    return {"stored": 1_000_000, "variants": 8, "p50_ms": round(statistics.median(timings) * 1000, 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=int, default=12)
    parser.add_argument("--millions", type=float, nargs="+", default=[1, 10])
    args = parser.parse_args()
    photo = per_photo(args.photos)
    searches = {f"{m:g}M": search(m) for m in args.millions}
    pdq = pdq_search()
    print(json.dumps({"benchmark": "verification", "per_photo": photo, "phash_search": searches, "pdq_search_1M": pdq}))
    print(f"\nper photo (12 MP JPEG, {photo['photo_mb']} MB, median of {3 * args.photos})")
    print(f"  bare reduced decode   {photo['bare_reduced_decode_ms']:8.1f} ms")
    print(
        f"  verification          {photo['verification_ms']:8.1f} ms   ratio {photo['ratio']:.2f} (target <= 1.5), "
        "pixels from intake's display copy"
    )
    print(f"  without a display copy {photo['verification_without_display_copy_ms']:7.1f} ms   (the original decoded)")
    print("\nnear-duplicate search, one pHash query, radius 12")
    print(f"  {'stored':>12s} {'p50 ms':>8s} {'p99 ms':>8s} {'MB/million (RSS)':>17s} {'index B/million':>16s}")
    for row in searches.values():
        print(
            f"  {row['stored']:12,d} {row['p50_ms']:8.3f} {row['p99_ms']:8.3f} {row['memory_mb_per_million']:17.1f}"
            f" {row['index_bytes_per_million']:16,.0f}"
        )
    print(f"\nPDQ, 8 variants against 1,000,000 stored, radius 50: p50 {pdq['p50_ms']} ms")


if __name__ == "__main__":
    main()
