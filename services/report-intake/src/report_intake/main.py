"""report-intake's app factory (run with `uvicorn report_intake.main:create_app --factory`)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from burgermelding_shared.app import Runtime, background_loop, create_service_app, service_destinations
from burgermelding_shared.catalogue import Service
from burgermelding_shared.geocoding import geocoder_for
from burgermelding_shared.idempotency import IdempotencyPurger
from burgermelding_shared.slots import PriorityExecutor
from report_intake import internal, request_parts
from report_intake.burgernet import api as burgernet_api
from report_intake.burgernet import feed as action_feed
from report_intake.callers import pages as caller_pages
from report_intake.callers import resumable as caller_uploads
from report_intake.config import IntakeSettings, get_settings
from report_intake.installations import api as installations_api
from report_intake.installations.registration import RegistrationPurger
from report_intake.limits import IntakeLimits
from report_intake.models import audit, idempotency_keys, messaging
from report_intake.open311 import api as open311_api
from report_intake.records.retention import RetentionJob
from report_intake.reports import api as reports_api
from report_intake.reports.display_copies import DisplayCopies
from report_intake.reports.timeline import TimelineNotifier


@asynccontextmanager
async def citizen_state(runtime: Runtime) -> AsyncIterator[None]:
    """In-memory state of the citizen routes: rate-limit buckets, live-stream subscriptions, the slots for
    photo work (one per core), and the geocoder for reports placed by address."""
    runtime.extras["limits"] = IntakeLimits.from_settings(runtime.settings, runtime.shared)
    photo_work = runtime.extras["photo_work"] = PriorityExecutor(os.cpu_count() or 1)
    runtime.extras["notifier"] = TimelineNotifier()
    runtime.extras["geocoder"] = geocoder_for(runtime.settings.geocoder, runtime.settings.pdok_locatieserver_url)
    try:
        yield
    finally:
        photo_work.shutdown()


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = create_service_app(
        settings=settings,
        api_version="1.6.0",  # 1.6.0: a video's compatible copy in the data export (CHANGELOG.md)
        title="Burgermelding report intake",
        description="The citizen-facing API behind the Burgermelding app: reports with photos, status and "
        "timeline. Anonymous by default: no IP address, device id or user agent is stored or logged.",
        messaging=messaging,
        audit=audit,
        destinations=service_destinations(
            settings, {Service.VERIFICATION: settings.verification_url, Service.DISPATCH_BRIDGE: settings.bridge_url}
        ),
        # Photo uploads stream to disk under their own per-photo and per-request limits (uploads.py).
        large_body_paths=[
            r"/v1/reports",
            r"/v1/reports/[^/]+/photos",
            r"/v1/burgernet/actions/[^/]+/sightings",
            r"/c/[^/]+/files",  # a caller's photos and videos, in a form
            r"/c/[^/]+/uploads/[^/]+",  # and resumable (tus PATCH)
        ],
        # The feed a million apps poll is answered before the rest of the stack.
        fast_paths=[action_feed.FeedFastPath],
        optional_schemes=request_parts.OPTIONAL_SCHEMES,
        servers=[{"url": settings.public_url, "description": "this deployment's public address"}],
        hooks=[
            citizen_state,
            background_loop(DisplayCopies, extras_key="display_copies"),
            background_loop(lambda runtime: IdempotencyPurger(runtime.db, idempotency_keys)),
            background_loop(lambda runtime: RegistrationPurger(runtime.db)),
            background_loop(RetentionJob),
            background_loop(caller_uploads.UnfinishedUploadSweep),
        ],
        openapi_tags=[
            {
                "name": "installations",
                "description": "Register the app once: an anonymous credential "
                "that tells installations apart (never people), so that limits need not count the network "
                "address that thousands of phones share. " + installations_api.REGISTRATION_FLOW,
            },
            {"name": "citizen", "description": "For the app"},
            {
                "name": "burgernet",
                "description": "Burgernet: the police ask the citizens in an area. "
                "The feed of actions (the app decides whether it is inside an area; its location is never "
                "sent), CAP 1.2 alerts, and answers",
            },
            {
                "name": "open311",
                "description": "Open311 GeoReport v2 for existing clients and integrators, in JSON and XML: "
                "the same pipeline as the app; reads show only a public view of a report",
            },
            {"name": "internal", "description": "For our own services only"},
        ],
    )
    app.include_router(installations_api.installation_router)
    app.include_router(reports_api.router)
    app.include_router(burgernet_api.router)
    app.include_router(open311_api.router)
    app.include_router(internal.router)
    app.include_router(caller_uploads.router)  # before the pages: their catch-all answers any other /c/ path
    app.include_router(caller_pages.router)
    return app
