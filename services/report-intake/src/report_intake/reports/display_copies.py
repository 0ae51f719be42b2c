"""Copies made after the 202: a HEIC's display copy, which the report's messages wait for, and then a video's
compatible copy (H.264, for a codec not every browser plays), which nothing waits for: the bridge gets it as the
report's next revision."""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import col, select

from burgermelding_shared.app import Runtime
from burgermelding_shared.background import BackgroundLoop
from burgermelding_shared.db import rowcount
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.images import PhotoUnreadable, display_copy_of_blob
from burgermelding_shared.slots import PriorityExecutor
from burgermelding_shared.timeutil import utcnow
from burgermelding_shared.videos import VideoLimits, compatible_copy_of_blob, compatible_limits
from report_intake import texts
from report_intake.installations.senders import Submitter
from report_intake.models import DisplayJob, DisplayState, Photo, Report
from report_intake.records import audit
from report_intake.reports import release, timeline

log = logging.getLogger(__name__)


LEASE_SECONDS = 60.0  # a 12 MP HEIC takes about a second; a job still leased after this was lost with its process


MAX_PAUSE_SECONDS = 300.0


def pause_after(attempts: int) -> float:
    return min(MAX_PAUSE_SECONDS, 2.0**attempts)


def kept_submitter(job: DisplayJob) -> Submitter | None:
    """The sender of the request behind the report, as the job kept it (`DisplayJob.submitter_tag`)."""
    tag, kind = job.submitter_tag, job.submitter_kind
    match kind:
        case "installation" | "address" if tag:
            return Submitter(tag, kind)
    return None


class DisplayCopies(BackgroundLoop):
    name = "display-copies"
    poll_seconds = 5.0

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self.runtime = runtime
        self.running: dict[str, asyncio.Task[None]] = {}
        self.transcoding = asyncio.Semaphore(1)  # compatible copies: one at a time, the other core for requests

    @property
    def work(self) -> PriorityExecutor:
        work: PriorityExecutor = self.runtime.extras["photo_work"]
        return work

    async def run_once(self) -> int:
        """Start the due jobs there is room for, each on its own: an urgent report's job, arriving while
        ordinary ones run, starts at once (the photo slots then give its decode the next core)."""
        room = self.work.slots.capacity + self.work.slots.reserve - len(self.running)
        if room <= 0:
            return 0
        async with self.runtime.db.sessions() as session:
            due = (
                (
                    await session.execute(
                        select(DisplayJob)
                        .where(DisplayJob.due_at <= utcnow(), col(DisplayJob.report_id).not_in(list(self.running)))
                        .order_by(col(DisplayJob.urgent).desc(), col(DisplayJob.due_at))
                        .limit(room)
                    )
                )
                .scalars()
                .all()
            )
        started = 0
        for job in due:
            if await self._lease(job):
                task = asyncio.create_task(self._attempt(job), name=f"display-copies-{job.report_id}")
                self.running[job.report_id] = task
                task.add_done_callback(functools.partial(self._finished, job.report_id))
                started += 1
        return started

    def _finished(self, report_id: str, _task: asyncio.Task[None]) -> None:
        self.running.pop(report_id, None)
        self.wake()  # room for the next one

    def more_waiting(self, done: int) -> bool:
        return False  # a finished job wakes the loop; new jobs wake it too (reports.wake_display_copies)

    async def stop(self) -> None:
        await super().stop()
        for task in list(self.running.values()):
            task.cancel()
        await asyncio.gather(*self.running.values(), return_exceptions=True)

    async def idle_seconds(self) -> float:
        async with self.runtime.db.sessions() as session:
            next_due = (
                await session.execute(select(col(DisplayJob.due_at)).order_by(col(DisplayJob.due_at)).limit(1))
            ).scalar()
        if next_due is None:
            return self.poll_seconds
        return min(self.poll_seconds, max(0.05, (next_due - utcnow()).total_seconds()))

    async def _lease(self, job: DisplayJob) -> bool:
        """Take the job if nobody took it since we read it: its due time moves past the lease."""
        async with self.runtime.db.transaction() as session:
            taken = await session.execute(
                update(DisplayJob)
                .where(col(DisplayJob.report_id) == job.report_id, col(DisplayJob.due_at) == job.due_at)
                .values(due_at=utcnow() + timedelta(seconds=LEASE_SECONDS), attempts=col(DisplayJob.attempts) + 1)
            )
        job.attempts += 1
        return rowcount(taken) == 1

    async def _attempt(self, job: DisplayJob) -> None:
        try:
            await self._make(job)
        except Exception as exc:
            pause = pause_after(job.attempts)
            log.warning(
                "display copies for report %s failed (attempt %d), again in %.0f s: %r",
                job.report_id,
                job.attempts,
                pause,
                exc,
            )
            async with self.runtime.db.transaction() as session:
                await session.execute(
                    update(DisplayJob)
                    .where(col(DisplayJob.report_id) == job.report_id)
                    .values(due_at=utcnow() + timedelta(seconds=pause), last_error=repr(exc)[:300])
                )

    async def _make(self, job: DisplayJob) -> None:
        runtime = self.runtime
        async with runtime.db.sessions() as session:
            pending = (
                await session.execute(
                    select(Photo.id, Photo.sha256).where(
                        Photo.report_id == job.report_id, Photo.display_state == DisplayState.PENDING
                    )
                )
            ).all()
        if not pending:
            await self._make_compatible(job)
            return
        made: dict[str, str | None] = {}  # photo id -> display copy's digest, None if unreadable
        for photo_id, sha256 in pending:
            try:
                jpeg = await self.work.run(
                    job.urgent,
                    display_copy_of_blob,
                    runtime.blobs,
                    sha256,
                    display_max_side=runtime.settings.display_max_side,
                    scratch=runtime.settings.blob_dir.parent / "uploads",
                )
            except PhotoUnreadable as exc:
                log.info("photo %s of report %s does not decode: %s", photo_id, job.report_id, exc)
                made[photo_id] = None
                continue
            made[photo_id] = await asyncio.to_thread(runtime.blobs.put_bytes, jpeg)
        async with runtime.db.transaction() as session:
            current = await session.get(DisplayJob, job.report_id, with_for_update=True)
            if current is None:
                return  # done by another process while ours ran past its lease
            for photo in (await session.execute(select(Photo).where(col(Photo.id).in_(made)))).scalars():
                photo.sanitised_sha256 = made[photo.id]
                photo.display_state = DisplayState.READY if made[photo.id] else DisplayState.UNREADABLE
                # A transformation of the evidence: which copy was made from which original.
                audit.record(
                    session,
                    "photo.display_copy",
                    job.report_id,
                    target_type="photo",
                    target_id=photo.id,
                    detail={"sha256": photo.sha256, "sanitised_sha256": photo.sanitised_sha256},
                )
            if None in made.values():
                timeline.add_timeline(session, job.report_id, "photo_unreadable", *texts.PHOTO_UNREADABLE)
            report = (
                await session.execute(select(Report).where(Report.id == job.report_id).with_for_update())
            ).scalar_one()  # locked: an upload at the same time also raises the revision
            # The report keeps its own independent source (queue_report sends Report.independent_source).
            submitter = kept_submitter(job)
            if current.bridge_revision == report.revision:
                report.revision += 1  # the bridge has this revision without the copies: it gets the next
            await session.delete(current)
            await session.flush()
            # Photos added meanwhile are still pending: then this makes a new job for them.
            await release.release_report(session, report, submitter)
        timeline.notify(runtime, job.report_id)

    async def _make_compatible(self, job: DisplayJob) -> None:
        """The compatible copies of the report's videos, one video at a time in this process (each takes a core
        for about as long as it plays, niced below requests), then the bridge is sent the next revision."""
        runtime = self.runtime
        async with runtime.db.sessions() as session:
            pending = (
                await session.execute(
                    select(Photo.id, Photo.sha256, Photo.duration_ms).where(
                        Photo.report_id == job.report_id, Photo.compatible_state == DisplayState.PENDING
                    )
                )
            ).all()
        if not pending:  # the videos are gone (retention, a citizen's erasure): nothing to make or to send
            async with runtime.db.transaction() as session:
                current = await session.get(DisplayJob, job.report_id, with_for_update=True)
                if current is not None:
                    await session.delete(current)
            return
        limits = VideoLimits(max_seconds=runtime.settings.max_video_seconds)
        budget = sum(compatible_limits((ms or 0) / 1000, limits).wall_seconds for _id, _sha, ms in pending)
        async with runtime.db.transaction() as session:  # the lease, for as long as the copies may take
            await session.execute(
                update(DisplayJob)
                .where(col(DisplayJob.report_id) == job.report_id)
                .values(due_at=utcnow() + timedelta(seconds=LEASE_SECONDS + budget))
            )
        made: dict[str, str | None] = {}  # photo id -> compatible copy's digest, None if it could not be made
        for photo_id, sha256, duration_ms in pending:
            try:
                async with self.transcoding:
                    made[photo_id] = await asyncio.to_thread(
                        compatible_copy_of_blob,
                        runtime.blobs,
                        sha256,
                        (duration_ms or 0) / 1000,
                        limits,
                        runtime.settings.blob_dir.parent / "uploads",
                    )
            except ServiceError as exc:
                log.info("no compatible copy of video %s of report %s: %s", photo_id, job.report_id, exc.detail)
                made[photo_id] = None
        async with runtime.db.transaction() as session:
            current = await session.get(DisplayJob, job.report_id, with_for_update=True)
            if current is None:
                return  # done by another process while ours ran past its lease
            for photo in (await session.execute(select(Photo).where(col(Photo.id).in_(made)))).scalars():
                photo.compatible_sha256 = made[photo.id]
                photo.compatible_state = DisplayState.READY if made[photo.id] else DisplayState.UNREADABLE
                audit.record(  # a transformation of the evidence, as a display copy is
                    session,
                    "photo.compatible_copy",
                    job.report_id,
                    target_type="photo",
                    target_id=photo.id,
                    detail={"sha256": photo.sha256, "compatible_sha256": photo.compatible_sha256},
                )
            report = (
                await session.execute(select(Report).where(Report.id == job.report_id).with_for_update())
            ).scalar_one()
            report.revision += 1  # the bridge has the report without the copies: it gets the next revision
            await session.delete(current)
            await session.flush()
            # Videos added meanwhile are still pending: then this makes a new job for them.
            await release.release_compatible(session, report, kept_submitter(job))
