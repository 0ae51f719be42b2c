"""dispatch-bridge's app factory."""

from __future__ import annotations

from fastapi import FastAPI

from burgermelding_shared.app import background_loop, create_service_app, service_destinations
from burgermelding_shared.catalogue import REQUEST_FOR_SERVICE, Service
from burgermelding_shared.retention import SettledMessagesPurger
from dispatch_bridge import console, internal
from dispatch_bridge.burgernet import api as burgernet_api
from dispatch_bridge.burgernet.expiry import BurgernetDeadlines
from dispatch_bridge.callers.links import CallerLinkExpiry
from dispatch_bridge.config import BridgeSettings, get_settings
from dispatch_bridge.console import figures
from dispatch_bridge.desk import api as desk_api
from dispatch_bridge.desk import listings
from dispatch_bridge.incidents.addresses import IncidentAddresses
from dispatch_bridge.meldkamer.call_112_watch import Call112Watch, deadline_scraper
from dispatch_bridge.meldkamer.requests import on_meldkamer_answer, on_meldkamer_attempt
from dispatch_bridge.models import audit, messaging


def create_app(settings: BridgeSettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    destinations = service_destinations(
        settings, {Service.REPORT_INTAKE: settings.intake_url, Service.MELDKAMER: settings.meldkamer_url}
    )
    app = create_service_app(
        settings=settings,
        api_version="1.9.0",  # 1.9.0: a caller link's refused files (CHANGELOG.md)
        servers=[{"url": settings.public_url, "description": "this deployment's public address"}],
        static_prefixes=("/console/static/",),
        title="Burgermelding dispatch bridge",
        description="Forwards validated reports to the meldkamer (EIDO over STA-024-shaped requests), never lost "
        "and never twice, and carries the meldkamer's status changes back to the citizen.",
        messaging=messaging,
        audit=audit,
        destinations=destinations,
        result_handlers={REQUEST_FOR_SERVICE.kind: on_meldkamer_answer},
        attempt_handlers={REQUEST_FOR_SERVICE.kind: on_meldkamer_attempt},
        hooks=[
            background_loop(Call112Watch),
            background_loop(BurgernetDeadlines),
            background_loop(IncidentAddresses),  # the console's addresses, off the way to the meldkamer
            background_loop(CallerLinkExpiry),  # a caller's number goes when their link does
            background_loop(listings.MediaCachePurge),  # copies of S3 videos served in ranges
            console.feed_hook,
            background_loop(
                lambda runtime: SettledMessagesPurger(runtime.db, messaging, runtime.settings.settled_messages_days)
            ),
        ],
        metrics_scrapers=[deadline_scraper],
        openapi_tags=[
            {"name": "dispatchers", "description": "For dispatchers and supervisors (OAuth2 bearer)"},
            {"name": "burgernet", "description": "Burgernet actions and witness calls (OAuth2 bearer)"},
            {"name": "meldkamer", "description": "Callbacks and photo links for the meldkamer"},
            {"name": "internal", "description": "For our own services only"},
        ],
    )
    app.include_router(internal.internal)
    app.include_router(internal.meldkamer)
    app.include_router(desk_api.router)
    app.include_router(burgernet_api.router)
    app.include_router(burgernet_api.meldkamer)
    console.install(app, settings.console_tile_url)
    app.include_router(figures.router)
    return app
