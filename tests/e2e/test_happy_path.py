"""The happy path for real: four uvicorn processes, real HTTP between them, a real photo with real EXIF."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from civicbot.http import HttpTransport, RateLimiter
from civicbot.open311 import Open311Client
from civicbot.registry import Endpoint
from georeport import GeoReport

from tests.helpers import exif_time, gps_tags, make_jpeg, report_json, report_parts
from tests.suite import (
    SmsGateway,
    Suite,
    create_dispatcher,
    follow,
    local_http,
    meldkamer_incidents,
    start_suite,
    submit,
)
from tests.videos import phone_clip

# Runs on SQLite only (conftest.py, END_TO_END_DATABASES): the embedded default: what a new machine runs with no setup (production's happy path is test_production's).
pytestmark = pytest.mark.runs_on("sqlite")


class PhotoHost:
    """An integrator's photo host for Open311's media_url: a real HTTP server on this machine."""

    def __init__(self) -> None:
        self.photos: dict[str, bytes] = {}
        photos = self.photos

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = photos.get(self.path)
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "image/jpeg")
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def photo_host() -> Iterator[PhotoHost]:
    host = PhotoHost()
    yield host
    host.server.shutdown()


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory, photo_host: PhotoHost, sms: SmsGateway) -> Iterator[Suite]:
    running = start_suite(
        tmp_path_factory.mktemp("suite"),
        {
            "BM_INTAKE_OPEN311_MEDIA_HOSTS": json.dumps([photo_host.host]),
            "BM_INTAKE_OPEN311_MEDIA_PRIVATE_ADDRESSES": "true",  # the photo host is this machine
            "BM_BRIDGE_SMS_URL": sms.url,
        },
    )
    yield running
    running.stop()


def elsewhere(n: int) -> dict[str, float]:
    """A place of its own for each test's report, 2 km from the others: the suite runs for the whole module,
    and reports of one place and time are one event, so they would join each other's incidents."""
    return {"lat": 52.0907 + 0.02 * n, "lon": 5.1214}


def camera_photo(lat: float, lon: float, pattern: int) -> bytes:
    now = datetime.now(UTC)
    return make_jpeg(
        1600,
        1200,
        pattern=pattern,
        exif={0x010F: "Google", 0x0110: "Pixel 8", 0x0131: "HDR+ 1.0.6"},
        exif_ifd={0x9003: exif_time(now), 0x9011: "+00:00"},
        gps=gps_tags(lat, lon),
    )


def test_report_travels_to_the_meldkamer_and_the_citizen_follows_it(suite: Suite) -> None:
    body = report_json(in_progress=False)
    response = submit(suite, body, [camera_photo(52.0907, 5.1214, pattern=1)], "e2e-happy-path-0001")
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["reference"].startswith("BM-") and created["status"] == "received"
    assert created["safety_advice"] is None
    trace_id = response.headers["traceparent"].split("-")[1]

    view = follow(suite, created, "closed")
    events = [item["event"] for item in view["timeline"]]
    assert view["status"] == "closed", events
    assert events == ["received", "verified", "forwarded", "accepted", "unit_assigned", "message", "closed"]

    incidents = meldkamer_incidents(suite.urls["meldkamer"], suite.env)
    ours = [i for i in incidents if i["description"] == body["description"]]
    assert len(ours) == 1
    assert ours[0]["incidentType"] == "BURGLARY" and ours[0]["status"] == "Closed"
    assert ours[0]["photos"] == "verified"  # the meldkamer fetched the photo and its SHA-256 matched
    # One correlation id from the citizen's request to the control room.
    meldkamer_log = [json.loads(line) for line in suite.log("meldkamer").splitlines() if line.startswith("{")]
    assert any(
        entry.get("trace_id") == trace_id and entry.get("route") == "/v1/requests-for-service"
        for entry in meldkamer_log
    )


def test_in_progress_report_goes_out_at_once_and_says_call_112(suite: Suite) -> None:
    response = submit(
        suite,
        report_json(in_progress=True, category="violence", description="Vechtpartij nu", location=elsewhere(1)),
        [],
        "e2e-in-progress-0001",
    )
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["safety_advice"]["call_112"] is True
    view = follow(suite, created, "closed")
    events = [item["event"] for item in view["timeline"]]
    assert events[:2] == ["received", "call_112"]
    assert {"forwarded", "accepted", "verified", "unit_assigned", "closed"} <= set(events)
    incident = next(
        i for i in meldkamer_incidents(suite.urls["meldkamer"], suite.env) if i["description"] == "Vechtpartij nu"
    )
    assert incident["priorityNumber"] == 10  # prio 1


def test_internal_endpoints_refuse_callers_without_a_service_credential(suite: Suite) -> None:
    checks = [
        ("intake", "/internal/v1/report-events"),
        ("verification", "/internal/v1/jobs"),
        ("bridge", "/internal/v1/reports"),
        ("meldkamer", "/v1/requests-for-service"),
    ]
    for service, path in checks:
        response = local_http().post(f"{suite.urls[service]}{path}", json={}, headers={"Idempotency-Key": "x" * 12})
        assert response.status_code == 401, (service, response.text)
        assert response.json()["error"] == "missing_service_credential"


def test_the_dispatchers_question_reaches_the_citizen_and_the_answer_the_meldkamer(suite: Suite) -> None:
    response = submit(
        suite,
        report_json(in_progress=True, description="Auto rijdt weg met buit", location=elsewhere(2)),
        [],
        "e2e-question-0001",
    )
    created = response.json()
    headers = {"Authorization": f"Bearer {created['access_token']}"}
    deadline = time.monotonic() + 60
    questions: list[dict[str, Any]] = []
    while not questions and time.monotonic() < deadline:
        messages = local_http().get(f"{suite.urls['intake']}{created['status_url']}/messages", headers=headers).json()
        questions = [m for m in messages if m["direction"] == "to_citizen"]
        time.sleep(0.1)
    assert questions and questions[0]["text"] == "Welke kleur had de auto?"
    answer = local_http().post(
        f"{suite.urls['intake']}{created['status_url']}/messages",
        headers={**headers, "Idempotency-Key": "e2e-answer-0001"},
        json={"text": "Rood", "in_reply_to": questions[0]["id"]},
    )
    assert answer.status_code == 201, answer.text
    notes: list[dict[str, Any]] = []
    while not notes and time.monotonic() < deadline:
        incident = next(
            i
            for i in meldkamer_incidents(suite.urls["meldkamer"], suite.env)
            if i["description"] == "Auto rijdt weg met buit"
        )
        notes = [u for u in incident["updates"] if u["kind"] == "citizen_note"]
        time.sleep(0.1)
    assert notes and "Rood" in notes[0]["notes"]


def test_live_updates_over_real_http(suite: Suite) -> None:
    created = submit(
        suite, report_json(in_progress=True, description="live", location=elsewhere(3)), [], "e2e-live-0001"
    ).json()
    seen: list[str] = []
    with local_http().stream(
        "GET",
        f"{suite.urls['intake']}{created['status_url']}/events",
        timeout=30,
        headers={"Authorization": f"Bearer {created['access_token']}"},
    ) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:])["event"])
            if "accepted" in seen:
                break
    assert seen[:2] == ["received", "call_112"] and "accepted" in seen


def test_logs_hold_no_client_address_user_agent_or_token(suite: Suite) -> None:
    probe = {
        "X-Forwarded-For": "203.0.113.77",
        "User-Agent": "PrivacyProbe/1.0 (device qz-wkx)",
        "X-Real-IP": "198.51.100.23",
    }
    files = report_parts(report_json(location=elsewhere(4)))
    response = local_http().post(
        f"{suite.urls['intake']}/v1/reports", files=files, headers={**probe, "Idempotency-Key": "e2e-log-check-0001"}
    )
    created = response.json()
    follow(suite, created, "accepted")
    local_http().get(
        f"{suite.urls['intake']}{created['status_url']}",
        headers={**probe, "Authorization": f"Bearer {created['access_token']}"},
    )
    local_http().get(
        f"{suite.urls['intake']}{created['status_url']}", headers={**probe, "Authorization": "Bearer wrong"}
    )
    # The markers are not hexadecimal: every log line carries a random hex trace id, in which a short hex
    # marker would turn up by chance.
    for name in ("intake", "verification", "bridge", "meldkamer"):
        text = suite.log(name)
        for secret in (created["access_token"], "203.0.113.77", "198.51.100.23", "PrivacyProbe", "qz-wkx"):
            assert secret not in text, (name, secret)
        # uvicorn's access log would write "127.0.0.1:54321 - \"GET ..."; ours writes no address at all
        assert not re.search(r"\d+\.\d+\.\d+\.\d+:\d+ - \"", text), name
        assert all(line.startswith("{") for line in text.splitlines() if line.strip()), name


def test_a_dispatchers_question_through_the_bridge_api_round_trips(suite: Suite) -> None:
    dispatcher = {"Authorization": f"Bearer {create_dispatcher(suite, 'anna', 'dispatcher')}"}
    created = submit(
        suite,
        report_json(in_progress=True, description="Verdachte bij school", location=elsewhere(5)),
        [],
        "e2e-dispatcher-question-1",
    ).json()
    follow(suite, created, "accepted")
    asked = local_http().post(
        f"{suite.urls['bridge']}/v1/dispatch/reports/{created['id']}/questions",
        json={"text": "Hoe laat was dat precies?"},
        headers=dispatcher,
    )
    assert asked.status_code == 201, asked.text
    citizen = {"Authorization": f"Bearer {created['access_token']}"}
    deadline = time.monotonic() + 60
    question = None
    while question is None and time.monotonic() < deadline:
        messages = local_http().get(f"{suite.urls['intake']}{created['status_url']}/messages", headers=citizen).json()
        question = next((m for m in messages if m["text"] == "Hoe laat was dat precies?"), None)
        time.sleep(0.1)
    assert question is not None
    local_http().post(
        f"{suite.urls['intake']}{created['status_url']}/messages",
        json={"text": "Om tien over negen", "in_reply_to": question["id"]},
        headers={**citizen, "Idempotency-Key": "e2e-dispatcher-answer-1"},
    ).raise_for_status()
    answer = None
    while answer is None and time.monotonic() < deadline:
        report = (
            local_http().get(f"{suite.urls['bridge']}/v1/dispatch/reports/{created['id']}", headers=dispatcher).json()
        )
        answer = next((m for m in report["messages"] if m["direction"] == "from_citizen"), None)
        time.sleep(0.1)
    assert answer is not None and answer["in_reply_to"] == question["id"]
    noted = False
    while not noted and time.monotonic() < deadline:  # the note travels on to the meldkamer asynchronously
        incident = next(
            i
            for i in meldkamer_incidents(suite.urls["meldkamer"], suite.env)
            if i["description"] == "Verdachte bij school"
        )
        noted = any("Om tien over negen" in (u["notes"] or "") for u in incident["updates"])
        time.sleep(0.1)
    assert noted


def test_stock_open311_clients_send_read_and_search_in_json_and_xml(suite: Suite, photo_host: PhotoHost) -> None:
    """Two GeoReport v2 clients from PyPI that we did not write: civicbot (JSON: every call, and a form POST as
    the spec has it) and georeport (XML reads). The integrator's api_key comes from intake's own command."""
    issued = subprocess.run(
        [sys.executable, "-m", "report_intake", "integrators", "issue", "--name", "Gemeente Utrecht MOR"],
        env=suite.env,
        check=True,
        capture_output=True,
        text=True,
    )
    api_key = json.loads(issued.stdout)["api_key"]
    root = f"{suite.urls['intake']}/open311/v2"
    photo_host.photos["/melding/1.jpg"] = camera_photo(52.2907, 5.1214, pattern=7)
    endpoint = Endpoint(id="burgermelding", name="Burgermelding", base_url=root, write=True)
    civic = Open311Client(endpoint, HttpTransport(rate_limiter=RateLimiter(min_interval=0)))

    services = civic.list_services()
    assert "burglary" in {s["service_code"] for s in services}
    definition = civic.get_service_definition("burglary")
    assert {a["code"] for a in definition["attributes"]} == {"in_progress", "danger_to_life"}
    sent = civic.create_request(
        "burglary",
        dry_run=False,
        confirm="SEND",
        api_key=api_key,
        validate_remote=True,  # checks the form against our service list and definition first
        lat=52.2907,
        lng=5.1214,
        description="Twee mannen wrikken een raam open",
        attributes={"in_progress": "true"},
        media_url=f"http://{photo_host.host}/melding/1.jpg",
        email="buurman@example.nl",
        device_id="A1B2C3",
    )
    (created,) = sent.response
    assert "112" in created["service_notice"]  # in progress: the app's advice to call 112

    citizen = {"status_url": f"/v1/reports/{created['service_request_id']}", "access_token": created["access_token"]}
    request_id = created["service_request_id"]
    assert civic.get_request(request_id)["status"] == "open"  # type: ignore[index]
    # The simulated meldkamer closes it a few seconds after taking it up: then it is closed for everyone.
    status = follow(suite, citizen, "closed")
    assert [p["content_type"] for p in status["photos"]] == ["image/jpeg"]  # media_url went through the checks
    public = civic.get_request(request_id)
    assert public is not None and public["service_code"] == "burglary" and public["status"] == "closed"
    assert "raam" not in json.dumps(public) and public["lat"] == 52.29  # the public view only
    assert [r["service_request_id"] for r in civic.list_requests(service_request_ids=[request_id])] == [request_id]
    since = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    searched = civic.list_requests(service_code="burglary", status="closed", start_date=since)
    assert request_id in {r["service_request_id"] for r in searched}
    assert request_id not in {r["service_request_id"] for r in civic.list_requests(status="open")}
    assert civic.get_token(created["token"]) == [{"service_request_id": request_id, "token": created["token"]}]

    xml = GeoReport(root, output_format="xml")
    assert "burglary" in {s["service_code"] for s in xml.get_service_list()}
    assert [a["code"] for a in xml.get_service_definition("burglary")["attributes"]["attribute"]] == [
        "in_progress",
        "danger_to_life",
    ]
    one = xml.get_service_request(request_id)
    assert one["service_request_id"] == request_id and one["lat"] == "52.29"
    assert xml.get_service_requests(service_request_id=request_id)["status"] == "closed"


def test_a_witness_video_reaches_the_meldkamer_and_the_dispatcher_plays_it(suite: Suite) -> None:
    """Issue #33 from outside: a phone sends a video (an iPhone's MOV with its place and time), intake keeps it
    as evidence and makes the poster and playable copy, verification reads its container, the meldkamer fetches it
    by its signed link and checks its SHA-256, and a dispatcher plays the copy (a player's range request)."""
    where = elsewhere(9)
    clip = phone_clip(
        71,
        seconds=3.0,
        container="mov",
        phone="iphone",
        place=(where["lat"], where["lon"]),
        recorded_at=datetime.now(UTC) - timedelta(minutes=2),
    )
    body = report_json(in_progress=True, category="violence", description="Vechtpartij gefilmd", location=where)
    response = submit(suite, body, [clip], "e2e-video-0001")
    assert response.status_code == 202, response.text
    created = response.json()
    view = follow(suite, created, "accepted")
    assert [(p["kind"], p["content_type"]) for p in view["photos"]] == [("video", "video/quicktime")]
    deadline = time.monotonic() + 60
    incident: dict[str, Any] = {}
    while incident.get("photos") != "verified" and time.monotonic() < deadline:
        incident = next(
            i
            for i in meldkamer_incidents(suite.urls["meldkamer"], suite.env)
            if i["description"] == body["description"]
        )
        time.sleep(0.2)
    assert incident["photos"] == "verified"  # the meldkamer fetched the original and its SHA-256 matched
    dispatcher = {"Authorization": f"Bearer {create_dispatcher(suite, 'vera', 'dispatcher')}"}
    report: dict[str, Any] = {}
    while not report.get("verification_detail") and time.monotonic() < deadline:
        report = (
            local_http().get(f"{suite.urls['bridge']}/v1/dispatch/reports/{created['id']}", headers=dispatcher).json()
        )
        time.sleep(0.2)
    (video,) = report["photos"]
    assert (video["kind"], video["duration_seconds"]) == ("video", 3.0)
    checks = {c["code"]: c["outcome"] for p in report["verification_detail"]["photos"] for c in p["checks"]}
    assert checks["video_decodes"] == "pass" and checks["gps_matches_claim"] == "pass"
    base = f"{suite.urls['bridge']}/v1/dispatch/reports/{created['id']}/photos/{video['photo_id']}"
    poster = local_http().get(base, headers=dispatcher)
    assert poster.status_code == 200 and poster.headers["content-type"] == "image/jpeg"
    played = local_http().get(f"{base}/video", headers={**dispatcher, "Range": "bytes=0-1023"})
    assert played.status_code == 206 and played.headers["content-type"] == "video/mp4" and len(played.content) == 1024


def test_a_caller_asked_by_sms_refuses_then_shares_a_photo_and_a_video(suite: Suite, sms: SmsGateway) -> None:
    """Issue #33 from outside, over real HTTP between the processes (a phone's browser stands in as an HTTP
    client; the Playwright flow is still to come): a dispatcher asks a caller on an incident for images, the SMS
    arrives at the simulated gateway, the caller opens the link on intake, refuses (the dispatcher sees it),
    consents, and sends a photo and a video with their location; the dispatcher sees them in that incident."""
    where = elsewhere(11)
    created = submit(
        suite,
        report_json(in_progress=True, category="violence", description="Vechtpartij op het plein", location=where),
        [],
        "e2e-caller-incident-1",
    ).json()
    follow(suite, created, "accepted")
    dispatcher = {"Authorization": f"Bearer {create_dispatcher(suite, 'kees', 'dispatcher')}"}
    bridge = suite.urls["bridge"]
    incident_id = (
        local_http().get(f"{bridge}/v1/dispatch/reports/{created['id']}", headers=dispatcher).json()["incident_id"]
    )
    links_url = f"{bridge}/v1/dispatch/incidents/{incident_id}/caller-links"
    sent = local_http().post(
        links_url, json={"phone": "06 9876 5432", "ask": "Film de auto die wegrijdt"}, headers=dispatcher
    )
    assert sent.status_code == 201, sent.text
    (message,) = sms.messages("0031698765432")
    link = re.search(r"(http://\S+/c/[A-Za-z0-9_-]+)", message["content"]).group(1)
    assert link.startswith(suite.urls["intake"])

    def state() -> str:
        return local_http().get(links_url, headers=dispatcher).json()[0]["state"]

    def until(wanted: str) -> None:
        deadline = time.monotonic() + 30
        while state() != wanted and time.monotonic() < deadline:
            time.sleep(0.1)
        assert state() == wanted

    phone = local_http()
    # Intake is told of the link before the SMS goes, over the outbox; a phone shows an SMS seconds later, the
    # simulated gateway at once: allow the link's message its milliseconds.
    deadline = time.monotonic() + 10
    while (consent_page := phone.get(link)).status_code == 404 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert consent_page.status_code == 200 and "Film de auto die wegrijdt" in consent_page.text
    until("opened")
    phone.post(f"{link}/consent", data={"decision": "refuse"}, follow_redirects=False)
    until("consent_refused")
    phone.post(f"{link}/consent", data={"decision": "give"}, follow_redirects=False)
    until("consent_given")
    clip = phone_clip(93, seconds=2.0, place=(where["lat"], where["lon"]), recorded_at=datetime.now(UTC))
    uploaded = phone.post(
        f"{link}/files",
        data={"lat": str(where["lat"]), "lon": str(where["lon"]), "accuracy": "8"},
        files=[
            ("files", ("p.jpg", camera_photo(where["lat"], where["lon"], 93), "image/jpeg")),
            ("files", ("v.mp4", clip, "video/mp4")),
        ],
        follow_redirects=False,
    )
    assert uploaded.status_code == 303, uploaded.text
    until("received")
    assert local_http().get(links_url, headers=dispatcher).json()[0]["files"] == 2
    deadline, kinds = time.monotonic() + 30, []
    while sorted(kinds) != ["photo", "video"] and time.monotonic() < deadline:
        reports = local_http().get(f"{bridge}/v1/dispatch/reports", headers=dispatcher).json()
        theirs = [r for r in reports if r["report_id"] != created["id"] and r["incident_id"] == incident_id]
        if theirs:
            url = f"{bridge}/v1/dispatch/reports/{theirs[0]['report_id']}"
            detail = local_http().get(url, headers=dispatcher).json()
            kinds = [p["kind"] for p in detail["photos"]]
        time.sleep(0.2)
    assert sorted(kinds) == ["photo", "video"]
    # Then a longer video, resumable (tus), over a connection that drops half-way (a real socket, closed while the
    # body is still coming): the phone asks how far it got and sends only the rest.
    longer = phone_clip(95, seconds=4.0, size=(1280, 720))
    created_upload = phone.post(
        f"{link}/uploads", headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(len(longer))}
    )
    assert created_upload.status_code == 201, created_upload.text
    upload_path = created_upload.headers["location"]
    cut_at = len(longer) // 2
    host, port = suite.urls["intake"].removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as cut:
        cut.sendall(
            (
                f"PATCH {upload_path} HTTP/1.1\r\nHost: {host}:{port}\r\nTus-Resumable: 1.0.0\r\n"
                f"Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n"
                f"Content-Length: {len(longer)}\r\n\r\n"
            ).encode()
            + longer[:cut_at]
        )
        time.sleep(0.5)  # the bytes are on their way; then the connection is gone
    intake = suite.urls["intake"]
    deadline, arrived = time.monotonic() + 10, 0
    while time.monotonic() < deadline:
        arrived = int(phone.head(f"{intake}{upload_path}", headers={"Tus-Resumable": "1.0.0"}).headers["upload-offset"])
        if arrived == cut_at:
            break
        time.sleep(0.1)
    assert 0 < arrived <= cut_at  # kept what came, not started over
    rest = phone.patch(
        f"{intake}{upload_path}",
        content=longer[arrived:],
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Offset": str(arrived),
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert rest.status_code == 204 and rest.headers["upload-offset"] == str(len(longer))
    finished = phone.post(
        f"{link}/uploads/done", data={"upload": upload_path.rsplit("/", 1)[1]}, follow_redirects=False
    )
    assert finished.status_code == 303, finished.text
    deadline = time.monotonic() + 30
    while local_http().get(links_url, headers=dispatcher).json()[0]["files"] != 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert local_http().get(links_url, headers=dispatcher).json()[0]["files"] == 3
