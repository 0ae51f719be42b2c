"""Every service has /metrics in Prometheus' format, and the alert rules are valid and use metrics that exist."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from burgermelding_shared.timeutil import utcnow
from dispatch_bridge.config import BridgeSettings
from meldkamer_sim.config import MeldkamerSettings
from report_intake.config import IntakeSettings
from report_intake.models import messaging
from tests.helpers import report_json
from tests.intake_support import post_report
from verification.config import VerificationSettings

RULES = Path(__file__).resolve().parent.parent / "infra" / "prometheus" / "alerts.yml"
SERVICES = [
    ("report_intake", IntakeSettings),
    ("verification", VerificationSettings),
    ("dispatch_bridge", BridgeSettings),
    ("meldkamer_sim", MeldkamerSettings),
]


async def scrape(service: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a service's /metrics: (name, sorted labels) -> value."""
    response = await service.client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


async def test_intake_counts_reports_accepted_and_refused_by_reason(start_service: Callable[..., Any]) -> None:
    intake = await start_service("report_intake", IntakeSettings)
    body = report_json()
    assert (await post_report(intake, body, key="metrics-accepted-1")).status_code == 202
    assert (await post_report(intake, body, key="metrics-accepted-1")).status_code == 202  # a replay
    assert (await post_report(intake, report_json(in_progress=True), key="metrics-accepted-2")).status_code == 202
    refused = await post_report(intake, report_json(category="ufo"), key="metrics-refused-1")
    assert refused.status_code == 422
    samples = await scrape(intake)
    assert value(samples, "bm_reports_accepted_total", urgent="false") == 1  # the replay stored nothing new
    assert value(samples, "bm_reports_accepted_total", urgent="true") == 1
    assert (
        value(
            samples,
            "bm_http_problems_total",
            route="/v1/reports",
            method="POST",
            status="422",
            error="unknown_category",
        )
        == 1
    )
    assert (
        value(samples, "bm_http_request_duration_seconds_count", route="/v1/reports", method="POST", status="202") == 3
    )  # the replay was answered too
    # The accepted reports wait in the outbox for verification and the bridge, which are not running here.
    assert value(samples, "bm_outbox_pending_messages", destination="verification") == 2
    assert value(samples, "bm_outbox_oldest_pending_age_seconds", destination="verification") < 60  # just written
    assert value(samples, "bm_outbox_dead_letters", destination="verification", urgent="true") == 0
    # The oldest made ten minutes old: the age says ten minutes (not merely some age of at least zero).
    ten_minutes_ago = utcnow() - timedelta(minutes=10)
    async with intake.runtime.db.transaction() as session:
        await session.execute(
            update(messaging.outbox)
            .where(messaging.outbox.c.destination == "verification")
            .values(created_at=ten_minutes_ago, next_attempt_at=ten_minutes_ago)
        )
    aged = value(await scrape(intake), "bm_outbox_oldest_pending_age_seconds", destination="verification")
    assert aged is not None and 600 <= aged < 660, aged


async def test_every_service_exposes_what_the_alerts_use(start_service: Callable[..., Any]) -> None:
    exposed: set[str] = set()
    for package, settings in SERVICES:
        service = await start_service(package, settings)
        await service.client.get("/no/such/page")
        exposed |= {name for name, _labels in await scrape(service)}
    promql = RULES.read_text()
    used = set(re.findall(r"\b(bm_[a-z0-9_]+)", promql))
    assert used and used <= exposed, f"alerts use metrics no service exposes: {sorted(used - exposed)}"
    for name in (
        "bm_circuit_state",
        "bm_verification_backlog_jobs",
        "bm_call_112_deadlines_missed",
        "bm_http_problems_total",
        "bm_http_request_duration_seconds_bucket",
    ):
        assert name in exposed, name


def test_the_alert_rules_are_valid_for_prometheus() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is needed (Debian package prometheus; `python3 dev.py test` installs it)"
    checked = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 7 rules found" in checked.stdout


async def test_dead_letters_are_counted_with_urgent_ones_apart(start_service: Callable[..., Any]) -> None:
    from sqlalchemy import insert

    intake = await start_service("report_intake", IntakeSettings)
    async with intake.runtime.db.transaction() as session:
        for n, priority in enumerate([10, 10, 0]):
            await session.execute(
                insert(messaging.outbox).values(
                    message_id=f"dead-{n}",
                    destination="dispatch-bridge",
                    path="/internal/v1/reports",
                    kind="k",
                    payload="{}",
                    priority=priority,
                    status="dead",
                    attempts=40,
                    next_attempt_at=utcnow(),
                    created_at=utcnow(),
                )
            )
    samples = await scrape(intake)
    assert value(samples, "bm_outbox_dead_letters", destination="dispatch-bridge", urgent="true") == 2
    assert value(samples, "bm_outbox_dead_letters", destination="dispatch-bridge", urgent="false") == 1
