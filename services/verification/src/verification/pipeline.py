"""The verification pipeline: a worker takes a job, checks its photos in a process pool, judges the report and its
group."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import timedelta

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from burgermelding_shared.app import Runtime
from burgermelding_shared.background import BackgroundLoop
from burgermelding_shared.blobstore import BlobStoreUnavailable
from burgermelding_shared.contracts import PhotoVerification, ReportSubmitted, VerificationCompleted
from burgermelding_shared.events import distance_m
from burgermelding_shared.messaging import Precedence
from burgermelding_shared.slots import lower_priority
from burgermelding_shared.timeutil import utcnow
from burgermelding_shared.tracing import continue_trace
from verification import grouping, records, vpdq
from verification.analysis import PhotoJob, analyse_media
from verification.checks import CORROBORATION_CAP, Claim, appeal_checks, check
from verification.config import VerificationSettings
from verification.floods import remember, text_checks
from verification.models import PhotoFingerprint, ReportText, VerificationJob
from verification.nearindex import Match, NearDuplicateIndex
from verification.phash import to_signed
from verification.queue import send_result
from verification.verdict import decide, reassess
from verification.vpdq import FrameHash

log = logging.getLogger(__name__)


def photo_pool(workers: int) -> ProcessPoolExecutor:
    """The processes that check photos. Spawned, not forked: forking a process that runs an event loop and
    threads copies their locks mid-use. At a lower scheduling priority (nice +5): no urgent report waits for its
    verification (the bridge forwards it at once), so when the cores are full, the urgent path gets them first."""
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=lower_priority, initargs=(5,)
    )


async def reassess_group(session: AsyncSession, report_ids: list[str], witnesses: dict[str, grouping.Witness]) -> int:
    """Assess the latest verified revision of each report again with the event's independent witnesses as they
    now stand; the changed results go to the bridge. Returns how many changed."""
    if not report_ids:
        return 0
    jobs = (
        (
            await session.execute(
                select(VerificationJob)
                .where(col(VerificationJob.report_id).in_(report_ids), VerificationJob.status == "done")
                .order_by(col(VerificationJob.revision))
            )
        )
        .scalars()
        .all()
    )
    latest = {job.report_id: job for job in jobs}  # ordered by revision: the last one wins
    changed = 0
    for report_id, job in latest.items():
        if job.result is None:
            continue
        before = VerificationCompleted.model_validate_json(job.result)
        # A report without an installation credential has no witness of its own here: every one corroborates it.
        after = reassess(before, grouping.independent_others(witnesses, witnesses.get(report_id)))
        if after is None:
            continue
        after = after.model_copy(update={"verified_at": utcnow()})
        await session.execute(
            update(VerificationJob)
            .where(col(VerificationJob.job_id) == job.job_id)
            .values(verdict=after.verdict, score=after.score, result=after.model_dump_json())
        )
        await send_result(session, after, Precedence(job.priority))
        changed += 1
    return changed


def compare_with(
    frames: list[FrameHash], earlier: list[PhotoFingerprint]
) -> list[tuple[PhotoFingerprint, vpdq.VideoMatch]]:
    """A video's frames against earlier videos' (CPU work: off the event loop)."""
    return [(row, vpdq.compare(frames, vpdq.unpack(row.frames or b""))) for row in earlier]


class VerificationWorker(BackgroundLoop):
    name = "verification-worker"

    def __init__(self, runtime: Runtime, pool: ProcessPoolExecutor, workers: int) -> None:
        super().__init__()
        self.runtime = runtime
        self.pool = pool
        self.workers = workers  # the pool's size, for making it anew
        self.settings: VerificationSettings = runtime.settings

    async def run_once(self) -> int:
        job = await self._claim()
        if job is None:
            return 0
        with continue_trace(job.traceparent, "verify report"):
            try:
                await self.process(job)
            except BlobStoreUnavailable:
                # The store's outage, not the job's fault: try again soon, without counting it.
                await self._failed(job, "the photo store is unavailable", counted=False)
            except BrokenProcessPool:
                # A photo worker died (a decoder crash, out of memory) and took the pool with it. It ran this
                # job's photos only, so the try counts (a photo that kills its worker every time ends as a dead
                # job); the pool is made anew, or every job behind it would fail the same way.
                log.error("a photo worker died; the pool is started again", extra={"job_id": job.job_id})
                old, self.pool = self.pool, photo_pool(self.workers)
                old.shutdown(wait=False, cancel_futures=True)
                await self._failed(job, "a photo worker died while checking this report's photos", counted=True)
            except Exception as exc:
                log.exception("verification job failed", extra={"job_id": job.job_id})
                await self._failed(job, f"{type(exc).__name__}: {exc}"[:2000], counted=True)
        return 1

    async def _failed(self, job: VerificationJob, reason: str, counted: bool) -> None:
        """Record a failed try; after `job_max_attempts` the job is dead: kept with its reason, listed for
        supervisors, replayable, never tried again on its own (a poison job would otherwise be tried forever)."""
        dead = counted and job.attempts >= self.settings.job_max_attempts
        retry_in = min(self.settings.job_lease_seconds, 2.0**job.attempts)
        async with self.runtime.db.transaction() as session:
            # Only the try this worker holds: if the job was finished meanwhile (the failure came after its
            # commit) or taken over by another worker, this failure changes nothing.
            await session.execute(
                update(VerificationJob)
                .where(
                    col(VerificationJob.job_id) == job.job_id,
                    col(VerificationJob.status) == "pending",
                    col(VerificationJob.attempts) == job.attempts,
                )
                .values(
                    status="dead" if dead else "pending",
                    last_error=reason,
                    attempts=job.attempts if counted else job.attempts - 1,
                    lease_until=None if dead else utcnow() + timedelta(seconds=retry_in),
                )
            )
        (log.error if dead else log.warning)(
            "verification job dead" if dead else "verification job failed; it is tried again",
            extra={"job_id": job.job_id, "attempt": job.attempts, "reason": reason},
        )

    async def _claim(self) -> VerificationJob | None:
        """The most urgent job due, leased to this worker and its try counted. A job whose tries are used up
        without a failure being recorded (its worker died holding it, each time) is given up on here."""
        while True:
            now = utcnow()
            async with self.runtime.db.transaction() as session:
                query = (
                    select(VerificationJob)
                    .where(
                        VerificationJob.status == "pending",
                        or_(col(VerificationJob.lease_until).is_(None), col(VerificationJob.lease_until) < now),
                    )
                    .order_by(col(VerificationJob.priority).desc(), col(VerificationJob.received_at))
                    .limit(1)
                )
                if not self.runtime.db.is_sqlite:
                    query = query.with_for_update(skip_locked=True)
                job = (await session.execute(query)).scalars().first()
                if job is None:
                    return None
                tries = job.attempts
                exhausted = tries >= self.settings.job_max_attempts
                values = (
                    {
                        "status": "dead",
                        "lease_until": None,
                        "last_error": f"{job.last_error or 'no failure recorded'}; its worker stopped while "
                        f"holding it ({tries} tries)",
                    }
                    if exhausted
                    else {
                        "lease_until": now + timedelta(seconds=self.settings.job_lease_seconds),
                        "attempts": tries + 1,
                    }
                )
                await session.execute(
                    update(VerificationJob).where(col(VerificationJob.job_id) == job.job_id).values(**values)
                )
            if exhausted:
                log.error("verification job dead", extra={"job_id": job.job_id, "attempt": tries})
                continue
            job.attempts = tries + 1  # (whether or not the update above already refreshed the object)
            return job

    async def process(self, job: VerificationJob) -> None:
        report = ReportSubmitted.model_validate_json(job.request)
        claim = Claim(
            observed_at=report.observed_at,
            received_at=report.received_at,
            lat=report.location.lat,
            lon=report.location.lon,
            accuracy_m=report.location.accuracy_m,
        )
        loop = asyncio.get_running_loop()
        blobs = self.settings.blob_config()
        photo_jobs = [
            PhotoJob(
                blobs,
                p.photo_id,
                p.sha256,
                claim,
                self.settings.max_image_pixels,
                self.settings.old_photo_hours,
                self.settings.gps_min_distance_m,
                p.sanitised_sha256,
                kind=p.kind,
                max_video_seconds=self.settings.max_video_seconds,
            )
            for p in report.photos
        ]
        analysed = await asyncio.gather(*(loop.run_in_executor(self.pool, analyse_media, pj) for pj in photo_jobs))
        dihedral = {a["photo_id"]: [bytes.fromhex(h) for h in a.pop("pdq_dihedral", [])] for a in analysed}
        frames = {
            a["photo_id"]: [FrameHash(float(at), bytes.fromhex(pdq), int(q)) for at, pdq, q in a.pop("frames")]
            for a in analysed
            if "frames" in a
        }
        photos = [PhotoVerification.model_validate(a) for a in analysed]
        index: NearDuplicateIndex = self.runtime.extras["near_index"]
        await index.sync(self.runtime.db)
        # A search is CPU work (about a millisecond per million stored hashes): never on the event loop.
        matches = {
            p.photo_id: await asyncio.to_thread(
                index.search, int(p.phash, 16) if p.phash else None, dihedral[p.photo_id]
            )
            for p in photos
        }
        now = utcnow()
        async with self.runtime.db.transaction() as session:
            digests = [p.sha256 for p in photos]
            earlier = (
                (
                    await session.execute(
                        select(PhotoFingerprint.report_id).where(
                            col(PhotoFingerprint.sha256).in_(digests), PhotoFingerprint.report_id != report.report_id
                        )
                    )
                )
                .scalars()
                .all()
                if digests
                else []
            )
            duplicate_of = sorted(set(earlier))
            near_of = await self._near_duplicate_checks(session, report, photos, matches)
            near_of += await self._near_duplicate_video_checks(session, report, photos, frames)
            report_checks = await text_checks(session, report, self.settings.flood_warn, self.settings.flood_spam)
            if report.appeal is None:
                group_id, group_reports = await grouping.assign(
                    session,
                    report.report_id,
                    report.category,
                    report.location.lat,
                    report.location.lon,
                    report.observed_at,
                )
                witnesses = await grouping.installations_in_group(session, group_id)
            else:  # an answer to a Burgernet action belongs to the action's incident, not to an event here
                group_id, group_reports, witnesses = None, [], {}
            # A report's witness is what its first message said: a revision may come without its sender, or
            # after its installation's first hour (without the independent source it was counted by).
            own = witnesses.get(report.report_id) or grouping.witness_of(report)
            if own:
                witnesses[report.report_id] = own
            others = grouping.independent_others(witnesses, own)
            verdict, score, reasons = decide(photos, duplicate_of, report_checks, others)
            appeal_match = None
            if report.appeal is not None:  # weightless: they say whether it is relevant, not whether it is real
                appeal_reasons, appeal_match = appeal_checks(report.appeal, claim, photos)
                reasons = [r for r in reasons if not r.code.startswith("appeal_")] + appeal_reasons
            result = VerificationCompleted(
                report_id=report.report_id,
                revision=report.revision,
                verdict=verdict,
                score=score,
                reasons=reasons,
                photos=photos,
                duplicate_of_reports=duplicate_of,
                near_duplicate_of_reports=sorted(set(near_of) - set(duplicate_of)),
                group_id=group_id,
                group_reports=group_reports,
                independent_witnesses=others,
                appeal_match=appeal_match,
                verified_at=now,
            )
            known = set(
                (
                    await session.execute(
                        select(PhotoFingerprint.photo_id).where(PhotoFingerprint.report_id == report.report_id)
                    )
                ).scalars()
            )
            for photo in (p for p in photos if p.photo_id not in known):  # earlier revisions' photos are known
                session.add(
                    PhotoFingerprint(
                        report_id=report.report_id,
                        photo_id=photo.photo_id,
                        sha256=photo.sha256,
                        phash=to_signed(int(photo.phash, 16)) if photo.phash else None,
                        pdq=bytes.fromhex(photo.pdq) if photo.pdq else None,
                        pdq_quality=photo.pdq_quality,
                        captured_at=photo.captured_at,
                        gps_lat=(photo.gps or {}).get("lat"),
                        gps_lon=(photo.gps or {}).get("lon"),
                        claimed_lat=report.location.lat,
                        claimed_lon=report.location.lon,
                        received_at=now,
                        frames=vpdq.pack(frames[photo.photo_id]) if frames.get(photo.photo_id) else None,
                    )
                )
            if await session.get(ReportText, report.report_id) is None:
                remember(session, report)
            await session.execute(
                update(VerificationJob)
                .where(col(VerificationJob.job_id) == job.job_id)
                .values(
                    status="done",
                    completed_at=now,
                    verdict=verdict,
                    score=score,
                    lease_until=None,
                    result=result.model_dump_json(),
                )
            )
            await send_result(session, result, Precedence(job.priority))
            for original in report.photos:  # every access to an original is in the chain
                records.record(
                    session,
                    "photo.examined",
                    report.report_id,
                    target_type="photo",
                    target_id=original.photo_id,
                    detail={
                        "sha256": original.sha256,
                        "read": "original (metadata, content credentials)",
                        "sanitised_sha256": original.sanitised_sha256,
                        "revision": report.revision,
                    },
                )
            records.record(
                session,
                "report.verified",
                report.report_id,
                detail={
                    "revision": report.revision,
                    "verdict": verdict,
                    "score": score,
                    "reasons": sorted({r.code for r in reasons}),
                },
            )
            if own and grouping.independent_count(witnesses) <= CORROBORATION_CAP + 1:
                # A new independent witness: the event's earlier reports count one more (past the cap, more
                # witnesses change nothing, so a flood of hundreds costs no extra work).
                await reassess_group(session, group_reports, witnesses)
        await index.sync(self.runtime.db)
        log.info("verified", extra={"report_id": report.report_id, "verdict": verdict, "score": score})

    def _elsewhere_or_before(self, earlier: PhotoFingerprint, report: ReportSubmitted) -> bool:
        """The same picture in an earlier report far away or long before: recycled, not the same event."""
        far = distance_m(earlier.claimed_lat, earlier.claimed_lon, report.location.lat, report.location.lon)
        before = report.observed_at - timedelta(hours=self.settings.recycled_after_hours)
        return far > self.settings.recycled_distance_m or earlier.received_at < before

    async def _near_duplicate_video_checks(
        self,
        session: AsyncSession,
        report: ReportSubmitted,
        photos: list[PhotoVerification],
        frames: dict[str, list[FrameHash]],
    ) -> list[str]:
        """A video whose frames are found in an earlier report's video (vPDQ: either one's frames at least 80%
        in the other): the same recording passed on, or a trimmed part of it. Searched among the videos of the
        last `video_match_days`, newest first, at most `video_match_limit`. Returns the earlier report ids."""
        if not any(frames.values()):
            return []
        since = utcnow() - timedelta(days=self.settings.video_match_days)
        earlier = list(
            (
                await session.execute(
                    select(PhotoFingerprint)
                    .where(
                        col(PhotoFingerprint.frames).is_not(None),
                        PhotoFingerprint.report_id != report.report_id,
                        col(PhotoFingerprint.received_at) >= since,
                    )
                    .order_by(col(PhotoFingerprint.received_at).desc())
                    .limit(self.settings.video_match_limit)
                )
            ).scalars()
        )
        linked: list[str] = []
        for photo in photos:
            own = frames.get(photo.photo_id)
            if not own:
                continue
            found = await asyncio.to_thread(compare_with, own, earlier)
            same = [(row, match) for row, match in found if match.near_duplicate]
            if not same:
                continue
            linked += [row.report_id for row, _ in same]
            trimmed = any(match.trimmed for _, match in same)
            how_en = "a trimmed part of the same recording" if trimmed else "the same recording"
            how_nl = "een ingekort deel van dezelfde opname" if trimmed else "dezelfde opname"
            recycled = sorted({row.report_id for row, _ in same if self._elsewhere_or_before(row, report)})
            if recycled:
                photo.checks.append(
                    check(
                        "recycled_image",
                        "warn",
                        f"The video is {how_en} as one sent before with report(s) {', '.join(recycled)} at another "
                        "place or time: a recycled video.",
                        f"De video is {how_nl} als een video bij een eerdere melding op een andere plaats of tijd.",
                    )
                )
            else:
                names = ", ".join(sorted({row.report_id for row, _ in same}))
                photo.checks.append(
                    check(
                        "near_duplicate",
                        "not_applicable",
                        f"The video is {how_en} as in nearby recent report(s) {names}.",
                        f"De video is {how_nl} als bij een recente melding in de buurt.",
                    )
                )
        return linked

    async def _near_duplicate_checks(
        self,
        session: AsyncSession,
        report: ReportSubmitted,
        photos: list[PhotoVerification],
        matches: dict[str, list[Match]],
    ) -> list[str]:
        """Same image in an earlier report: at another place or much earlier it is a recycled image; close by
        and recent it is probably the same event seen by someone else. Returns the earlier report ids."""
        ids = [m.fingerprint_id for found in matches.values() for m in found]
        rows = (
            {
                f.id: f
                for f in (
                    await session.execute(select(PhotoFingerprint).where(col(PhotoFingerprint.id).in_(ids)))
                ).scalars()
            }
            if ids
            else {}
        )
        linked: list[str] = []
        for photo in photos:
            others = [
                (m, rows[m.fingerprint_id])
                for m in matches[photo.photo_id]
                if m.fingerprint_id in rows and rows[m.fingerprint_id].report_id != report.report_id
            ]
            earlier = [row for m, row in others if m.same_image]
            candidates = sorted(
                {row.report_id for m, row in others if not m.same_image} - {e.report_id for e in earlier}
            )
            if candidates:
                # Close, but not close enough to be sure (a crop, a heavy edit, or just a similar scene).
                photo.checks.append(
                    check(
                        "possible_duplicate",
                        "warn",
                        f"The picture resembles one in earlier report(s) {', '.join(candidates)}; a person should "
                        "compare them.",
                        "De afbeelding lijkt op een afbeelding bij een eerdere melding; laat iemand ze vergelijken.",
                    )
                )
            if not earlier:
                continue
            linked += [e.report_id for e in earlier]
            recycled = [e for e in earlier if self._elsewhere_or_before(e, report)]
            if recycled:
                names = ", ".join(sorted({e.report_id for e in recycled}))
                photo.checks.append(
                    check(
                        "recycled_image",
                        "warn",
                        f"The same picture was sent before with report(s) {names} at another place or time: "
                        "a recycled image.",
                        "Dezelfde afbeelding is eerder verstuurd bij een andere melding, op een andere plaats of tijd.",
                    )
                )
            else:
                names = ", ".join(sorted({e.report_id for e in earlier}))
                photo.checks.append(
                    check(
                        "near_duplicate",
                        "not_applicable",
                        f"The same picture is in nearby recent report(s) {names}.",
                        "Dezelfde afbeelding zit in een recente melding in de buurt.",
                    )
                )
        return linked
