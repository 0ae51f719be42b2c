"""verification's app factory."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI

from burgermelding_shared.app import Runtime, background_loop, create_service_app, service_destinations
from burgermelding_shared.catalogue import Service
from burgermelding_shared.retention import SettledMessagesPurger
from verification import internal
from verification.analysis import warm_up
from verification.checks import configure_weights
from verification.config import VerificationSettings, get_settings
from verification.grouping import FragmentMerger
from verification.models import audit, messaging
from verification.nearindex import NearDuplicateIndex
from verification.pipeline import VerificationWorker, photo_pool
from verification.queue import backlog_scraper

log = logging.getLogger(__name__)


async def warm(pool: ProcessPoolExecutor, workers: int) -> set[int]:
    """Start every image worker before the service is ready (see analysis.warm_up); their pids."""
    loop = asyncio.get_running_loop()
    started = set(await asyncio.gather(*(loop.run_in_executor(pool, warm_up, 0.2) for _ in range(workers))))
    log.info("image workers started", extra={"workers": len(started)})
    return started


@asynccontextmanager
async def worker_hook(runtime: Runtime) -> AsyncIterator[None]:
    settings: VerificationSettings = runtime.settings
    workers = settings.workers or os.cpu_count() or 1
    pool = photo_pool(workers)
    await warm(pool, workers)
    configure_weights(settings.check_weights)
    index = NearDuplicateIndex(settings.near_duplicate_thresholds())
    await index.sync(runtime.db)  # rebuilt from the database at every start
    runtime.extras["near_index"] = index
    merger = FragmentMerger(runtime.db, settings.group_merge_seconds)
    merger.start()
    worker = VerificationWorker(runtime, pool, workers)
    runtime.extras["worker"] = worker
    worker.start()
    try:
        yield
    finally:
        await worker.stop()
        await merger.stop()
        worker.pool.shutdown(wait=False, cancel_futures=True)  # (the worker may have made it anew)


def create_app(settings: VerificationSettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = create_service_app(
        settings=settings,
        title="Burgermelding verification",
        description="Checks photo metadata, finds duplicates and gives each report a verdict with reasons.",
        messaging=messaging,
        audit=audit,
        destinations=service_destinations(settings, {Service.DISPATCH_BRIDGE: settings.bridge_url}),
        hooks=[
            worker_hook,
            background_loop(
                lambda runtime: SettledMessagesPurger(runtime.db, messaging, runtime.settings.settled_messages_days)
            ),
        ],
        metrics_scrapers=[backlog_scraper],
    )
    app.include_router(internal.router)
    return app
