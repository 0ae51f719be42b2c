"""The simulated meldkamer's app factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from burgermelding_shared.app import Runtime, background_loop, create_service_app
from burgermelding_shared.catalogue import INCIDENT_EVENT, Service
from burgermelding_shared.webhooks import WebhookDestination
from meldkamer_sim import api
from meldkamer_sim.config import MeldkamerSettings, get_settings
from meldkamer_sim.dispatcher import PhotoChecker, on_callback_delivered
from meldkamer_sim.faults import FaultState
from meldkamer_sim.models import messaging

log = logging.getLogger(__name__)


@asynccontextmanager
async def fault_state(runtime: Runtime) -> AsyncIterator[None]:
    seed = runtime.settings.fault_seed
    state = FaultState(runtime.settings.faults) if seed is None else FaultState(runtime.settings.faults, seed)
    runtime.extras["faults"] = state
    # Said at every start, so that a run with random faults can be replayed: BM_MELDKAMER_FAULT_SEED=<seed>.
    log.info(
        "fault seed %d (BM_MELDKAMER_FAULT_SEED=%d replays it)",
        state.seed,
        state.seed,
        extra={"fault_seed": state.seed, "fault_seed_given": seed is not None},
    )
    yield


def create_app(settings: MeldkamerSettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = create_service_app(
        settings=settings,
        api_version="1.2.0",  # 1.2.0: the video refusals in the error enum (CHANGELOG.md)
        title="Simulated meldkamer",
        description="Behaves like a control-room system: takes requests for service idempotently, assigns "
        "incident numbers, plays a dispatcher script and calls the bridge back with signed status changes.",
        messaging=messaging,
        destinations={
            Service.DISPATCH_BRIDGE: WebhookDestination(base_url=settings.bridge_url, keys=settings.webhook_keys)
        },
        result_handlers={INCIDENT_EVENT.kind: on_callback_delivered},
        hooks=[fault_state, background_loop(PhotoChecker, extras_key="photo_checker")],
        # Only the bridge may send requests for service and updates; the incident list stays open for tests.
        service_only_prefixes=("/internal/", "/v1/requests-for-service"),
    )
    app.include_router(api.router)
    app.include_router(api.admin)
    return app
