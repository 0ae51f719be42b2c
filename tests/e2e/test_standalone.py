"""Every service installs and starts alone, as its Dockerfile installs it, in production mode with real secrets.

The rest of the suite runs all four services from the workspace's one environment, which holds every service's
dependencies and so cannot notice a dependency that only another service declares (the bridge's login form once
failed at import this way: python-multipart came with report-intake)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_happy_path import camera_photo
from tests.helpers import report_json
from tests.s3 import S3Server, start_s3_server
from tests.standalone import standalone_python
from tests.suite import (
    SERVICES,
    Suite,
    follow,
    local_http,
    meldkamer_incidents,
    production_secrets,
    start_suite,
    submit,
)

# Runs on PostgreSQL only (conftest.py, END_TO_END_DATABASES): each service installed alone in production mode.
pytestmark = pytest.mark.runs_on("postgresql")


@pytest.fixture(scope="module")
def pythons() -> dict[str, str]:
    return {name: standalone_python(name) for name in SERVICES}


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    server = start_s3_server()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory, pythons: dict[str, str], s3: S3Server) -> Iterator[Suite]:
    """Production mode, the photos in an S3 bucket, and each service a photo folder of its own that must stay
    empty: a service that read another's files from disk would find nothing there."""
    folder = tmp_path_factory.mktemp("standalone")
    bucket = s3.new_bucket()
    env = production_secrets()
    for name, (_package, prefix) in SERVICES.items():
        env.update({**s3.env(prefix, bucket), f"{prefix}BLOB_DIR": str(folder / f"{name}-blobs")})
    running = start_suite(folder, env, pythons)
    running.env["TEST_S3_BUCKET"] = bucket
    yield running
    running.stop()


def test_a_service_environment_holds_its_own_package_and_no_other_service(pythons: dict[str, str]) -> None:
    for name, python in pythons.items():
        own = SERVICES[name][0]
        others = [package for other, (package, _prefix) in SERVICES.items() if other != name]
        probe = (
            f"import importlib.util, {own}.main\nprint(','.join(p for p in {others!r} if importlib.util.find_spec(p)))"
        )
        done = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{name} does not import on its own:\n{done.stderr}"
        assert done.stdout.strip() == "", f"{name}'s environment also holds {done.stdout.strip()}"


def test_each_service_runs_alone_in_production_mode(suite: Suite, s3: S3Server) -> None:
    for name, url in suite.urls.items():
        assert local_http().get(f"{url}/readyz", timeout=10).json() == {"status": "ready", "shared_state": "memory"}, (
            name
        )
    # Production mode is what the services run in (and so they run on these secrets, not the placeholders).
    assert all(suite.env[f"{prefix}ENVIRONMENT"] == "production" for _package, prefix in SERVICES.values())

    # A report end to end, so that what is imported only when used (the multipart parser, the image libraries,
    # the duplicate index) is used once in each environment.
    body = report_json(description="Standalone: inbraak bij de buren")
    response = submit(suite, body, [camera_photo(52.0907, 5.1214, pattern=7)], "standalone-0001")
    assert response.status_code == 202, response.text
    view = follow(suite, response.json(), "closed")
    assert [item["event"] for item in view["timeline"]][:3] == ["received", "verified", "forwarded"], view
    # The photo went through the bucket only: verification read it there, the meldkamer fetched it through the
    # bridge (which read it there) and found its SHA-256 right, and no service's own folder holds a photo.
    incident = next(
        i for i in meldkamer_incidents(suite.urls["meldkamer"], suite.env) if i["description"] == body["description"]
    )
    assert incident["photos"] == "verified", incident
    listed = s3.client().list_objects_v2(Bucket=suite.env["TEST_S3_BUCKET"])  # type: ignore[attr-defined]
    assert len(listed.get("Contents", [])) == 2  # the original and its display copy
    for name, (_package, prefix) in SERVICES.items():
        folder = Path(suite.env[f"{prefix}BLOB_DIR"])
        assert not folder.exists() or not [p for p in folder.rglob("*") if p.is_file()], name
    # Intake took the upload into its own scratch folder, and gave it to the bucket: nothing is left there.
    scratch = Path(suite.env["BM_INTAKE_BLOB_DIR"]).parent / "uploads"
    assert scratch.is_dir() and not [p for p in scratch.rglob("*") if p.is_file()]

    # The bridge's dispatcher login is a form: the dependency that once was missing.
    refused = local_http().post(
        f"{suite.urls['bridge']}/v1/auth/token", data={"username": "nobody", "password": "x"}, timeout=10
    )
    assert refused.status_code == 401, refused.text
