"""Every service installs and starts alone, as its Dockerfile installs it, in production mode with real secrets.

The rest of the suite runs all four services from the workspace's one environment, which holds every service's
dependencies and so cannot notice a dependency that only another service declares (the bridge's login form once
failed at import this way: python-multipart came with report-intake)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.test_happy_path import camera_photo
from tests.helpers import report_json
from tests.standalone import standalone_python
from tests.suite import SERVICES, Suite, follow, production_secrets, start_suite, submit


@pytest.fixture(scope="module")
def pythons() -> dict[str, str]:
    return {name: standalone_python(name) for name in SERVICES}


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory, pythons: dict[str, str]) -> Iterator[Suite]:
    running = start_suite(tmp_path_factory.mktemp("standalone"), production_secrets(), pythons)
    yield running
    running.stop()


def test_a_service_environment_holds_its_own_package_and_no_other_service(pythons: dict[str, str]) -> None:
    for name, python in pythons.items():
        own = SERVICES[name][0]
        others = [package for other, (package, _prefix) in SERVICES.items() if other != name]
        probe = (f"import importlib.util, {own}.main\n"
                 f"print(','.join(p for p in {others!r} if importlib.util.find_spec(p)))")
        done = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{name} does not import on its own:\n{done.stderr}"
        assert done.stdout.strip() == "", f"{name}'s environment also holds {done.stdout.strip()}"


def test_each_service_runs_alone_in_production_mode(suite: Suite) -> None:
    for name, url in suite.urls.items():
        assert httpx.get(f"{url}/readyz", timeout=10).json() == {"status": "ready"}, name
    # Production mode is what the services run in (and so they run on these secrets, not the placeholders).
    assert all(suite.env[f"{prefix}ENVIRONMENT"] == "production" for _package, prefix in SERVICES.values())

    # A report end to end, so that what is imported only when used (the multipart parser, the image libraries,
    # the duplicate index) is used once in each environment.
    body = report_json(description="Standalone: inbraak bij de buren")
    response = submit(suite, body, [camera_photo(52.0907, 5.1214, pattern=7)], "standalone-0001")
    assert response.status_code == 202, response.text
    view = follow(suite, response.json(), "closed")
    assert [item["event"] for item in view["timeline"]][:3] == ["received", "verified", "forwarded"], view

    # The bridge's dispatcher login is a form: the dependency that once was missing.
    refused = httpx.post(f"{suite.urls['bridge']}/v1/auth/token", data={"username": "nobody", "password": "x"},
                         timeout=10)
    assert refused.status_code == 401, refused.text
