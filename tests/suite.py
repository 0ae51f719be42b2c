"""Starts the whole suite as real uvicorn processes on free ports: for end-to-end tests and benchmarks."""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from burgermelding_shared.service_auth import ServiceKey, development_key, load_service_key, new_key
from tests.databases import create_database, drop_database
from tests.helpers import report_parts

SERVICES = {  # name: (package, settings prefix)
    "intake": ("report_intake", "BM_INTAKE_"),
    "verification": ("verification", "BM_VERIFICATION_"),
    "bridge": ("dispatch_bridge", "BM_BRIDGE_"),
    "meldkamer": ("meldkamer_sim", "BM_MELDKAMER_"),
}
# The simulated dispatcher's script for tests: quick, but with the incident open long enough (8 s) for a test that
# still has to act on an open report while the suite's tests run side by side (pytest-xdist) on a busy machine.
FAST_SCRIPT = [["Active", 0.3], ["ResourcesAssigned", 0.8], ["ask:Welke kleur had de auto?", 1.0], ["Closed", 8.0]]


def die_with_parent() -> None:
    """Runs in the child before exec: if the test process dies (killed, timed out), the service dies too,
    instead of living on and eating the machine. Linux only (prctl PR_SET_PDEATHSIG)."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


def stop_process(process: subprocess.Popen[bytes], grace_seconds: float = 10) -> None:
    """Ask a helper process (nginx, an S3 server) to stop, and make it stop if it does not."""
    process.terminate()
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace_seconds)
    if process.poll() is None:
        process.kill()


# Ports for the services tests start: below the kernel's ephemeral range (32768 and up), so that no outgoing
# connection takes a port between our check and the service's bind, and a range of its own for each pytest-xdist
# worker, so that two workers never hand out the same port. Each process starts at a random place in its range
# (another test run on this machine), and every port is checked free before it is handed out.
PORTS_PER_PROCESS = 2500
_next_port: list[int] = []


def port_range() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    slot = int(worker.removeprefix("gw")) % 8 + 1 if worker.startswith("gw") else 0
    start = 10000 + slot * PORTS_PER_PROCESS  # 10000-32499: main 10000, gw0 12500, gw1 15000, ...
    return range(start, start + PORTS_PER_PROCESS)


def free_port() -> int:
    ports = port_range()
    if not _next_port:
        _next_port.append(secrets.randbelow(len(ports)))
    for _ in range(len(ports)):
        port = ports[_next_port[0] % len(ports)]
        _next_port[0] += 1
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports}")


@dataclass
class Suite:
    folder: Path
    urls: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    databases: list[str | None] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    # Each service's interpreter: this one (the workspace's environment), or one of its own (tests.standalone).
    pythons: dict[str, str] = field(default_factory=dict)

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def start_service(self, name: str) -> None:
        self.launch_service(name)
        wait_ready(self.urls[name], self.processes[name])

    def launch_service(self, name: str) -> None:
        """Start a service's process without waiting for it to be ready."""
        package, _ = SERVICES[name]
        python = self.pythons.get(name, sys.executable)
        with (self.folder / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                [python, "-m", package, "serve"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )

    def kill_service(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        process.wait(timeout=30)

    def stop(self) -> None:
        for name in list(self.processes):
            self.kill_service(name, signal.SIGTERM)
        for database in self.databases:
            drop_database(database)


_clients = threading.local()


def local_http() -> httpx.Client:
    """This thread's HTTP client for talking to the services. `httpx.get(...)` makes a client for each call,
    and a client loads the CA bundle: about 25 ms of CPU, which a poll ten times a second, in every waiting test,
    paid on each try. One per thread, as the phones of the load tests are threads. A connection to a process a
    test killed is seen closed and not used again."""
    client: httpx.Client | None = getattr(_clients, "client", None)
    if client is None:
        client = _clients.client = httpx.Client(timeout=30)
    return client


class SmsGateway:
    """The simulated SMS gateway (infra/sms-sim) as a process of its own, for a suite's bridge to send through:
    `BM_BRIDGE_SMS_URL` is `url`. `messages(to)` is what a phone would have received."""

    def __init__(self, folder: Path) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "BM_SMS_SIM_PORT": str(port)}
        with (folder / "sms.log").open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sms_sim", "serve"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        wait_ready(self.url, self.process)

    def messages(self, to: str | None = None) -> list[dict[str, Any]]:
        return local_http().get(f"{self.url}/messages", params={"to": to} if to else {}).json()

    def stop(self) -> None:
        stop_process(self.process)


def wait_ready(url: str, process: subprocess.Popen[bytes], limit_seconds: float = 60) -> None:
    deadline = time.monotonic() + limit_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the service exited with code {process.returncode}")
        with suppress(httpx.HTTPError):
            if local_http().get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready")


def wiring(urls: dict[str, str]) -> dict[str, str]:
    """The settings by which the services find each other, given each one's base URL (keys of SERVICES)."""
    return {
        "BM_INTAKE_VERIFICATION_URL": urls["verification"],
        "BM_INTAKE_BRIDGE_URL": urls["bridge"],
        "BM_INTAKE_PUBLIC_URL": urls["intake"],
        "BM_VERIFICATION_BRIDGE_URL": urls["bridge"],
        "BM_BRIDGE_INTAKE_URL": urls["intake"],
        "BM_BRIDGE_MELDKAMER_URL": urls["meldkamer"],
        "BM_BRIDGE_PUBLIC_URL": urls["bridge"],
        "BM_BRIDGE_CALLER_LINK_BASE_URL": urls["intake"],  # where a caller's one-time link points
        "BM_BRIDGE_VERIFICATION_URL": urls["verification"],
        "BM_MELDKAMER_BRIDGE_URL": urls["bridge"],
    }


# Who calls whom with a service credential (a service trusts exactly its callers' public keys); the meldkamer
# calls the bridge with signed webhooks instead, and holds no key of its own.
CALLERS = {
    "intake": ["bridge"],
    "verification": ["intake", "bridge"],
    "bridge": ["intake", "verification"],
    "meldkamer": ["bridge"],
}
SERVICE_NAMES = {
    "intake": "report-intake",
    "verification": "verification",
    "bridge": "dispatch-bridge",
    "meldkamer": "meldkamer",
}


def service_key_settings(
    signing: dict[str, ServiceKey],
    also_trusted: dict[str, list[ServiceKey]] | None = None,
) -> dict[str, str]:
    """Each calling service's own private key, and each service's trust in its callers' public keys (plus the
    keys in `also_trusted`, by caller: a rotation's second key)."""
    env = {f"{SERVICES[name][1]}SERVICE_KEY": json.dumps(key.private_jwk()) for name, key in signing.items()}
    for name, callers in CALLERS.items():
        trusted = {
            SERVICE_NAMES[caller]: [
                key.public_jwk() for key in [signing[caller], *(also_trusted or {}).get(caller, [])]
            ]
            for caller in callers
        }
        env[f"{SERVICES[name][1]}TRUSTED_SERVICE_KEYS"] = json.dumps(trusted)
    return env


def new_service_keys(kid: str = "k1") -> dict[str, ServiceKey]:
    return {
        name: new_key(SERVICE_NAMES[name], f"{SERVICE_NAMES[name]}-{kid}") for name in CALLERS if name != "meldkamer"
    }


def production_secrets() -> dict[str, str]:
    """Production mode with real secrets: fresh random values and keys, each secret shared by exactly the
    services that must agree on it (production mode refuses the placeholders that development runs on)."""
    webhook_keys = json.dumps({"k1": "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()})
    env = {f"{prefix}ENVIRONMENT": "production" for _package, prefix in SERVICES.values()}
    env.update(service_key_settings(new_service_keys()))
    env.update(
        {
            "BM_INTAKE_TOKEN_SECRET": secrets.token_urlsafe(32),
            "BM_BRIDGE_MELDKAMER_WEBHOOK_KEYS": webhook_keys,
            "BM_MELDKAMER_WEBHOOK_KEYS": webhook_keys,
            "BM_BRIDGE_MEDIA_URL_SECRET": secrets.token_urlsafe(32),
            "BM_BRIDGE_DISPATCHER_TOKEN_SECRET": secrets.token_urlsafe(32),
            "BM_BRIDGE_CALLER_PHONE_KEY": secrets.token_urlsafe(32),
            "BM_BRIDGE_SMS_PRODUCT_TOKEN": secrets.token_urlsafe(32),
            "BM_MELDKAMER_ADMIN_TOKEN": secrets.token_urlsafe(32),
        }
    )
    return env


def credential_in(env: dict[str, str], caller: str, audience: str) -> str:
    """A credential of `caller` (a key of SERVICES) for `audience`, made with the key in a deployment's settings
    (the development key where the settings name none)."""
    private = env.get(f"{SERVICES[caller][1]}SERVICE_KEY")
    if private is None:
        return development_key(SERVICE_NAMES[caller]).issue(SERVICE_NAMES[audience])
    return load_service_key(SERVICE_NAMES[caller], json.loads(private)).issue(SERVICE_NAMES[audience])


def openapi_documents(base_url: str, env: dict[str, str], service: str) -> list[dict[str, Any]]:
    """A service's public OpenAPI document and its internal one, which is behind a service credential like every
    /internal/ path (asked for as the first service that calls this one)."""
    internal = {"Authorization": f"Bearer {credential_in(env, CALLERS[service][0], service)}"}
    return [
        local_http().get(f"{base_url}/openapi.json", timeout=10).raise_for_status().json(),
        local_http().get(f"{base_url}/internal/openapi.json", headers=internal, timeout=10).raise_for_status().json(),
    ]


def start_suite(folder: Path, extra_env: dict[str, str] | None = None, pythons: dict[str, str] | None = None) -> Suite:
    """Migrate and start all four services; the caller must `stop()` the suite. `extra_env` overrides settings
    (`production_secrets()` for production mode); `pythons` gives services an interpreter of their own.

    A service on this interpreter gets a copy of the database this test process migrated once (see
    `tests.databases`); one with an interpreter of its own migrates its database with its own `migrate` command,
    which shows that its environment can. The migrations, and then the four services, run side by side."""
    folder.mkdir(parents=True, exist_ok=True)
    suite = Suite(folder, pythons=dict(pythons or {}))
    ports = {name: free_port() for name in SERVICES}
    suite.urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("BM_") or k.startswith("BM_TEST_")}
    for name, (package, prefix) in SERVICES.items():
        url, database = create_database(name, folder, None if name in suite.pythons else package)
        suite.databases.append(database)
        env.update(
            {
                f"{prefix}PORT": str(ports[name]),
                f"{prefix}DATABASE_URL": url,
                f"{prefix}BLOB_DIR": str(folder / "blobs"),
                f"{prefix}ENVIRONMENT": "development",
                f"{prefix}RELAY_POLL_SECONDS": "0.5",
                f"{prefix}RELAY_BACKOFF_BASE_SECONDS": "0.1",
                f"{prefix}RELAY_BACKOFF_CAP_SECONDS": "2",
            }
        )
    env.update(wiring(suite.urls))
    env.update(
        {
            "BM_MELDKAMER_SCRIPT": json.dumps(FAST_SCRIPT),
            "BM_VERIFICATION_WORKERS": "2",
            # Every simulated citizen comes from 127.0.0.1 here; the limits themselves are tested on their own.
            "BM_INTAKE_REPORTS_PER_CLIENT": "100000",
            "BM_INTAKE_TOKEN_USES_PER_CLIENT": "100000",
            # Load tests present many citizens through X-Forwarded-For, as a reverse proxy would.
            "BM_INTAKE_TRUSTED_PROXIES": '["127.0.0.1"]',
        }
    )
    env.update(extra_env or {})
    suite.env = env
    try:
        migrating = {
            name: subprocess.Popen(
                [suite.pythons[name], "-m", SERVICES[name][0], "migrate"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for name in SERVICES
            if name in suite.pythons
        }
        for name, process in migrating.items():
            output, _ = process.communicate()
            if process.returncode != 0:
                raise RuntimeError(f"{name}: migrate exited with code {process.returncode}:\n{output.decode()}")
        for name in SERVICES:
            suite.launch_service(name)
        for name in SERVICES:
            wait_ready(suite.urls[name], suite.processes[name])
    except BaseException:
        suite.stop()
        raise
    return suite


DEVELOPMENT_ADMIN_TOKEN = "dev-only-meldkamer-admin-token-change-me"  # the simulator's development default


def meldkamer_admin(env: dict[str, str]) -> dict[str, str]:
    """The header of the simulated meldkamer's admin token in a suite's (or deployment's) settings."""
    return {"Authorization": f"Bearer {env.get('BM_MELDKAMER_ADMIN_TOKEN', DEVELOPMENT_ADMIN_TOKEN)}"}


def meldkamer_incidents(base_url: str, env: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    """What the simulated meldkamer has received (its incident list holds citizens' words: admin token only)."""
    answer = local_http().get(f"{base_url}/v1/incidents", params=params, headers=meldkamer_admin(env), timeout=30)
    answer.raise_for_status()
    return list(answer.json())


def submit(
    suite: Suite, body: dict[str, Any], photos: list[bytes], key: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    files = report_parts(body, photos)
    return local_http().post(
        f"{suite.urls['intake']}/v1/reports",
        files=files,
        headers={"Idempotency-Key": key, **(headers or {})},
        timeout=30,
    )


def follow(suite: Suite, created: dict[str, Any], until_status: str, limit_seconds: float = 60) -> dict[str, Any]:
    """Poll the citizen's status page until the report reaches a status (the limit only bounds a broken run)."""
    deadline = time.monotonic() + limit_seconds
    while True:
        view = (
            local_http()
            .get(
                f"{suite.urls['intake']}{created['status_url']}",
                headers={"Authorization": f"Bearer {created['access_token']}"},
                timeout=10,
            )
            .json()
        )
        if view["status"] == until_status or time.monotonic() > deadline:
            return view
        time.sleep(0.1)


class Phone:
    """A citizen's app: sends a report and, on no answer, a 502 or a 503, or a 409 saying that the first try is
    still being processed (its replica died holding it: the claim is taken over once stale), sends it again
    with the same key."""

    def __init__(self, base_url: str, address: str) -> None:
        # Its own address, as nginx passes it on (203.0.113.0/24 is for documentation: no real phone has it).
        self.base_url, self.address = base_url, address
        self.retries = 0

    @staticmethod
    def try_again(response: httpx.Response) -> bool:
        return response.status_code in (502, 503, 504) or (
            response.status_code == 409 and response.json().get("error") == "request_in_progress"
        )

    def send(self, body: dict[str, Any], photos: list[bytes], key: str, limit_seconds: float = 170) -> httpx.Response:
        files = report_parts(body, photos)
        deadline, pause = time.monotonic() + limit_seconds, 0.2
        while True:
            try:
                response = local_http().post(
                    f"{self.base_url}/v1/reports",
                    files=files,
                    timeout=30,
                    headers={"Idempotency-Key": key, "X-Forwarded-For": self.address},
                )
                if not self.try_again(response) or time.monotonic() > deadline:
                    return response
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
            self.retries += 1
            time.sleep(pause)
            pause = min(2.0, pause * 2)


def eventually(check: Callable[[], Any], limit: float = 30, pause: float = 0.1) -> Any:
    """Ask `check` again until it answers something true or `limit` seconds pass (the limit only bounds a
    broken run); its last answer."""
    deadline = time.monotonic() + limit
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(pause)


def create_account(suite: Suite, username: str, role: str) -> str:
    """A dispatcher account made with the bridge's own command: its password."""
    password = "a long enough test password"
    subprocess.run(
        [sys.executable, "-m", "dispatch_bridge", "create-user", username, "--role", role],
        input=password + "\n",
        text=True,
        env=suite.env,
        check=True,
        capture_output=True,
    )
    return password


def create_dispatcher(suite: Suite, username: str, role: str) -> str:
    """A dispatcher account made with the bridge's own command, logged in: its bearer token."""
    password = create_account(suite, username, role)
    answer = local_http().post(
        f"{suite.urls['bridge']}/v1/auth/token", data={"username": username, "password": password}
    )
    return str(answer.json()["access_token"])
