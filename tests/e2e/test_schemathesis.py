"""schemathesis against every service's own OpenAPI document, the authenticated operations included.

Real processes: each service's document is read from the running service, and cases generated from it (valid
ones and invalid ones) are sent with the credential each operation takes (the citizen's token of a real report,
a supervisor's token, the service credential of a caller it accepts, the simulator's admin token) and the real
report, photo or user in the path. Every answer must be no 5xx, a status the operation documents, and a body and
content type that match its own schema. The budget per operation is bounded (`BM_SCHEMATHESIS_EXAMPLES`, 6 in
each mode); cases are derandomised, so a failure comes back on the next run. An operation that got no case in a
mode fails the test, unless `NO_CASES` names it with the reason none can be made.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from burgermelding_shared.service_auth import development_key
from tests.helpers import phone_photo, report_json
from tests.suite import (
    SERVICE_NAMES,
    Suite,
    create_dispatcher,
    follow,
    local_http,
    openapi_documents,
    start_suite,
    submit,
)

# Runs on SQLite only (conftest.py, END_TO_END_DATABASES): the API's own documents: what the services answer does not depend on the database.
pytestmark = pytest.mark.runs_on("sqlite")

EXAMPLES = int(os.environ.get("BM_SCHEMATHESIS_EXAMPLES", "6"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
ADMIN_TOKEN = "dev-only-meldkamer-admin-token-change-me"  # the simulator's development default
# Which service may call which internal operation (the caller whose credential the case carries).
INTERNAL_CALLERS = {
    ("verification", "/internal/v1/jobs"): "report-intake",
    ("bridge", "/internal/v1/reports"): "report-intake",
    ("bridge", "/internal/v1/withdrawals"): "report-intake",
    ("bridge", "/internal/v1/citizen-messages"): "report-intake",
    ("bridge", "/internal/v1/caller-link-events"): "report-intake",
    ("bridge", "/internal/v1/verifications"): "verification",
    ("bridge", "/internal/v1/group-merges"): "verification",
    ("verification", "/internal/v1/retention"): "report-intake",
    ("bridge", "/internal/v1/retention"): "report-intake",
}
# (service, operation, mode) that cannot get a single case, and why. Any other operation that got none fails the
# test (a strategy that generates nothing checks nothing); one listed here that did get cases fails it too.
NOTHING = "no parameters and no body: nothing to make invalid"
ANY_TEXT = (
    "only path parameters and optional headers, each taking any text (the ids here are real ones, the "
    "credential is the test's own): nothing in the document to violate"
)
ANY_BYTES = "a body of any bytes (a photo; its type by Content-Type): nothing in the document to violate"
NO_CASES: dict[tuple[str, str, str], str] = {
    **{
        (service, f"GET {probe}", "negative"): NOTHING
        for service in SERVICE_NAMES
        for probe in ("/healthz", "/readyz", "/metrics")
    },
    **{
        (service, operation, "negative"): reason
        for service, reason, operations in [
            (
                "intake",
                NOTHING,
                [
                    "GET /v1/categories",
                    "GET /open311/v2/services.json",
                    "GET /open311/v2/services.xml",
                    "POST /v1/installations/challenges",
                ],
            ),
            (
                "intake",
                ANY_TEXT,
                [
                    "DELETE /v1/installations/current",
                    "GET /open311/v2/requests/{request_id}.json",
                    "GET /open311/v2/requests/{request_id}.xml",
                    "GET /open311/v2/services/{service_code}.json",
                    "GET /open311/v2/services/{service_code}.xml",
                    "GET /open311/v2/tokens/{token}.json",
                    "GET /open311/v2/tokens/{token}.xml",
                    "GET /v1/burgernet/actions",
                    "GET /v1/burgernet/actions/{action_id}/cap",
                    "GET /v1/burgernet/actions/{action_id}/photo",
                ],
            ),
            ("bridge", NOTHING, ["GET /v1/dispatch/delivery"]),
            (
                "bridge",
                ANY_TEXT,
                [
                    "GET /v1/dispatch/burgernet/actions/{action_id}",
                    "GET /v1/dispatch/incidents/{incident_id}/caller-links",
                    "GET /v1/dispatch/reports/{report_id}",
                    "GET /v1/dispatch/reports/{report_id}/custody",
                    "GET /v1/dispatch/reports/{report_id}/photos/{photo_id}/custody",
                    "POST /v1/dispatch/caller-links/{link_id}/revoke",
                    "POST /v1/dispatch/dead-letters/{message_id}/replay",
                    "POST /v1/dispatch/incidents/{incident_id}/evidence-export",
                    "POST /v1/dispatch/incidents/{incident_id}/legal-hold/lift",
                    "POST /v1/dispatch/reports/{report_id}/forward",
                    "POST /v1/dispatch/reports/{report_id}/reject",
                    "POST /v1/dispatch/reports/{report_id}/split",
                ],
            ),
            ("bridge", ANY_BYTES, ["POST /v1/dispatch/burgernet/photos"]),
        ]
        for operation in operations
    },
}


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    running = start_suite(
        tmp_path_factory.mktemp("schemathesis"),
        {
            "BM_INTAKE_WRONG_TOKENS_PER_REPORT": "100000",
            "BM_INTAKE_TOKEN_USES_PER_CLIENT": "100000",
            "BM_MELDKAMER_SCRIPT": '[["Active", 0.2]]',
            # A live-update stream stays open for minutes (reconnect after); each case reads one to its end.
            "BM_INTAKE_SSE_MAX_SECONDS": "1",
        },
    )
    try:
        place = {"lat": 52.2, "lon": 5.2}
        photo = phone_photo(5151, **place, size=(800, 600))
        created = submit(running, report_json(in_progress=True, location=place), [photo], "schemathesis-01").json()
        follow(running, created, "accepted")
        supervisor = create_dispatcher(running, "fuzz-supervisor", "supervisor")
        report = (
            local_http()
            .get(
                f"{running.urls['bridge']}/v1/dispatch/reports/{created['id']}",
                headers={"Authorization": f"Bearer {supervisor}"},
            )
            .json()
        )
        yield {
            "suite": running,
            "report": created,
            "supervisor": supervisor,
            "photo_id": report["photos"][0]["photo_id"],
            "digest": hashlib.sha256(photo).hexdigest(),
            "incident_id": report["incident_id"],
        }
    finally:
        running.stop()


def credential(world: dict[str, Any], service: str, path: str) -> dict[str, str]:
    """The credential an operation takes, for a caller it accepts."""
    if path.startswith("/internal/") or (service == "meldkamer" and path.startswith("/v1/requests-for-service")):
        caller = INTERNAL_CALLERS.get((service, path.split("{")[0].rstrip("/")), "dispatch-bridge")
        return {"Authorization": f"Bearer {development_key(caller).issue(SERVICE_NAMES[service])}"}
    if path.startswith("/v1/dispatch/"):
        return {"Authorization": f"Bearer {world['supervisor']}"}
    if path.startswith("/admin/"):
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    return {"Authorization": f"Bearer {world['report']['access_token']}"}


def real_things(world: dict[str, Any], service: str) -> dict[str, str]:
    """Path parameters that name what exists, so that cases reach past the 404 of a random id."""
    report_id = world["report"]["id"]
    return {
        "report_id": report_id,
        "request_id": report_id,
        "photo_id": world["photo_id"],
        "digest": world["digest"],
        "incident_id": world["incident_id"],
        "username": "fuzz-supervisor" if service != "bridge" else "fuzz-nobody",
    }


def reset_simulator(suite: Suite) -> None:
    """A case may set faults or an outage on the simulated meldkamer: undone before the next one."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    local_http().put(f"{suite.urls['meldkamer']}/admin/faults", json={}, headers=admin, timeout=10)
    local_http().post(f"{suite.urls['meldkamer']}/admin/outage", json={"seconds": 0}, headers=admin, timeout=10)


def exercise(
    world: dict[str, Any], service: str, operation: Any, mode: GenerationMode, failures: list[str], cases: Counter[str]
) -> None:
    """Cases of one operation in one mode; a failed check is recorded (hypothesis then shrinks it to one)."""
    running: Suite = world["suite"]
    base_url, path = running.urls[service], operation.path
    wanted = {name: value for name, value in real_things(world, service).items() if "{" + name + "}" in path}
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=wanted or None)

    @settings(
        max_examples=EXAMPLES, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        if path == "/v1/dispatch/users/{username}/{change}":
            case.path_parameters["username"] = "fuzz-nobody"  # never the account the cases log in with
        # The credential replaces any Authorization the case made up (header names are case-insensitive: a
        # generated "authorization" beside ours would leave which one is sent to chance).
        generated = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        case.headers = generated
        headers = {**generated, **credential(world, service, path)}
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        cases[f"{operation.label} {mode.value}"] += 1
        if service == "meldkamer" and path.startswith("/admin/"):
            reset_simulator(running)
        try:
            case.validate_response(response, checks=CHECKS)
        except Exception as failure:
            failures.append(f"{operation.label} [{mode.value}] -> {response.status_code}: {str(failure)[:600]}")
            raise

    recorded = len(failures)
    cases[f"{operation.label} {mode.value}"] += 0  # asked for: counted even if it gets none
    try:
        run()
    except Unsatisfiable:
        pass  # no case could be made: the test says so unless NO_CASES gives the reason
    except Exception:
        if len(failures) == recorded:  # not a failed check (those are recorded) but a broken run
            raise


@pytest.mark.parametrize("service", list(SERVICE_NAMES))
def test_every_operation_answers_within_its_own_document(suite: dict[str, Any], service: str) -> None:
    running: Suite = suite["suite"]
    failures: list[str] = []
    cases: Counter[str] = Counter()
    for document in openapi_documents(running.urls[service], running.env, service):  # the public one, the internal
        for result in schemathesis.openapi.from_dict(document).get_all_operations():
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                exercise(suite, service, result.ok(), mode, failures, cases)
    print(f"\nschemathesis, {service}: {sum(cases.values())} cases over {len(cases)} operation-modes")
    assert cases and not failures, "\n\n".join(dict.fromkeys(failures))
    without_cases = {name for name, count in cases.items() if count == 0}
    explained = {f"{operation} {mode}" for (listed, operation, mode) in NO_CASES if listed == service}
    assert without_cases <= explained, f"operation-modes that got no case: {sorted(without_cases - explained)}"
    assert not explained - without_cases, f"NO_CASES names operation-modes that got cases: {explained - without_cases}"
