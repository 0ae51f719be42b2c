"""Who may do what: every endpoint of every service, against every kind of caller, in one table.

Real processes, real HTTP. Each row is one operation of a service's OpenAPI document (the test fails when an
operation has no row, so a new endpoint cannot be added without saying who may call it); each column a caller.
A request carries the caller's credential and, where the operation takes a body, an empty JSON object: a caller
who is let in gets the operation's own answer to it (400 for a message without its Idempotency-Key, 422 for a
body it cannot use, 409 for a report already forwarded, 404 for something that is not there, 200 for a read),
one who is not gets 401 (no valid credential) or 403 (valid, but not allowed), before any body is judged.
Citizen routes answer every request without the report's own token with 404, as for a report that does not
exist, so that nothing can be learnt about which reports exist.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from burgermelding_shared import webhooks
from burgermelding_shared.service_auth import ServiceKey, development_key
from dispatch_bridge.accounts import tokens as accounts_tokens
from dispatch_bridge.config import BridgeSettings
from dispatch_bridge.meldkamer import media
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

# Runs on SQLite only (conftest.py, END_TO_END_DATABASES): who may call what is decided before any database is read.
pytestmark = pytest.mark.runs_on("sqlite")

CALLERS = (
    "anonymous",
    "wrong_citizen_token",
    "other_reports_token",
    "right_token",
    "dispatcher",
    "supervisor",
    "intake",
    "verification",
    "bridge",
    "meldkamer",
    "sim_admin",
    "expired_service",
    "expired_dispatcher",
    "forged_service",
    "forged_dispatcher",
)
#           anon wrong other right disp sup  intk verf brdg mkmr adm  exps expd frgs frgd
INTERNAL = "401  401   401   401   401  401  {i}  {v}  {b}  401  401  401  401  401  401"
DESK = "    401  401   401   401   {d}  {s}  401  401  401  401  401  401  401  401  401"
CITIZEN = " 404  404   404   {r}   404  404  404  404  404  404  404  404  404  404  404"
OPEN = "    {0}  {0}   {0}   {0}   {0}  {0}  {0}  {0}  {0}  {0}  {0}  {0}  {0}  {0}  {0}"
ADMIN = "   401  401   401   401   401  401  401  401  401  401  {a}  401  401  401  401"

# (service, method, path, expected status per caller). Paths name the report, photo, user or job under test.
MATRIX: list[tuple[str, str, str, str]] = [
    *[
        (service, "GET", path, OPEN.format(200))
        for service in ("intake", "verification", "bridge", "meldkamer")
        for path in ("/healthz", "/readyz", "/metrics")
    ],
    # report-intake: the app's public routes, the report's own routes (its token), and the bridge's internal ones
    ("intake", "POST", "/v1/installations/challenges", OPEN.format(201)),
    ("intake", "POST", "/v1/installations", OPEN.format(422)),
    ("intake", "DELETE", "/v1/installations/current", OPEN.format(401)),  # only the installation's credential
    ("intake", "POST", "/v1/reports", OPEN.format(400)),  # anyone may report (the body here is not a report)
    ("intake", "GET", "/v1/categories", OPEN.format(200)),
    ("intake", "GET", "/v1/reports/{report}", CITIZEN.format(r=200)),
    ("intake", "POST", "/v1/reports/{report}/photos", CITIZEN.format(r=400)),
    ("intake", "GET", "/v1/reports/{report}/messages", CITIZEN.format(r=200)),
    ("intake", "POST", "/v1/reports/{report}/messages", CITIZEN.format(r=422)),
    ("intake", "GET", "/v1/reports/{report}/events", CITIZEN.format(r=200)),
    ("intake", "GET", "/v1/reports/{report}/data", CITIZEN.format(r=200)),
    ("intake", "DELETE", "/v1/reports/{report}/contact", CITIZEN.format(r=200)),
    # Open311: public as the spec has it (reads show a public view; an api_key is optional), in JSON and XML
    *(
        row
        for wire in ("json", "xml")
        for row in [
            ("intake", "GET", f"/open311/v2/services.{wire}", OPEN.format(200)),
            ("intake", "GET", f"/open311/v2/services/burglary.{wire}", OPEN.format(200)),
            ("intake", "POST", f"/open311/v2/requests.{wire}", OPEN.format(415)),  # a form, as Open311 has it
            ("intake", "GET", f"/open311/v2/requests.{wire}", OPEN.format(200)),
            ("intake", "GET", f"/open311/v2/requests/{{report}}.{wire}", OPEN.format(200)),
            ("intake", "GET", f"/open311/v2/tokens/BM-1999-000001.{wire}", OPEN.format(404)),
        ]
    ),
    ("intake", "POST", "/internal/v1/report-events", INTERNAL.format(i=403, v=403, b=400)),
    ("intake", "POST", "/internal/v1/messages", INTERNAL.format(i=403, v=403, b=400)),
    ("intake", "POST", "/internal/v1/legal-holds", INTERNAL.format(i=403, v=403, b=400)),
    ("intake", "POST", "/internal/v1/caller-links", INTERNAL.format(i=403, v=403, b=400)),
    ("intake", "POST", "/internal/v1/caller-links/revocations", INTERNAL.format(i=403, v=403, b=400)),
    ("intake", "GET", "/internal/v1/audit?report_id={report}", INTERNAL.format(i=403, v=403, b=200)),
    # Burgernet: the feed, alerts and photos are for everyone; answers and receipts need the app's credential
    ("intake", "GET", "/v1/burgernet/actions", OPEN.format(200)),
    ("intake", "GET", "/v1/burgernet/actions/{action}/cap", OPEN.format(404)),
    ("intake", "GET", "/v1/burgernet/actions/{action}/photo", OPEN.format(404)),
    ("intake", "POST", "/v1/burgernet/receipts", OPEN.format(422)),
    ("intake", "POST", "/v1/burgernet/actions/{action}/sightings", OPEN.format(400)),  # no Idempotency-Key
    ("intake", "POST", "/internal/v1/burgernet/actions", INTERNAL.format(i=403, v=403, b=400)),
    ("intake", "GET", "/internal/v1/burgernet/actions/{action}/reach", INTERNAL.format(i=403, v=403, b=404)),
    # verification: internal only
    ("verification", "POST", "/internal/v1/jobs", INTERNAL.format(i=400, v=403, b=403)),
    ("verification", "GET", "/internal/v1/verifications/{report}", INTERNAL.format(i=200, v=403, b=200)),
    ("verification", "GET", "/internal/v1/dead-jobs", INTERNAL.format(i=403, v=403, b=200)),
    ("verification", "POST", "/internal/v1/dead-jobs/no-such-job/replay", INTERNAL.format(i=403, v=403, b=404)),
    ("verification", "POST", "/internal/v1/retention", INTERNAL.format(i=400, v=403, b=403)),
    ("verification", "GET", "/internal/v1/audit?report_id={report}", INTERNAL.format(i=403, v=403, b=200)),
    # dispatch-bridge: messages from intake and verification, the meldkamer's side, and the dispatchers' desk
    ("bridge", "POST", "/internal/v1/reports", INTERNAL.format(i=400, v=403, b=403)),
    ("bridge", "POST", "/internal/v1/verifications", INTERNAL.format(i=403, v=400, b=403)),
    ("bridge", "POST", "/internal/v1/withdrawals", INTERNAL.format(i=400, v=403, b=403)),
    ("bridge", "POST", "/internal/v1/citizen-messages", INTERNAL.format(i=400, v=403, b=403)),
    ("bridge", "POST", "/internal/v1/caller-link-events", INTERNAL.format(i=400, v=403, b=403)),
    ("bridge", "POST", "/internal/v1/group-merges", INTERNAL.format(i=403, v=400, b=403)),
    ("bridge", "POST", "/internal/v1/retention", INTERNAL.format(i=400, v=403, b=403)),
    (
        "bridge",
        "POST",
        "/v1/meldkamer/callbacks",  # the meldkamer's webhook signature, nothing else
        "401  401   401   401   401  401  401  401  401  422  401  401  401  401  401",
    ),
    ("bridge", "GET", "/v1/media/{digest}?{signed}", OPEN.format(200)),  # whoever holds the signed link
    ("bridge", "GET", "/v1/media/{digest}?{forged}", OPEN.format(403)),
    ("bridge", "POST", "/v1/auth/token", OPEN.format(422)),
    ("bridge", "GET", "/v1/dispatch/incidents", DESK.format(d=200, s=200)),
    ("bridge", "GET", "/v1/dispatch/reports", DESK.format(d=200, s=200)),
    ("bridge", "GET", "/v1/dispatch/reports/{report}", DESK.format(d=200, s=200)),
    ("bridge", "GET", "/v1/dispatch/reports/{report}/photos/{photo}", DESK.format(d=200, s=200)),
    ("bridge", "GET", "/v1/dispatch/reports/{report}/photos/{photo}/video", DESK.format(d=404, s=404)),  # a photo
    ("bridge", "POST", "/v1/dispatch/incidents/{incident}/caller-links", DESK.format(d=422, s=422)),  # no number
    ("bridge", "GET", "/v1/dispatch/incidents/{incident}/caller-links", DESK.format(d=200, s=200)),
    ("bridge", "POST", "/v1/dispatch/caller-links/no-such-link/revoke", DESK.format(d=404, s=404)),
    ("bridge", "POST", "/v1/dispatch/reports/{report}/questions", DESK.format(d=422, s=422)),
    ("bridge", "POST", "/v1/dispatch/reports/{report}/forward", DESK.format(d=409, s=409)),
    ("bridge", "POST", "/v1/dispatch/reports/{report}/reject", DESK.format(d=409, s=409)),
    ("bridge", "POST", "/v1/dispatch/reports/{report}/split", DESK.format(d=409, s=409)),  # its incident's only one
    ("bridge", "POST", "/v1/dispatch/incidents/{incident}/merge", DESK.format(d=422, s=422)),  # no incident_ids
    ("bridge", "GET", "/v1/dispatch/delivery", DESK.format(d=200, s=200)),
    ("bridge", "GET", "/v1/dispatch/dead-letters", DESK.format(d=200, s=200)),  # replayed by supervisors
    ("bridge", "POST", "/v1/dispatch/dead-letters/no-such-message/replay", DESK.format(d=403, s=404)),
    ("bridge", "GET", "/v1/dispatch/audit", DESK.format(d=403, s=200)),
    ("bridge", "GET", "/v1/dispatch/reports/{report}/custody", DESK.format(d=403, s=200)),
    ("bridge", "GET", "/v1/dispatch/reports/{report}/photos/{photo}/custody", DESK.format(d=403, s=200)),
    ("bridge", "POST", "/v1/dispatch/incidents/{incident}/legal-hold", DESK.format(d=403, s=422)),  # no reason
    ("bridge", "POST", "/v1/dispatch/incidents/{incident}/legal-hold/lift", DESK.format(d=403, s=404)),  # none
    ("bridge", "POST", "/v1/dispatch/incidents/{incident}/evidence-export", DESK.format(d=403, s=200)),
    ("bridge", "GET", "/v1/dispatch/deletions", DESK.format(d=403, s=200)),
    ("bridge", "POST", "/v1/dispatch/users/{user}/unlock", DESK.format(d=403, s=200)),
    ("bridge", "POST", "/v1/dispatch/burgernet/photos", DESK.format(d=415, s=415)),  # the body is no image
    ("bridge", "POST", "/v1/dispatch/burgernet/actions", DESK.format(d=422, s=422)),
    ("bridge", "GET", "/v1/dispatch/burgernet/actions", DESK.format(d=200, s=200)),
    ("bridge", "GET", "/v1/dispatch/burgernet/actions/{action}", DESK.format(d=404, s=404)),
    ("bridge", "POST", "/v1/dispatch/burgernet/actions/{action}/close", DESK.format(d=422, s=422)),
    ("bridge", "POST", "/v1/dispatch/burgernet/actions/{action}/cancel", DESK.format(d=403, s=422)),
    (
        "bridge",
        "POST",
        "/v1/meldkamer/burgernet-actions",  # the meldkamer's webhook signature, nothing else
        "401  401   401   401   401  401  401  401  401  422  401  401  401  401  401",
    ),
    # the simulated meldkamer: the bridge's credential, and its operator's admin token for faults
    ("meldkamer", "POST", "/v1/requests-for-service", INTERNAL.format(i=403, v=403, b=422)),
    ("meldkamer", "POST", "/v1/requests-for-service/{report}/updates", INTERNAL.format(i=403, v=403, b=422)),
    # the simulator's own view, for tests and demos: it holds citizens' descriptions, so the admin token only
    ("meldkamer", "GET", "/v1/incidents", ADMIN.format(a=200)),
    ("meldkamer", "GET", "/admin/faults", ADMIN.format(a=200)),
    ("meldkamer", "PUT", "/admin/faults", ADMIN.format(a=200)),
    ("meldkamer", "POST", "/admin/outage", ADMIN.format(a=422)),
    ("meldkamer", "POST", "/admin/incidents/{incident}/end", ADMIN.format(a=422)),  # no body: refused as such
    # Last: the right token withdraws the report, which the rows above still need.
    ("intake", "POST", "/v1/reports/{report}/withdraw", CITIZEN.format(r=200)),
]
WEBHOOK_KEYS = webhooks.development_keys()
ADMIN_TOKEN = "dev-only-meldkamer-admin-token-change-me"  # the simulator's development default


@dataclass
class World:
    suite: Suite
    report: dict[str, str]  # the report under test (id, access_token)
    other: dict[str, str]  # another citizen's report
    photo_id: str
    digest: str
    dispatcher_tokens: dict[str, str]
    incident_id: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    suite = start_suite(
        tmp_path_factory.mktemp("matrix"),
        {
            "BM_INTAKE_WRONG_TOKENS_PER_REPORT": "100000",  # the guard against guessing is tested on its own
            "BM_INTAKE_TOKEN_USES_PER_CLIENT": "100000",  # and so are the limits on reads
            "BM_MELDKAMER_SCRIPT": json.dumps([["Active", 0.2]]),  # accepted and left open
        },
    )
    try:
        place = {"lat": 52.1, "lon": 5.1}
        photo = phone_photo(4242, **place)
        created = submit(suite, report_json(in_progress=True, location=place), [photo], "matrix-report").json()
        other = submit(suite, report_json(location={"lat": 52.3, "lon": 5.3}), [], "matrix-other").json()
        follow(suite, created, "accepted")
        tokens = {role: create_dispatcher(suite, f"matrix-{role}", role) for role in ("dispatcher", "supervisor")}
        create_dispatcher(suite, "matrix-target", "dispatcher")
        seen = (
            local_http()
            .get(
                f"{suite.urls['bridge']}/v1/dispatch/reports/{created['id']}",
                headers={"Authorization": f"Bearer {tokens['supervisor']}"},
            )
            .json()
        )
        yield World(
            suite,
            created,
            other,
            seen["photos"][0]["photo_id"],
            hashlib.sha256(photo).hexdigest(),
            tokens,
            seen["incident_id"],
        )
    finally:
        suite.stop()


BRIDGE_DEFAULTS = BridgeSettings()  # the suite's bridge runs on the development defaults: its secrets are these


def credentials(world: World, caller: str, service: str) -> dict[str, str]:
    """The headers a caller sends to a service (the meldkamer's are its webhook signature, added per body)."""
    audience = SERVICE_NAMES[service]
    bridge_secret = BRIDGE_DEFAULTS.dispatcher_token_secret
    bearer: dict[str, Callable[[], str]] = {
        "wrong_citizen_token": lambda: base64.urlsafe_b64encode(b"x" * 32).rstrip(b"=").decode(),
        "other_reports_token": lambda: world.other["access_token"],
        "right_token": lambda: world.report["access_token"],
        "dispatcher": lambda: world.dispatcher_tokens["dispatcher"],
        "supervisor": lambda: world.dispatcher_tokens["supervisor"],
        "intake": lambda: development_key("report-intake").issue(audience),
        "verification": lambda: development_key("verification").issue(audience),
        "bridge": lambda: development_key("dispatch-bridge").issue(audience),
        "sim_admin": lambda: ADMIN_TOKEN,
        "expired_service": lambda: development_key("dispatch-bridge").issue(audience, ttl=-120),
        "expired_dispatcher": lambda: accounts_tokens.issue_token(
            bridge_secret, "matrix-supervisor", "supervisor", -10
        ),
        # The bridge's name and key id, another key: what someone who knows the format but not the key makes.
        "forged_service": lambda: ServiceKey(
            "dispatch-bridge", development_key("dispatch-bridge").kid, Ed25519PrivateKey.generate()
        ).issue(audience),
        "forged_dispatcher": lambda: accounts_tokens.issue_token(
            "not the bridge's secret" * 2, "matrix-supervisor", "supervisor", 60
        ),
    }
    return {"Authorization": f"Bearer {bearer[caller]()}"} if caller in bearer else {}


def status_of(world: World, service: str, method: str, path: str, caller: str) -> int:
    bridge_url = world.suite.urls["bridge"]
    path = path.format(
        report=world.report["id"],
        photo=world.photo_id,
        action="no-such-action",
        incident=world.incident_id,
        user="matrix-target",
        digest=world.digest,
        signed=media.signed_url(bridge_url, BRIDGE_DEFAULTS.media_url_secret, world.digest, 60).split("?")[1],
        forged=f"expires={2**31}&signature={'0' * 64}",
    )
    headers = credentials(world, caller, service)
    body = b"{}" if method in ("POST", "PUT") else b""
    if body:
        headers["Content-Type"] = "application/json"
    if caller == "meldkamer":
        headers.update(webhooks.signed_headers(WEBHOOK_KEYS, "matrix-callback", body))
    request = local_http().stream(method, world.suite.urls[service] + path, content=body, headers=headers, timeout=10)
    with request as answer:
        return answer.status_code  # a live stream (SSE) is judged by its status, not read to the end


def test_the_matrix_covers_every_operation_of_every_service(world: World) -> None:
    documented = {
        (service, method.upper(), path)
        for service in SERVICE_NAMES
        for document in openapi_documents(world.suite.urls[service], world.suite.env, service)
        for path, operations in document["paths"].items()
        for method in operations
    }
    in_matrix = {(service, method, _as_documented(service, path)) for service, method, path, _ in MATRIX}
    assert documented == in_matrix, (documented - in_matrix, in_matrix - documented)


def _as_documented(service: str, path: str) -> str:
    """A matrix path as its OpenAPI template (the rows name concrete things where the document has parameters)."""
    path = (
        path.split("?")[0]
        .replace("/no-such-job/", "/{job_id}/")
        .replace("/no-such-message/", "/{message_id}/")
        .replace("/no-such-link/", "/{link_id}/")
        .replace("{user}/unlock", "{username}/{change}")
        .replace("{photo}", "{photo_id}")
        .replace("{incident}", "{incident_id}")
        .replace("{action}", "{action_id}")
    )
    if service == "intake" and path.startswith("/open311/v2/"):
        wire = path.rsplit(".", 1)[1]
        for prefix, template in (
            ("/open311/v2/requests/", "/open311/v2/requests/{request_id}"),
            ("/open311/v2/services/", "/open311/v2/services/{service_code}"),
            ("/open311/v2/tokens/", "/open311/v2/tokens/{token}"),
        ):
            if path.startswith(prefix):
                return f"{template}.{wire}"
    if service == "meldkamer":
        return path.replace("{report}", "{request_id}")
    return path.replace("{report}", "{report_id}")


def test_every_caller_gets_exactly_the_expected_status_at_every_endpoint(world: World) -> None:
    wrong = []
    for service, method, path, expected in MATRIX:
        statuses = [int(code) for code in expected.split()]
        assert len(statuses) == len(CALLERS), path
        for caller, want in zip(CALLERS, statuses, strict=True):
            got = status_of(world, service, method, path, caller)
            if got != want:
                wrong.append(f"{service} {method} {path} as {caller}: {got}, expected {want}")
    cells = len(MATRIX) * len(CALLERS)
    print(f"authorisation matrix: {len(MATRIX)} operations x {len(CALLERS)} callers = {cells} requests")
    assert not wrong, "\n".join(wrong)
