"""Display copies made after the 202: for a HEIC, whose full decode is too dear for the request path (photos.py).

A report with such a photo is stored with the photo `pending` and a `DisplayJob`; its messages to verification
and the bridge wait for the job. The job decodes each pending original from the blob store, stores its display
copy, and then, in one transaction, marks the photos, deletes itself and sends the report on
(`reports.release_report`). Nothing is silently missing: a photo whose pixels do not decode is marked
`unreadable` (the original stays, as evidence) and the citizen's timeline says so; any other failure (the
store, the database) leaves the job to be tried again with a growing pause, logged each time, while the
citizen's view shows the photo `pending`. A job is leased before it runs, so a crash mid-job, or a second
intake process, never loses one or does it twice at once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import select, update

from burgermelding_shared.app import Runtime
from burgermelding_shared.background import BackgroundLoop
from burgermelding_shared.slots import PriorityExecutor
from burgermelding_shared.timeutil import utcnow
from report_intake import followup, reports, texts
from report_intake.models import DisplayJob, DisplayState, Photo, Report
from report_intake.photos import PhotoUnreadable, display_copy_of_file

log = logging.getLogger(__name__)

LEASE_SECONDS = 120.0  # a 12 MP HEIC takes about a second; a job still leased after this was lost with its process
MAX_PAUSE_SECONDS = 300.0


def pause_after(attempts: int) -> float:
    return min(MAX_PAUSE_SECONDS, 2.0 ** attempts)


class DisplayCopies(BackgroundLoop):
    name = "display-copies"
    poll_seconds = 5.0

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self.runtime = runtime

    @property
    def work(self) -> PriorityExecutor:
        return self.runtime.extras["photo_work"]  # type: ignore[no-any-return]

    async def run_once(self) -> int:
        async with self.runtime.db.sessions() as session:
            due = (await session.execute(
                select(DisplayJob).where(DisplayJob.due_at <= utcnow())
                .order_by(DisplayJob.urgent.desc(), DisplayJob.due_at)
                .limit(self.work.slots.capacity + self.work.slots.reserve)
            )).scalars().all()
        leased = [job for job in due if await self._lease(job)]
        # Side by side: the photo slots decide how many decode at once, urgent reports' first.
        await asyncio.gather(*(self._attempt(job) for job in leased))
        return len(leased)

    async def idle_seconds(self) -> float:
        async with self.runtime.db.sessions() as session:
            next_due = (await session.execute(select(DisplayJob.due_at).order_by(DisplayJob.due_at)
                                              .limit(1))).scalar()
        if next_due is None:
            return self.poll_seconds
        return min(self.poll_seconds, max(0.05, (next_due - utcnow()).total_seconds()))

    async def _lease(self, job: DisplayJob) -> bool:
        """Take the job if nobody took it since we read it: its due time moves past the lease."""
        async with self.runtime.db.transaction() as session:
            taken = await session.execute(
                update(DisplayJob).where(DisplayJob.report_id == job.report_id, DisplayJob.due_at == job.due_at)
                .values(due_at=utcnow() + timedelta(seconds=LEASE_SECONDS), attempts=DisplayJob.attempts + 1))
        job.attempts += 1
        return taken.rowcount == 1  # type: ignore[attr-defined]

    async def _attempt(self, job: DisplayJob) -> None:
        try:
            await self._make(job)
        except Exception as exc:
            pause = pause_after(job.attempts)
            log.warning("display copies for report %s failed (attempt %d), again in %.0f s: %r",
                        job.report_id, job.attempts, pause, exc)
            async with self.runtime.db.transaction() as session:
                await session.execute(update(DisplayJob).where(DisplayJob.report_id == job.report_id).values(
                    due_at=utcnow() + timedelta(seconds=pause), last_error=repr(exc)[:300]))

    async def _make(self, job: DisplayJob) -> None:
        runtime = self.runtime
        async with runtime.db.sessions() as session:
            pending = (await session.execute(select(Photo.id, Photo.sha256).where(
                Photo.report_id == job.report_id, Photo.display_state == DisplayState.PENDING))).all()
        made: dict[str, str | None] = {}  # photo id -> display copy's digest, None if unreadable
        for photo_id, sha256 in pending:
            try:
                jpeg = await self.work.run(job.urgent, display_copy_of_file, runtime.blobs.path_for(sha256),
                                           display_max_side=runtime.settings.display_max_side)
            except PhotoUnreadable as exc:
                log.info("photo %s of report %s does not decode: %s", photo_id, job.report_id, exc)
                made[photo_id] = None
                continue
            made[photo_id] = await asyncio.to_thread(runtime.blobs.put_bytes, jpeg)
        async with runtime.db.transaction() as session:
            current = await session.get(DisplayJob, job.report_id, with_for_update=True)
            if current is None:
                return  # done by another process while ours ran past its lease
            for photo in (await session.execute(select(Photo).where(Photo.id.in_(made)))).scalars():
                photo.sanitised_sha256 = made[photo.id]
                photo.display_state = DisplayState.READY if made[photo.id] else DisplayState.UNREADABLE
            if None in made.values():
                followup.add_timeline(session, job.report_id, "photo_unreadable", *texts.PHOTO_UNREADABLE)
            report = (await session.execute(select(Report).where(Report.id == job.report_id))).scalar_one()
            submitter = (job.submitter_tag, job.submitter_kind) if job.submitter_tag and job.submitter_kind else None
            await session.delete(current)
            await session.flush()
            # Photos added meanwhile are still pending: then this makes a new job for them.
            await reports.release_report(session, report, submitter)
        followup.notify(runtime, job.report_id)
