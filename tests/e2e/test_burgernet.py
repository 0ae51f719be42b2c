"""Burgernet for real (four processes, real HTTP, real photos with EXIF): an action over Utrecht reaches phones
inside and outside its area (the app's side simulated here: it decides for itself whether it is inside), the
sightings from inside reach the simulated meldkamer as urgent updates within seconds, answers after closing are
refused, the closing message always comes (also by the deadline), the CAP alert validates against the OASIS
CAP 1.2 schema, and nothing about a phone's location is stored. A witness call about a window in the past
checks each upload's own capture time and place."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import capvalidator
import httpx
import pytest
from PIL import Image

from burgermelding_shared.burgernet import Area
from tests.databases import everything_stored, run_sql
from tests.helpers import phone_photo, register_installation_at, report_json
from tests.suite import Suite, create_dispatcher, eventually, local_http, meldkamer_incidents, start_suite, submit

# Runs on PostgreSQL only (conftest.py, END_TO_END_DATABASES): Burgernet actions as production runs them.
pytestmark = pytest.mark.runs_on("postgresql")

# Around Utrecht's centre (lat, lon); the phone outside is in Amsterdam.
UTRECHT = [(52.0950, 5.1050), (52.0950, 5.1350), (52.0830, 5.1350), (52.0830, 5.1050)]
INSIDE = (52.0903, 5.1187)
OUTSIDE = (52.37317, 4.89263)
# The meldkamer keeps incidents open; at 1 s it starts an action of its own on each (the script's Burgernet step).
SCRIPT = [
    ["Active", 0.3],
    ["ResourcesAssigned", 0.8],
    ["burgernet:person:800:30:Man in grijze hoodie", 1.0],
    ["Closed", 900.0],
]


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    running = start_suite(
        tmp_path_factory.mktemp("burgernet"),
        {
            "BM_INTAKE_INSTALLATION_POW_BITS": "12",
            "BM_MELDKAMER_SCRIPT": json.dumps(SCRIPT),
            "BM_BRIDGE_BURGERNET_DEADLINE_POLL_SECONDS": "0.3",
            "BM_INTAKE_BURGERNET_FEED_REFRESH_SECONDS": "0.5",
        },
    )
    yield running
    running.stop()


class App:
    """The Burgernet app on one phone: registered once, it polls the feed with its ETag, confirms every action
    it gets, and decides itself whether the phone is inside an action's area. Its place never leaves it."""

    def __init__(self, intake: str, place: tuple[float, float]) -> None:
        self.intake, self.place, self.etag, self.feed = intake, place, None, {"actions": []}
        installation = register_installation_at(intake)
        self.credential, self.installation_id = installation["credential"], installation["installation_id"]

    def poll(self) -> int:
        headers = {"If-None-Match": self.etag} if self.etag else {}
        response = local_http().get(f"{self.intake}/v1/burgernet/actions", headers=headers)
        assert response.status_code in (200, 304), response.text
        assert "max-age=" in response.headers["cache-control"] and response.headers["etag"]
        if response.status_code == 200:
            self.feed, self.etag = response.json(), response.headers["etag"]
            ids = [a["action_id"] for a in self.feed["actions"] if a["status"] == "open"]
            if ids:  # every action, inside the area or not: the receipt says nothing of where the phone is
                receipt = local_http().post(
                    f"{self.intake}/v1/burgernet/receipts",
                    json={"action_ids": ids},
                    headers={"Installation-Credential": self.credential},
                )
                assert receipt.status_code == 200, receipt.text
        return response.status_code

    def actions_here(self) -> list[dict[str, Any]]:
        return [
            a
            for a in self.feed["actions"]
            if a["status"] == "open" and Area.model_validate(a["area"]).contains(*self.place)
        ]

    def answer(
        self,
        action: dict[str, Any],
        description: str,
        photos: list[bytes],
        key: str,
        seen_at: datetime | None = None,
        place: tuple[float, float] | None = None,
    ) -> httpx.Response:
        lat, lon = place or self.place
        sighting = {
            "description": description,
            "location": {"lat": lat, "lon": lon, "accuracy_m": 10},
            "seen_at": (seen_at or datetime.now(UTC)).isoformat(),
        }
        files: list[Any] = [("sighting", (None, json.dumps(sighting), "application/json"))]
        files += [("photos", (f"p{i}.jpg", data, "image/jpeg")) for i, data in enumerate(photos)]
        return local_http().post(
            action["links"]["answer"],
            files=files,
            timeout=30,
            headers={"Idempotency-Key": key, "Installation-Credential": self.credential},
        )


def incident_of_report(suite: Suite, token: str, report_id: str) -> str:
    def find() -> str | None:
        view = local_http().get(
            f"{suite.urls['bridge']}/v1/dispatch/reports/{report_id}", headers={"Authorization": f"Bearer {token}"}
        )
        return view.json().get("incident_id") if view.status_code == 200 else None

    incident_id = eventually(find)
    assert incident_id, "the report never reached an incident"
    return str(incident_id)


def meldkamer_updates(suite: Suite, request_id: str) -> list[dict[str, Any]]:
    for incident in meldkamer_incidents(suite.urls["meldkamer"], suite.env):
        if incident["requestId"] == request_id:
            return list(incident["updates"])
    return []


def cap_is_valid(xml: bytes) -> None:
    result = capvalidator.check_schema(xml)
    assert result.passed, f"{result.message}\n{xml.decode()}"


def test_an_action_over_utrecht(suite: Suite) -> None:
    intake, bridge = suite.urls["intake"], suite.urls["bridge"]
    token = create_dispatcher(suite, "bente", "dispatcher")
    supervisor = create_dispatcher(suite, "sanne", "supervisor")
    auth = {"Authorization": f"Bearer {token}"}
    first = submit(
        suite,
        report_json(
            category="robbery",
            in_progress=True,
            location={"lat": 52.0907, "lon": 5.1214},
            description="Overval op de juwelier, dader rent weg",
        ),
        [],
        "bn-first-0001",
    )
    assert first.status_code == 202, first.text
    incident_id = incident_of_report(suite, token, first.json()["id"])

    # The photo of the man sought, from a phone with its place in EXIF: only a copy without metadata is published.
    upload = local_http().post(
        f"{bridge}/v1/dispatch/burgernet/photos",
        headers={**auth, "Content-Type": "image/jpeg"},
        content=phone_photo(7, 52.1, 5.1),
    )
    assert upload.status_code == 201, upload.text
    started = local_http().post(
        f"{bridge}/v1/dispatch/burgernet/actions",
        headers=auth,
        json={
            "incident_id": incident_id,
            "looking_for": "person",
            "headline_nl": "Gezocht: man, grijze hoodie",
            "description_nl": "Man van ongeveer 25, grijze hoodie, rende richting Vredenburg.",
            "area": {"polygon": UTRECHT, "description": "Utrecht, Binnenstad"},
            "duration_minutes": 30,
            "photo_sha256": upload.json()["sha256"],
        },
    )
    assert started.status_code == 201, started.text
    action_id = started.json()["action_id"]

    inside, outside = App(intake, INSIDE), App(intake, OUTSIDE)
    assert eventually(lambda: inside.poll() == 200 and any(a["action_id"] == action_id for a in inside.actions_here()))
    assert eventually(lambda: inside.poll() == 304)  # an unchanged feed costs no body
    outside.poll()
    assert any(a["action_id"] == action_id for a in outside.feed["actions"])  # every phone gets every action...
    assert not any(a["action_id"] == action_id for a in outside.actions_here())  # ...and decides it is not for it
    action = next(a for a in inside.actions_here() if a["action_id"] == action_id)
    published = local_http().get(action["links"]["photo"])
    assert published.status_code == 200 and not Image.open(io.BytesIO(published.content)).getexif()

    cap = local_http().get(action["links"]["cap"])
    assert cap.headers["content-type"].startswith("application/cap+xml")
    cap_is_valid(cap.content)
    assert b"<msgType>Alert</msgType>" in cap.content and b"<polygon>" in cap.content

    # The meldkamer's script started an action of its own on the same incident, around its place.
    by_script = eventually(
        lambda: [
            a
            for a in local_http().get(f"{bridge}/v1/dispatch/burgernet/actions", headers=auth).json()
            if a["started_by"] == "meldkamer" and a["incident_id"] == incident_id
        ]
    )
    assert by_script and by_script[0]["area"]["circle"]["radius_m"] == 800

    sent_at = time.monotonic()
    answer = inside.answer(
        action, "Ik zie hem nu bij de ingang van Hoog Catharijne", [phone_photo(8, *INSIDE)], "bn-sighting-0001"
    )
    assert answer.status_code == 202, answer.text
    sighting = answer.json()

    def urgent_sighting() -> list[dict[str, Any]]:
        return [u for u in meldkamer_updates(suite, incident_id) if u["kind"] == "sighting" and u["urgent"]]

    arrived = eventually(urgent_sighting, limit=20)
    seconds = time.monotonic() - sent_at
    assert arrived and "Hoog Catharijne" in arrived[0]["notes"] and arrived[0]["media"] == 1
    print(f"sighting at the meldkamer {seconds:.2f} s after the citizen's POST")
    assert seconds < 20

    # The figures: two installations fetched it (inside and outside alike), one answered.
    shown = local_http().get(f"{bridge}/v1/dispatch/burgernet/actions/{action_id}", headers=auth).json()
    assert shown["figures"]["fetched_by_installations"] == 2
    assert shown["figures"]["answers"] == 1 and shown["figures"]["seconds_to_first_answer"] is not None
    assert [a["report_id"] for a in shown["answers"]] == [sighting["id"]]

    closed = local_http().post(
        f"{bridge}/v1/dispatch/burgernet/actions/{action_id}/close", headers=auth, json={"outcome": "arrested"}
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["closing_nl"].startswith("Er is iemand aangehouden")

    def ended_in_feed() -> dict[str, Any] | None:
        inside.poll()
        return next(
            (a for a in inside.feed["actions"] if a["action_id"] == action_id and a["status"] == "closed"), None
        )

    ended = eventually(ended_in_feed)
    assert ended and ended["outcome"] == "arrested" and ended["closing_en"]
    cap = local_http().get(action["links"]["cap"]).content
    cap_is_valid(cap)
    assert b"<msgType>Update</msgType>" in cap and b"<references>" in cap and b"AllClear" in cap

    late = inside.answer(action, "Nog een keer gezien", [], "bn-late-0001")
    assert late.status_code == 409 and late.json()["error"] == "burgernet_action_closed", late.text
    assert late.json()["detail_nl"]
    files = [("photos", ("late.jpg", phone_photo(9, *INSIDE), "image/jpeg"))]
    late_photo = local_http().post(
        f"{intake}/v1/reports/{sighting['id']}/photos",
        files=files,
        headers={
            "Authorization": f"Bearer {sighting['access_token']}",
            "Idempotency-Key": "bn-late-photo-01",
            "Installation-Credential": inside.credential,
        },
    )
    assert late_photo.status_code == 409 and late_photo.json()["error"] == "burgernet_action_closed"

    # The citizen who answered sees what became of it.
    def told() -> list[dict[str, Any]]:
        view = (
            local_http()
            .get(
                f"{intake}/v1/reports/{sighting['id']}",
                headers={"Authorization": f"Bearer {sighting['access_token']}", "Accept-Language": "nl"},
            )
            .json()
        )
        return [e for e in view["timeline"] if e["event"] == "appeal_closed"]

    closing = eventually(told)
    assert closing and "aangehouden" in closing[0]["text"]
    assert eventually(
        lambda: [
            u
            for u in meldkamer_updates(suite, incident_id)
            if u["kind"] == "burgernet" and "closed (arrested)" in (u["notes"] or "")
        ]
    )

    # Forgotten by its dispatcher: at its closing time the deadline closes it with the standard text.
    forgotten = (
        local_http()
        .post(
            f"{bridge}/v1/dispatch/burgernet/actions",
            headers=auth,
            json={
                "incident_id": incident_id,
                "looking_for": "vehicle",
                "headline_nl": "Gezocht: witte bestelbus",
                "description_nl": "Witte bestelbus, kenteken begint met V",
                "area": {"circle": {"lat": 52.09, "lon": 5.12, "radius_m": 2000}},
            },
        )
        .json()
    )
    run_sql(
        suite.env["BM_BRIDGE_DATABASE_URL"],
        "UPDATE burgernet_actions SET closes_at = started_at WHERE id = :id",
        {"id": forgotten["action_id"]},
    )

    def expired() -> dict[str, Any] | None:
        found = (
            local_http().get(f"{bridge}/v1/dispatch/burgernet/actions/{forgotten['action_id']}", headers=auth).json()
        )
        return found if found["status"] == "closed" else None

    done = eventually(expired)
    assert done and done["outcome"] == "expired" and done["closing_nl"].startswith("Deze Burgernet-actie is beëindigd")

    # A supervisor cancels the meldkamer's own action: a CAP Cancel, with a closing message too.
    assert (
        local_http()
        .post(
            f"{bridge}/v1/dispatch/burgernet/actions/{by_script[0]['action_id']}/cancel",
            headers=auth,
            json={"reason": "dubbel"},
        )
        .status_code
        == 403
    )
    cancelled = local_http().post(
        f"{bridge}/v1/dispatch/burgernet/actions/{by_script[0]['action_id']}/cancel",
        headers={"Authorization": f"Bearer {supervisor}"},
        json={"reason": "dubbel"},
    )
    assert cancelled.status_code == 200 and cancelled.json()["closing_nl"]
    cap_cancel = eventually(
        lambda: (
            (c := local_http().get(f"{intake}/v1/burgernet/actions/{by_script[0]['action_id']}/cap").content)
            and b"<msgType>Cancel</msgType>" in c
            and c
        )
    )
    assert cap_cancel
    cap_is_valid(cap_cancel)

    # Every step is audited.
    audit = (
        local_http()
        .get(f"{bridge}/v1/dispatch/audit", headers={"Authorization": f"Bearer {supervisor}"}, params={"limit": 500})
        .json()
    )
    steps = {e["action"] for e in audit if e["target_type"] == "burgernet"}
    assert {"burgernet.started", "burgernet.closed", "burgernet.cancelled", "burgernet.viewed"} <= steps

    # Nothing about a phone's location is stored: not the outside phone's place anywhere, not which installation
    # received what, in any service's database or log. (The inside phone's sighting holds the place the citizen
    # chose to send: where they saw the man.)
    for name, prefix in (("intake", "BM_INTAKE_"), ("verification", "BM_VERIFICATION_"), ("bridge", "BM_BRIDGE_")):
        rows = everything_stored(suite.env[f"{prefix}DATABASE_URL"]).splitlines()
        # (The registration itself is kept, as for every installation: an id and a hash, nothing of the phone.)
        stored = "\n".join(r for r in rows if not r.startswith("installations: ")) + suite.log(name)
        for coordinate in (f"{OUTSIDE[0]}", f"{OUTSIDE[1]}"):
            assert coordinate not in stored, f"{name} keeps {coordinate}"
        assert outside.installation_id not in stored, f"{name} keeps which installation received what"


def photo_at(seed: int, place: tuple[float, float], taken: datetime) -> bytes:
    return phone_photo(seed, *place, when=taken)


def test_a_witness_call_about_last_saturday(suite: Suite) -> None:
    intake, bridge = suite.urls["intake"], suite.urls["bridge"]
    auth = {"Authorization": f"Bearer {create_dispatcher(suite, 'wim', 'dispatcher')}"}
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    saturday = today - timedelta(days=(today.weekday() - 5) % 7 or 7)
    window_start, window_end = saturday.replace(hour=21), saturday.replace(hour=22)  # 22:00-23:00 Dutch time
    street = (52.0906, 5.1160)  # the Oudegracht
    past = submit(
        suite,
        report_json(
            category="violence",
            description="Mishandeling aan de Oudegracht",
            location={"lat": street[0], "lon": street[1]},
            observed_at=(window_start + timedelta(minutes=30)).isoformat(),
        ),
        [photo_at(20, street, window_start + timedelta(minutes=29))],
        "bn-past-0001",
    )
    assert past.status_code == 202, past.text
    incident_id = incident_of_report(suite, auth["Authorization"][7:], past.json()["id"])

    call = local_http().post(
        f"{bridge}/v1/dispatch/burgernet/actions",
        headers=auth,
        json={
            "kind": "witness_call",
            "incident_id": incident_id,
            "looking_for": "witnesses",
            "headline_nl": "Getuigen gezocht: mishandeling Oudegracht",
            "description_nl": "Was u zaterdag tussen 22.00 en 23.00 uur op de Oudegracht?",
            "area": {"circle": {"lat": street[0], "lon": street[1], "radius_m": 300}},
            "window_start": window_start.isoformat(),
            "window_end": window_end.isoformat(),
        },
    )
    assert call.status_code == 201, call.text
    call_id = call.json()["action_id"]
    future = local_http().post(
        f"{bridge}/v1/dispatch/burgernet/actions",
        headers=auth,
        json={
            **{
                k: v
                for k, v in call.json().items()
                if k in ("kind", "incident_id", "looking_for", "headline_nl", "description_nl", "area")
            },
            "window_start": window_start.isoformat(),
            "window_end": (today + timedelta(days=2)).isoformat(),
        },
    )
    assert future.status_code == 422 and future.json()["error"] == "window_not_past"

    witness = App(intake, street)
    assert eventually(lambda: witness.poll() and any(a["action_id"] == call_id for a in witness.actions_here()))
    action = next(a for a in witness.actions_here() if a["action_id"] == call_id)
    in_window = witness.answer(
        action,
        "Ik zag twee mannen ruzie maken",
        [photo_at(21, street, window_start + timedelta(minutes=35))],
        "bn-witness-0001",
        seen_at=window_start + timedelta(minutes=35),
    )
    a_day_early = witness.answer(
        action,
        "Foto van die avond, denk ik",
        [photo_at(22, street, window_start - timedelta(days=1))],
        "bn-witness-0002",
        seen_at=window_start + timedelta(minutes=40),
    )
    assert in_window.status_code == 202 and a_day_early.status_code == 202, (in_window.text, a_day_early.text)

    def verified(report_id: str) -> dict[str, Any] | None:
        view = local_http().get(f"{bridge}/v1/dispatch/reports/{report_id}", headers=auth).json()
        return view if view.get("state") == "forwarded" and view.get("verification") else None

    matching, not_matching = (
        eventually(lambda: verified(in_window.json()["id"])),
        eventually(lambda: verified(a_day_early.json()["id"])),
    )
    assert matching and not_matching
    assert matching["verification"]["appeal_match"] == "matching"
    assert {"appeal_photo_time_matches", "appeal_photo_place_matches"} <= set(matching["verification"]["reasons"])
    assert not_matching["verification"]["appeal_match"] == "not_matching"
    reasons = {r["code"]: r for r in not_matching["verification_detail"]["reasons"]}
    assert "1 day(s) before" in reasons["appeal_photo_time_outside"]["detail_en"]
    assert "buiten de gevraagde periode" in reasons["appeal_photo_time_outside"]["detail_nl"]
    assert matching["burgernet_action_id"] == call_id and matching["incident_id"] == incident_id

    # Both reach the investigation's incident as ordinary updates, with what verification found.
    def accounts() -> list[dict[str, Any]]:
        return [u for u in meldkamer_updates(suite, incident_id) if u["kind"] == "sighting"]

    arrived = eventually(lambda: len(accounts()) >= 2 and accounts())
    assert arrived and not any(u["urgent"] for u in arrived)
    assert any("not_matching" in (u["notes"] or "") for u in arrived)

    closed = local_http().post(
        f"{bridge}/v1/dispatch/burgernet/actions/{call_id}/close",
        headers=auth,
        json={"outcome": "called_off", "message_nl": "Dank voor alle beelden."},
    )
    assert closed.status_code == 200

    def ended() -> bool:
        witness.poll()
        return any(a["action_id"] == call_id and a["status"] == "closed" for a in witness.feed["actions"])

    assert eventually(ended)
    late = witness.answer(action, "Nog iets", [photo_at(23, street, window_start)], "bn-witness-late-01")
    assert late.status_code == 409 and late.json()["error"] == "burgernet_action_closed"
