"""Evidence and records for real (four processes, real HTTP, real photos with EXIF): a photo's chain of custody
across the services, a legal hold that retention respects, retention that deletes exactly what its rules say
(in every service's copy and in the photo store), an evidence export that verifies offline and fails on one
changed byte, audit chains that stay verifiable across the deletions, and a citizen's rights."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from burgermelding_shared import evidence
from burgermelding_shared.service_auth import development_key
from tests.helpers import exif_time, gps_tags, make_jpeg, report_json
from tests.suite import Suite, create_dispatcher, eventually, follow, local_http, start_suite, submit

# Runs on PostgreSQL only (conftest.py, END_TO_END_DATABASES): retention, holds and audit chains as production keeps them.
pytestmark = pytest.mark.runs_on("postgresql")

# Every finished case purged at once, so that a test need not wait 30 days; the production defaults are in
# burgermelding_shared.retention.DEFAULT_RULES.
PURGE_FINISHED = json.dumps(
    [
        {
            "name": "test-finished-purged",
            "outcome": "finished",
            "action": "purge",
            "after_days": 0,
            "counted_from": "finished",
        }
    ]
)


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    running = start_suite(tmp_path_factory.mktemp("records"))
    yield running
    running.stop()


def photo(lat: float, lon: float, pattern: int) -> bytes:
    return make_jpeg(
        1600,
        1200,
        pattern=pattern,
        exif={0x010F: "Google", 0x0110: "Pixel 8"},
        exif_ifd={0x9003: exif_time(datetime.now(UTC)), 0x9011: "+00:00"},
        gps=gps_tags(lat, lon),
    )


def closed_report(suite: Suite, n: int, key: str, **extra: Any) -> tuple[dict[str, Any], bytes]:
    lat, lon = 52.0907 + 0.03 * n, 5.1214
    image = photo(lat, lon, pattern=n)
    response = submit(suite, report_json(location={"lat": lat, "lon": lon}, **extra), [image], key)
    assert response.status_code == 202, response.text
    created = response.json()
    assert follow(suite, created, "closed")["status"] == "closed"
    return created, image


def cli(suite: Suite, package: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", package, *args],
        env={**suite.env, **(env or {})},
        text=True,
        capture_output=True,
        timeout=120,
    )


def test_custody_hold_retention_export_and_the_chains(suite: Suite, tmp_path: Path) -> None:
    supervisor = {"Authorization": f"Bearer {create_dispatcher(suite, 'sara', 'supervisor')}"}
    dispatcher = {"Authorization": f"Bearer {create_dispatcher(suite, 'dirk', 'dispatcher')}"}
    bridge = suite.urls["bridge"]
    held, held_photo = closed_report(
        suite,
        1,
        "records-held-0001",
        contact={"name": "Jan Jansen", "phone": "+31612345678", "share_with_police": True},
    )
    free, _ = closed_report(suite, 2, "records-free-0001")

    # The dispatcher sees the sanitised copy, the supervisor the original: both views are in the custody.
    shown = local_http().get(f"{bridge}/v1/dispatch/reports/{held['id']}", headers=dispatcher).json()
    photo_id, sha256 = shown["photos"][0]["photo_id"], shown["photos"][0]["sha256"]
    assert (
        local_http().get(f"{bridge}/v1/dispatch/reports/{held['id']}/photos/{photo_id}", headers=dispatcher).status_code
        == 200
    )
    original = local_http().get(
        f"{bridge}/v1/dispatch/reports/{held['id']}/photos/{photo_id}?original=true", headers=supervisor
    )
    assert original.content == held_photo
    assert (
        local_http()
        .get(f"{bridge}/v1/dispatch/reports/{held['id']}/photos/{photo_id}/custody", headers=dispatcher)
        .status_code
        == 403
    )
    custody = (
        local_http()
        .get(f"{bridge}/v1/dispatch/reports/{held['id']}/photos/{photo_id}/custody", headers=supervisor)
        .json()
    )
    steps = [(e["service"], e["action"]) for e in custody["entries"]]
    assert custody["unavailable"] == []
    for step in [
        ("report-intake", "photo.received"),
        ("verification", "photo.examined"),
        ("dispatch-bridge", "photo.fetched"),
        ("dispatch-bridge", "view_photo"),
        ("dispatch-bridge", "view_photo_original"),
    ]:
        assert step in steps, steps
    received = next(e for e in custody["entries"] if e["action"] == "photo.received")
    assert received["detail"]["sha256"] == sha256 and received["detail"]["size_bytes"] == len(held_photo)
    viewers = {e["actor"] for e in custody["entries"] if e["action"].startswith("view_photo")}
    assert viewers == {"sara", "dirk"}

    # A legal hold on the held report's incident, then an export of it.
    incident_id = shown["incident_id"]
    hold = local_http().post(
        f"{bridge}/v1/dispatch/incidents/{incident_id}/legal-hold",
        headers=supervisor,
        json={"reason": "Zaak 2026-0412"},
    )
    assert hold.status_code == 200, hold.text
    assert hold.json()["reports_held"] == [held["id"]]
    assert (
        local_http()
        .post(f"{bridge}/v1/dispatch/incidents/{incident_id}/legal-hold", headers=dispatcher, json={"reason": "x"})
        .status_code
        == 403
    )
    export = local_http().post(
        f"{bridge}/v1/dispatch/incidents/{incident_id}/evidence-export", headers=supervisor, timeout=60
    )
    assert export.status_code == 200, export.text
    package = tmp_path / "package.zip"
    package.write_bytes(export.content)
    bridge_key = development_key("dispatch-bridge")
    trusted = {bridge_key.kid: bridge_key.private_key.public_key()}
    check = evidence.verify_package(package, trusted)
    assert check.ok, check.summary()
    with zipfile.ZipFile(package) as archive:
        names = archive.namelist()
        originals = [n for n in names if "/originals/" in n]
        assert len(originals) == 1 and archive.read(originals[0]) == held_photo
        assert any("/sanitised/" in n for n in names) and any(n.endswith("verification.json") for n in names)
        assert any(n.endswith("/audit/report-intake.jsonl") for n in names)
        members = {n: archive.read(n) for n in names}
    changed = bytearray(members[originals[0]])
    changed[len(changed) // 2] ^= 0x01
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(tampered, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, bytes(changed) if name == originals[0] else data)
    result = evidence.verify_package(tampered, trusted)
    assert [(f.name, f.problem) for f in result.findings] == [(originals[0], "hash_mismatch")]
    offline = subprocess.run(
        [
            sys.executable,
            "-m",
            "burgermelding_shared.evidence",
            "verify",
            str(tampered),
            "--public-key",
            json.dumps(bridge_key.public_jwk()),
        ],
        capture_output=True,
        text=True,
    )
    assert offline.returncode == 1 and originals[0] in offline.stdout
    log = local_http().get(f"{bridge}/v1/dispatch/audit", headers=supervisor).json()
    assert any(e["action"] == "evidence_export" and e["target_id"] == incident_id for e in log)

    # Retention: every finished case purged, except the one under hold.
    blob = Path(suite.env["BM_INTAKE_BLOB_DIR"])
    free_photos = local_http().get(f"{bridge}/v1/dispatch/reports/{free['id']}", headers=supervisor).json()["photos"]
    run = cli(suite, "report_intake", "retention", env={"BM_INTAKE_RETENTION_RULES": PURGE_FINISHED})
    assert run.returncode == 0, run.stderr
    outcome = json.loads(run.stdout)
    assert [r["reference"] for r in outcome["reports"]] == [free["reference"]]
    intake_view = local_http().get(
        f"{suite.urls['intake']}{free['status_url']}", headers={"Authorization": f"Bearer {free['access_token']}"}
    )
    assert intake_view.status_code == 404
    assert eventually(
        lambda: local_http().get(f"{bridge}/v1/dispatch/reports/{free['id']}", headers=supervisor).status_code == 404
    )
    assert not any(blob.rglob(free_photos[0]["sha256"]))  # the original is gone from the photo store
    kept = local_http().get(f"{bridge}/v1/dispatch/reports/{held['id']}", headers=supervisor).json()
    assert kept["contact"]["name"] == "Jan Jansen" and kept["photos"]  # the held report is untouched
    deletions = eventually(
        lambda: local_http().get(f"{bridge}/v1/dispatch/deletions?report_id={free['id']}", headers=supervisor).json()
    )
    assert deletions[0]["rule"] == "test-finished-purged" and deletions[0]["action"] == "purge"
    assert "Twee mannen" not in json.dumps(deletions)  # the deletion log keeps nothing personal

    # Lifted, the hold no longer protects it.
    assert (
        local_http()
        .post(f"{bridge}/v1/dispatch/incidents/{incident_id}/legal-hold/lift", headers=supervisor)
        .json()["active"]
        is False
    )
    again = json.loads(
        cli(suite, "report_intake", "retention", env={"BM_INTAKE_RETENTION_RULES": PURGE_FINISHED}).stdout
    )
    assert [r["reference"] for r in again["reports"]] == [held["reference"]]
    assert not any(blob.rglob(sha256))
    # Its custody outlives it: from arrival to deletion, under which rule.
    assert eventually(
        lambda: local_http().get(f"{bridge}/v1/dispatch/reports/{held['id']}", headers=supervisor).status_code == 404
    )
    after = (
        local_http()
        .get(f"{bridge}/v1/dispatch/reports/{held['id']}/photos/{photo_id}/custody", headers=supervisor)
        .json()
    )
    assert after["report_deleted"] is True
    actions = [(e["service"], e["action"]) for e in after["entries"]]
    assert ("report-intake", "photo.received") in actions and ("report-intake", "photo.deleted") in actions
    assert ("dispatch-bridge", "photo.exported") in actions

    # Every chain is still whole after the deletions (a deletion is an entry, never a gap).
    for package_name in ("report_intake", "verification", "dispatch_bridge"):
        assert cli(suite, package_name, "audit-checkpoint").returncode == 0
        verified = cli(suite, package_name, "audit-verify")
        assert verified.returncode == 0 and "intact" in verified.stdout, verified.stdout + verified.stderr


def test_a_citizen_sees_what_is_stored_and_removes_it(suite: Suite) -> None:
    lat, lon = 52.25, 5.30
    response = submit(
        suite,
        report_json(
            location={"lat": lat, "lon": lon},
            description="Man met rode jas",
            contact={"email": "jan@example.org", "share_with_police": True},
        ),
        [photo(lat, lon, 7)],
        "records-citizen-0001",
    )
    created = response.json()
    token = {"Authorization": f"Bearer {created['access_token']}"}
    intake, bridge = suite.urls["intake"], suite.urls["bridge"]
    data = local_http().get(f"{intake}{created['status_url']}/data", headers=token).json()
    assert data["contact"]["email"] == "jan@example.org" and data["report"]["description"] == "Man met rode jas"
    assert data["photos"][0]["sha256"] and data["legal_hold"] is False
    assert {step["action"] for step in data["retention"]} >= {"remove_contact", "anonymise", "purge"}
    assert (
        local_http().get(f"{intake}{created['status_url']}/data").status_code == 404
    )  # the token opens it, nothing else

    supervisor = {"Authorization": f"Bearer {create_dispatcher(suite, 'ria', 'supervisor')}"}
    assert eventually(
        lambda: (
            local_http().get(f"{bridge}/v1/dispatch/reports/{created['id']}", headers=supervisor).json().get("contact")
        )
    )
    removed = local_http().delete(f"{intake}{created['status_url']}/contact", headers=token)
    assert removed.json() == {"removed": True}
    assert local_http().get(f"{intake}{created['status_url']}/data", headers=token).json()["contact"] is None
    assert eventually(
        lambda: (
            local_http().get(f"{bridge}/v1/dispatch/reports/{created['id']}", headers=supervisor).json()["contact"]
            is None
        )
    )

    withdrawn = local_http().post(f"{intake}{created['status_url']}/withdraw", headers=token).json()
    assert withdrawn == {"status": "withdrawn", "personal_data": "removed"}
    after = local_http().get(f"{intake}{created['status_url']}/data", headers=token).json()
    assert after["report"]["description"] == "" and after["photos"] == [] and after["anonymised_at"]
    assert eventually(
        lambda: (
            local_http().get(f"{bridge}/v1/dispatch/reports/{created['id']}", headers=supervisor).json()["description"]
            == ""
        )
    )
