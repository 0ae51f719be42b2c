"""Open311 GeoReport v2: every route in JSON and XML, the public view, address_string, api keys, media_url.

The stock clients (civicbot, georeport) drive a running suite in tests/e2e/test_happy_path.py; here the rules,
in-process, with real HTTP servers where the service itself is a client (media_url, PDOK's Locatieserver)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.etree import ElementTree

import pytest
from sqlalchemy import func, select

from report_intake.config import IntakeSettings
from report_intake.models import Photo, Report, messaging
from report_intake.open311 import integrators
from tests.helpers import exif_time, gps_tags, make_jpeg
from tests.pdok import Locatieserver
from tests.videos import phone_clip

FORM = {
    "service_code": "vandalism",
    "lat": "52.37312",
    "long": "4.89253",
    "description": "Bushokje vernield",
    "email": "a@example.nl",
    "device_id": "DEVICE-123",
}


@pytest.fixture
async def intake(start_service: Callable[..., Any]) -> Any:
    return await start_service("report_intake", IntakeSettings)


def errors_of(response: Any) -> dict[str, Any]:
    """The one error of an Open311 error answer, in either format, after checking its shape."""
    if response.headers["content-type"].startswith("application/xml"):
        root = ElementTree.fromstring(response.content)
        assert root.tag == "errors", response.text
        error = root.find("error")
        assert error is not None
        return {child.tag: child.text for child in error}
    body = response.json()
    assert isinstance(body, list) and len(body) == 1, body
    assert set(body[0]) == {"code", "description", "description_nl", "reason"}, body
    return body[0]


async def reports_stored(intake: Any) -> int:
    async with intake.runtime.db.sessions() as session:
        return (await session.execute(select(func.count()).select_from(Report))).scalar_one()


async def test_services_and_their_definitions_in_json_and_xml(intake: Any) -> None:
    services = (await intake.client.get("/open311/v2/services.json")).json()
    burglary = next(s for s in services if s["service_code"] == "burglary")
    assert burglary["service_name"] == "Burglary" and burglary["metadata"] is True and burglary["type"] == "realtime"
    xml = await intake.client.get("/open311/v2/services.xml", headers={"Accept-Language": "nl"})
    assert xml.status_code == 200 and xml.headers["content-type"].startswith("application/xml")
    root = ElementTree.fromstring(xml.content)
    assert root.tag == "services" and len(root.findall("service")) == len(services)
    assert root.find("service/service_name") is not None and root.findtext("service/metadata") == "true"
    assert "Inbraak" in [s.findtext("service_name") for s in root.findall("service")]

    definition = (await intake.client.get("/open311/v2/services/burglary.json")).json()
    codes = {a["code"]: a for a in definition["attributes"]}
    assert definition["service_code"] == "burglary" and set(codes) == {"in_progress", "danger_to_life"}
    assert "Call 112 now" in codes["in_progress"]["description"]
    assert [v["key"] for v in codes["danger_to_life"]["values"]] == ["true", "false"]
    xml_definition = ElementTree.fromstring((await intake.client.get("/open311/v2/services/burglary.xml")).content)
    assert xml_definition.tag == "service_definition"
    assert [a.findtext("code") for a in xml_definition.findall("attributes/attribute")] == [
        "in_progress",
        "danger_to_life",
    ]
    assert [v.findtext("key") for v in xml_definition.findall("attributes/attribute/values/value")][:2] == [
        "true",
        "false",
    ]

    for path in ("/open311/v2/services/ufo.json", "/open311/v2/services/ufo.xml", "/open311/v2/services.yaml"):
        missing = await intake.client.get(path)
        assert missing.status_code == 404, path
        assert errors_of(missing)["code"] in (404, "404")


async def test_a_request_is_made_read_searched_and_found_by_its_token(intake: Any) -> None:
    urgent = await intake.client.post(
        "/open311/v2/requests.json",
        data={**FORM, "attribute[in_progress]": "true", "description": "Ze slaan nu de ruiten in"},
    )
    assert urgent.status_code == 201, urgent.text
    made = urgent.json()[0]
    assert "112" in made["service_notice"] and made["token"].startswith("BM-")  # urgent: the app's 112 advice
    async with intake.runtime.db.sessions() as session:
        stored = (await session.execute(select(Report).where(Report.id == made["service_request_id"]))).scalar_one()
        queued = (await session.execute(select(messaging.outbox.c.payload))).scalars().all()
    assert stored.in_progress and stored.urgent and stored.integrator_id is None
    payloads = [json.loads(p) if isinstance(p, str) else p for p in queued]
    assert payloads and all(p["in_progress"] for p in payloads)  # goes on as urgent, like the app's

    quiet = (await intake.client.post("/open311/v2/requests.json", data=FORM)).json()[0]
    assert quiet["service_notice"] == quiet["token"]  # not urgent: no 112 advice, the reference
    replay = (await intake.client.post("/open311/v2/requests.json", data=FORM)).json()[0]
    assert replay["service_request_id"] == quiet["service_request_id"]  # a retry is not a second report

    # Public as the spec has it, showing nothing of the citizen: no description, contact, exact place.
    read = await intake.client.get(f"/open311/v2/requests/{made['service_request_id']}.json")
    assert read.status_code == 200, read.text
    view = read.json()[0]
    assert view["status"] == "open" and view["service_code"] == "vandalism" and view["status_notes"] == "Received"
    assert (view["lat"], view["long"]) == (52.37, 4.89)
    text = read.text
    for private in ("ruiten", "a@example.nl", "DEVICE-123", "52.37312", "access_token"):
        assert private not in text
    xml = ElementTree.fromstring(
        (await intake.client.get(f"/open311/v2/requests/{quiet['service_request_id']}.xml")).content
    )
    assert xml.tag == "service_requests" and xml.findtext("request/service_request_id") == quiet["service_request_id"]
    assert xml.findtext("request/lat") == "52.37" and xml.find("request/description") is None

    by_ids = (
        await intake.client.get(
            "/open311/v2/requests.json",
            params={"service_request_id": f"{made['service_request_id']},{quiet['service_request_id']}"},
        )
    ).json()
    assert {r["service_request_id"] for r in by_ids} == {made["service_request_id"], quiet["service_request_id"]}
    assert len((await intake.client.get("/open311/v2/requests.json", params={"service_code": "vandalism"})).json()) == 2
    assert (await intake.client.get("/open311/v2/requests.json", params={"service_code": "burglary"})).json() == []
    assert len((await intake.client.get("/open311/v2/requests.json", params={"status": "open"})).json()) == 2
    assert (await intake.client.get("/open311/v2/requests.json", params={"status": "closed"})).json() == []
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (await intake.client.get("/open311/v2/requests.json", params={"start_date": tomorrow})).json() == []
    week_ago = (datetime.now(UTC) - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len((await intake.client.get("/open311/v2/requests.json", params={"start_date": week_ago})).json()) == 2
    listed = ElementTree.fromstring((await intake.client.get("/open311/v2/requests.xml")).content)
    assert len(listed.findall("request")) == 2

    for params, reason in (
        ({"start_date": "yesterday"}, "invalid_date"),
        ({"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"}, "invalid_date_range"),
        ({"status": "pending"}, "invalid_status"),
    ):
        refused = await intake.client.get("/open311/v2/requests.xml", params=params)
        assert refused.status_code == 400 and errors_of(refused)["reason"] == reason

    token = (await intake.client.get(f"/open311/v2/tokens/{made['token']}.json")).json()
    assert token == [{"service_request_id": made["service_request_id"], "token": made["token"]}]
    assert errors_of(await intake.client.get("/open311/v2/tokens/BM-1999-000001.json"))["reason"] == "request_not_found"
    unknown = await intake.client.get("/open311/v2/requests/3f8e2b0c-7a51-4c3e-9d0a-1b2c3d4e5f60.xml")
    assert unknown.status_code == 404 and errors_of(unknown)["reason"] == "request_not_found"


async def test_bad_requests_get_the_specs_error_shape_and_store_nothing(intake: Any) -> None:
    cases = [
        ({**FORM, "service_code": "ufo"}, 422, "unknown_category"),
        ({"service_code": "theft", "description": "x"}, 400, "missing_location"),
        ({**FORM, "lat": "north"}, 400, "invalid_location"),
        ({**FORM, "description": ""}, 400, "invalid_request"),
        ({**FORM, "api_key": "bm311_000000000000_" + "A" * 43}, 403, "invalid_api_key"),
        ({**FORM, "api_key": "not a key"}, 403, "invalid_api_key"),
        ({**FORM, "media_url": "http://169.254.169.254/latest/meta-data"}, 422, "media_url_not_allowed"),
    ]
    for form, status, reason in cases:
        for wire in ("json", "xml"):
            refused = await intake.client.post(f"/open311/v2/requests.{wire}", data=form)
            assert refused.status_code == status, (form, refused.text)
            error = errors_of(refused)
            assert error["reason"] == reason and error["description"] and error["description_nl"], error
    json_body = await intake.client.post("/open311/v2/requests.xml", json=FORM)
    assert json_body.status_code == 415 and errors_of(json_body)["reason"] == "form_required"
    dutch = await intake.client.post(
        "/open311/v2/requests.json", data={"service_code": "theft"}, headers={"Accept-Language": "nl"}
    )
    assert errors_of(dutch)["description"].startswith("stuur lat en long")
    # A quoted control character cannot break the XML.
    weird = await intake.client.post("/open311/v2/requests.xml", data={**FORM, "service_code": "u\x01fo"})
    assert weird.status_code == 422 and ElementTree.fromstring(weird.content).tag == "errors"
    assert await reports_stored(intake) == 0


async def test_an_address_alone_is_placed_by_the_geocoder_or_refused(intake: Any) -> None:
    form = {k: v for k, v in FORM.items() if k not in ("lat", "long")}
    placed = await intake.client.post(
        "/open311/v2/requests.json", data={**form, "address_string": "domplein 29,  UTRECHT"}
    )
    assert placed.status_code == 201, placed.text
    async with intake.runtime.db.sessions() as session:
        report = (await session.execute(select(Report))).scalar_one()
    assert (report.lat, report.lon, report.place_description) == (52.090737, 5.12142, "Domplein 29, 3512JE Utrecht")
    unknown = await intake.client.post("/open311/v2/requests.json", data={**form, "address_string": "Nergensstraat 1"})
    assert unknown.status_code == 400 and errors_of(unknown)["reason"] == "address_not_found"
    # With coordinates, the address is only the place's description.
    both = await intake.client.post(
        "/open311/v2/requests.json", data={**FORM, "description": "tweede", "address_string": "bij de bakker"}
    )
    assert both.status_code == 201
    assert await reports_stored(intake) == 2


async def test_an_integrators_api_key_has_limits_of_its_own_and_marks_its_reports(
    start_service: Callable[..., Any],
) -> None:
    intake = await start_service("report_intake", IntakeSettings, reports_per_client=1)
    issued = await integrators.issue(intake.runtime.db, "Gemeente Utrecht MOR", reports_per_hour=2, operator="test")
    assert issued.api_key.startswith(f"bm311_{issued.integrator_id}_")

    def form(n: int) -> dict[str, str]:
        return {**FORM, "description": f"melding {n}"}

    assert (await intake.client.post("/open311/v2/requests.json", data=form(0))).status_code == 201
    # The address's own limit (1) is used up; the integrator's (2) is its own.
    assert (await intake.client.post("/open311/v2/requests.json", data=form(1))).status_code == 429
    keyed = [
        await intake.client.post("/open311/v2/requests.json", data={**form(n), "api_key": issued.api_key})
        for n in (2, 3)
    ]
    assert [r.status_code for r in keyed] == [201, 201]
    in_query = await intake.client.post(
        "/open311/v2/requests.json", params={"api_key": issued.api_key}, data=form(4)
    )  # the key as a query parameter counts the same
    assert in_query.status_code == 429 and errors_of(in_query)["reason"] == "rate_limited"
    assert in_query.headers["retry-after"]
    async with intake.runtime.db.sessions() as session:
        marked = (await session.execute(select(Report.integrator_id).order_by(Report.number))).scalars().all()
    assert marked == [None, issued.integrator_id, issued.integrator_id]

    assert await integrators.revoke(intake.runtime.db, issued.integrator_id, operator="test")
    revoked = await intake.client.post("/open311/v2/requests.xml", data={**form(5), "api_key": issued.api_key})
    assert revoked.status_code == 403 and errors_of(revoked)["reason"] == "invalid_api_key"
    listed = await integrators.listing(intake.runtime.db)
    assert [(i.name, i.revoked_at is not None) for i in listed] == [("Gemeente Utrecht MOR", True)]
    assert issued.api_key.split("_", 2)[2] not in json.dumps([i.model_dump(mode="json") for i in listed])


# -- media_url: a real HTTP server the service fetches from ---------------------------------------------------


def camera_photo() -> bytes:
    return make_jpeg(
        1200,
        900,
        pattern=3,
        exif={0x010F: "Apple", 0x0110: "iPhone 15"},
        exif_ifd={0x9003: exif_time(datetime.now(UTC))},
        gps=gps_tags(52.37312, 4.89253),
    )


class MediaServer:
    """Serves a photo, a big file, a page that is no image, a slow answer and redirects, on 127.0.0.1."""

    def __init__(self, photo: bytes, clip: bytes = b"") -> None:
        outer = self
        self.photo, self.clip = photo, clip
        self.redirect_to = ""

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/slow.jpg":
                    time.sleep(3)
                body = {
                    "/photo.jpg": outer.photo,
                    "/slow.jpg": outer.photo,
                    "/big.jpg": outer.photo + b"\0" * 300_000,
                    "/page.jpg": b"<html>not a photo</html>",
                    "/clip.mp4": outer.clip,
                }.get(self.path)
                if self.path == "/moved.jpg":
                    self.send_response(302)
                    self.send_header("Location", outer.redirect_to)
                    self.end_headers()
                    return
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # it stopped reading at its limit
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def media_server() -> Iterator[MediaServer]:
    server = MediaServer(camera_photo(), phone_clip(31, seconds=1.0, size=(320, 180)))
    yield server
    server.server.shutdown()


async def test_media_url_is_fetched_from_allowed_hosts_into_the_photo_checks(
    start_service: Callable[..., Any], media_server: MediaServer
) -> None:
    intake = await start_service(
        "report_intake",
        IntakeSettings,
        open311_media_hosts=[f"127.0.0.1:{media_server.port}"],
        open311_media_private_addresses=True,  # the photo host is this machine
        open311_media_max_seconds=1.0,
        max_photo_bytes=len(media_server.photo) + 100_000,
    )
    made = await intake.client.post(
        "/open311/v2/requests.json", data={**FORM, "media_url": media_server.url("/photo.jpg")}
    )
    assert made.status_code == 201, made.text
    async with intake.runtime.db.sessions() as session:
        photos = (await session.execute(select(Photo))).scalars().all()
    assert [p.sha256 for p in photos] == [hashlib.sha256(media_server.photo).hexdigest()]  # the original, unaltered
    assert photos[0].content_type == "image/jpeg" and photos[0].sanitised_sha256

    # Redirected to a host that is not on the list (the same machine on another port): refused, with the reason.
    media_server.redirect_to = "http://127.0.0.1:9/secret"
    refusals = [
        ("/moved.jpg", 422, "media_url_not_allowed"),
        ("/big.jpg", 413, "media_url_too_large"),
        ("/page.jpg", 415, "photo_type_not_accepted"),
        ("/missing.jpg", 422, "media_url_failed"),
        ("/slow.jpg", 422, "media_url_failed"),
    ]
    for path, status, reason in refusals:
        refused = await intake.client.post(
            "/open311/v2/requests.json", data={**FORM, "description": path, "media_url": media_server.url(path)}
        )
        assert refused.status_code == status and errors_of(refused)["reason"] == reason, (path, refused.text)
    other_port = await intake.client.post(
        "/open311/v2/requests.json", data={**FORM, "description": "elders", "media_url": "http://127.0.0.1:1/a.jpg"}
    )
    assert errors_of(other_port)["reason"] == "media_url_not_allowed"
    assert await reports_stored(intake) == 1
    leftovers = list((intake.settings.blob_dir.parent / "uploads").glob("media-url-*"))
    assert leftovers == []
    # A video at the media_url: judged by its first bytes, held to the video limits, checked like an upload.
    video = await intake.client.post(
        "/open311/v2/requests.json", data={**FORM, "description": "film", "media_url": media_server.url("/clip.mp4")}
    )
    assert video.status_code == 201, video.text
    async with intake.runtime.db.sessions() as session:
        kinds = sorted((await session.execute(select(Photo.kind))).scalars())
    assert kinds == ["photo", "video"]
    assert list((intake.settings.blob_dir.parent / "uploads").glob("media-url-*")) == []


async def test_media_url_resolving_to_a_private_address_is_refused(
    start_service: Callable[..., Any], media_server: MediaServer
) -> None:
    intake = await start_service(
        "report_intake", IntakeSettings, open311_media_hosts=["localhost", f"127.0.0.1:{media_server.port}"]
    )
    for url in (media_server.url("/photo.jpg"), f"http://localhost:{media_server.port}/photo.jpg"):
        refused = await intake.client.post("/open311/v2/requests.json", data={**FORM, "media_url": url})
        assert refused.status_code == 422 and errors_of(refused)["reason"] == "media_url_private_address", url
    assert await reports_stored(intake) == 0


# -- PDOK's Locatieserver: the production geocoder, against a local server that answers as PDOK does -----------


async def test_pdok_locatieserver_places_an_address(start_service: Callable[..., Any]) -> None:
    pdok = Locatieserver()
    try:
        intake = await start_service("report_intake", IntakeSettings, geocoder="pdok", pdok_locatieserver_url=pdok.url)
        form = {k: v for k, v in FORM.items() if k not in ("lat", "long")}
        placed = await intake.client.post(
            "/open311/v2/requests.json", data={**form, "address_string": "Coolsingel 40 Rotterdam"}
        )
        assert placed.status_code == 201, placed.text
        path, query = pdok.asked[0]
        assert path.endswith("/free") and query["q"] == ["Coolsingel 40 Rotterdam"] and query["fq"] == ["type:adres"]
        async with intake.runtime.db.sessions() as session:
            report = (await session.execute(select(Report))).scalar_one()
        assert (report.lat, report.lon) == (51.92291, 4.47933)
        missing = await intake.client.post("/open311/v2/requests.json", data={**form, "address_string": "Nergens 1"})
        assert errors_of(missing)["reason"] == "address_not_found"
        pdok.failing = True
        down = await intake.client.post("/open311/v2/requests.json", data={**form, "address_string": "Coolsingel 40"})
        assert down.status_code == 503 and errors_of(down)["reason"] == "geocoder_unavailable"
        assert down.headers["retry-after"] == "30"
    finally:
        pdok.stop()
