"""The clients an app team and an integrator would generate from our public documents, driving the running suite
(#31): a Python client (openapi-python-client) and a TypeScript one (@hey-api/openapi-ts, type-checked with tsc,
run with tsx), each generated from the documents the services serve, through what a real client does. A citizen's
app registers (solving the proof of work), sends a report with a photo and an Idempotency-Key, sends it again,
follows it until it is forwarded, answers the dispatcher's question and withdraws it; a dispatcher logs in, lists
the incidents, opens the report, looks at its photo, asks the question and merges a second incident into it.
Every HTTP call of those flows is a generated function: a document a generator cannot use fails here.

The TypeScript flow is tools/clients/flows/citizen_and_dispatcher.ts; tools/clients holds the generator, tsc and
tsx, installed from its lock file the first time (scripts/node_tools.py)."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest

from scripts.node_tools import NodeToolMissing, node_tool
from tests.e2e.test_happy_path import camera_photo
from tests.suite import Suite, create_account, local_http, start_suite

# Runs on SQLite only (conftest.py, END_TO_END_DATABASES): the API's documents and the clients made from them; no
# database decides what a generator makes of a document.
pytestmark = pytest.mark.runs_on("sqlite")

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / "tools" / "clients"
FLOW = CLIENTS / "flows" / "citizen_and_dispatcher.ts"
PYTHON_GENERATOR = Path(sys.executable).parent / "openapi-python-client"
# What openapi-python-client does not know by itself: files answered as image/jpeg or application/zip are bytes
# (it parses only application/octet-stream as such); the CAP alert (XML) is text.
PYTHON_GENERATOR_CONFIG = {
    "content_type_overrides": {
        "image/jpeg": "application/octet-stream",
        "application/zip": "application/octet-stream",
        "application/cap+xml": "text/plain",
    },
    "post_hooks": [],
}
# The proof of work, lighter than production's 20 bits: the solvers meet the document's 20-bit test vector too.
POW_BITS = 16
# The simulated meldkamer takes the incident up and keeps it open: a merge needs open incidents, a withdrawal an
# open report, and the flows take longer on a busy machine than the default script's 8 s before it closes.
SCRIPT = [["Active", 0.3]]


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    running = start_suite(
        tmp_path_factory.mktemp("suite"),
        extra_env={"BM_INTAKE_INSTALLATION_POW_BITS": str(POW_BITS), "BM_MELDKAMER_SCRIPT": json.dumps(SCRIPT)},
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def documents(suite: Suite) -> dict[str, dict[str, Any]]:
    """The public documents as the running services serve them: what a client team downloads."""
    return {
        name: local_http().get(f"{suite.urls[name]}/openapi.json", timeout=10).raise_for_status().json()
        for name in ("intake", "bridge")
    }


def place(n: int) -> dict[str, float]:
    """A place of its own for each report, 2 km from the others: reports of one place and time are one event,
    and would join each other's incidents before the dispatcher could merge them."""
    return {"lat": 52.0907 + 0.02 * n, "lon": 5.1214}


def documented_vector(documents: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The document's own example of a solved challenge (InstallationChallenge, InstallationRegistration)."""
    schemas = documents["intake"]["components"]["schemas"]
    challenge = schemas["InstallationChallenge"]["examples"][0]
    registration = schemas["InstallationRegistration"]["examples"][0]
    assert registration["challenge"] == challenge["challenge"]
    return {
        "challenge": challenge["challenge"],
        "difficulty_bits": challenge["difficulty_bits"],
        "solution": registration["solution"],
    }


# The Python client ------------------------------------------------------------------------------------------------


def leading_zero_bits(digest: bytes) -> int:
    return len(digest) * 8 - int.from_bytes(digest, "big").bit_length()


def solves(challenge: str, solution: str, bits: int) -> bool:
    return leading_zero_bits(hashlib.sha256(f"{challenge}:{solution}".encode()).digest()) >= bits


def solve(challenge: str, bits: int) -> str:
    """The app's proof of work, as the document describes it: count until the hash has enough zero bits."""
    counter = 0
    while not solves(challenge, str(counter), bits):
        counter += 1
    return str(counter)


def generate_python_client(document: dict[str, Any], folder: Path, package: str) -> Callable[[str], Any]:
    """Generate a client package from a document into `folder` (which must be on sys.path) and import it: a
    function from a module's path in the package (`api.citizen.create_report`) to the module."""
    folder.mkdir(parents=True, exist_ok=True)
    source, config = folder / f"{package}.json", folder / "openapi-python-client.json"
    source.write_text(json.dumps(document))
    config.write_text(json.dumps(PYTHON_GENERATOR_CONFIG))
    generated = subprocess.run(
        [
            *(str(PYTHON_GENERATOR), "generate", "--path", str(source), "--output-path", str(folder / package)),
            *("--meta", "none", "--config", str(config)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    return lambda module: importlib.import_module(f"{package}.{module}")


@dataclass
class Calls:
    """Each round trip a generated client made: the operation and the status it answered."""

    seen: list[tuple[str, int]] = field(default_factory=list)

    def __call__(self, operation: str, expected: int, module: Any, *args: Any, **kwargs: Any) -> Any:
        response = module.sync_detailed(*args, **kwargs)
        self.seen.append((operation, int(response.status_code)))
        assert response.status_code == expected, (operation, response.status_code, response.content[:500])
        return response.parsed


def until(what: str, check: Callable[[], Any], limit: float = 60) -> Any:
    deadline = time.monotonic() + limit
    while True:
        value = check()
        if value is not None:
            return value
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.15)


def test_the_python_client_runs_the_citizens_and_the_dispatchers_flows(
    suite: Suite,
    documents: dict[str, dict[str, Any]],
    typescript_client: Future[list[Step]],  # started first: the TypeScript client runs meanwhile
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    intake = generate_python_client(documents["intake"], tmp_path, "burgermelding_intake_client")
    bridge = generate_python_client(documents["bridge"], tmp_path, "burgermelding_bridge_client")
    vector = documented_vector(documents)
    assert solve(vector["challenge"], vector["difficulty_bits"]) == vector["solution"]
    password = create_account(suite, "python-client", "dispatcher")
    call = Calls()
    IntakeClient, IntakeAuthenticated = intake("client").Client, intake("client").AuthenticatedClient
    models, types = intake("models"), intake("types")
    desk_models = bridge("models")

    # The citizen registers the app.
    app = IntakeClient(base_url=suite.urls["intake"], timeout=30)
    challenge = call("intake.newChallenge", 201, intake("api.installations.new_challenge"), client=app)
    solution = solve(challenge.challenge, challenge.difficulty_bits)
    installation = call(
        "intake.registerInstallation",
        201,
        intake("api.installations.register_installation"),
        client=app,
        body=models.InstallationRegistration(challenge=challenge.challenge, solution=solution),
    )
    assert installation.credential and installation.installation_id
    app = app.with_headers({"Installation-Credential": installation.credential})

    # A report with a photo, and the same request again.
    photo = camera_photo(**place(0), pattern=3)
    description = "Twee mannen bij de achterdeur (python)"

    def report(spot: dict[str, float], text: str) -> str:
        """A report as the `report` part carries it: JSON text (the document says so, but gives no model)."""
        when = datetime.now(UTC).isoformat()
        return json.dumps(
            {"category": "burglary", "description": text, "location": spot, "observed_at": when, "in_progress": False}
        )

    def send(report: str, key: str, photos: list[bytes]) -> Any:
        body = models.CreateReportBody(
            report=report,
            photos=[types.File(payload=BytesIO(p), file_name="photo.jpg", mime_type="image/jpeg") for p in photos],
        )
        return call(
            "intake.createReport", 202, intake("api.citizen.create_report"), client=app, body=body, idempotency_key=key
        )

    first = report(place(0), description)
    created = send(first, "py-client-report-1", [photo])
    retried = send(first, "py-client-report-1", [photo])  # the same request again: its answer was lost
    assert retried.to_dict() == created.to_dict()  # the same answer again
    assert created.reference.startswith("BM-") and created.status.value == "received"

    # The citizen follows the report with its own token, and the credential of the app that made it.
    citizen = IntakeAuthenticated(
        base_url=suite.urls["intake"],
        token=created.access_token,
        headers={"Installation-Credential": installation.credential},
        timeout=30,
    )

    def view() -> Any:
        return call("intake.getReport", 200, intake("api.citizen.get_report"), created.id, client=citizen)

    def is_forwarded() -> Any:
        seen = view()
        return seen if any(item.event == "forwarded" for item in seen.timeline) else None

    forwarded = until("the report to be forwarded", is_forwarded)
    events = [item.event for item in forwarded.timeline]
    assert events[:3] == ["received", "verified", "forwarded"], events

    # The dispatcher logs in, finds the incident, opens the report, looks at its photo, asks a question.
    anonymous_desk = bridge("client").Client(base_url=suite.urls["bridge"], timeout=30)
    token = call(
        "bridge.requestToken",
        200,
        bridge("api.dispatchers.request_token"),
        client=anonymous_desk,
        body=desk_models.BodyRequestToken(username="python-client", password=password),
    )
    desk = bridge("client").AuthenticatedClient(base_url=suite.urls["bridge"], token=token.access_token, timeout=30)

    def incident_of(report_id: str) -> Any:
        def find() -> Any:
            incidents = call("bridge.listIncidents", 200, bridge("api.dispatchers.list_incidents"), client=desk)
            return next((i for i in incidents if any(r.report_id == report_id for r in i.reports)), None)

        return until(f"an incident with report {report_id}", find)

    incident = incident_of(created.id)
    opened = call("bridge.getReport", 200, bridge("api.dispatchers.get_report"), created.id, client=desk)
    assert opened.description == description and len(opened.photos) == 1
    shown = call(
        "bridge.getReportPhoto",
        200,
        bridge("api.dispatchers.get_report_photo"),
        created.id,
        opened.photos[0].photo_id,
        client=desk,
    )
    sanitised = shown.payload.read()
    assert sanitised[:3] == b"\xff\xd8\xff"  # a JPEG: the sanitised copy
    assert b"Pixel 8" not in sanitised  # without the camera's metadata
    question = "Welke kant liep de verdachte op? (python)"
    asked = call(
        "bridge.askQuestion",
        201,
        bridge("api.dispatchers.ask_question"),
        created.id,
        client=desk,
        body=desk_models.Question(text=question),
    )

    # The citizen sees the question and answers it; the dispatcher sees the answer.
    def question_arrived() -> Any:
        messages = call("intake.listMessages", 200, intake("api.citizen.list_messages"), created.id, client=citizen)
        return next((m for m in messages if m.direction.value == "to_citizen" and m.text == question), None)

    received = until("the question to reach the citizen", question_arrived)
    assert received.id == asked.id
    answer = "Richting het station (python)"
    answered = call(
        "intake.sendMessage",
        201,
        intake("api.citizen.send_message"),
        created.id,
        client=citizen,
        body=models.MessageIn(text=answer, in_reply_to=received.id),
        idempotency_key="py-client-answer-1",
    )
    assert answered.direction.value == "from_citizen"

    def answer_arrived() -> Any:
        detail = call("bridge.getReport", 200, bridge("api.dispatchers.get_report"), created.id, client=desk)
        return next((m for m in detail.messages if m.direction.value == "from_citizen" and m.text == answer), None)

    assert until("the answer to reach the dispatcher", answer_arrived).in_reply_to == asked.id

    # A second report of the same event from elsewhere: the dispatcher merges its incident into the first.
    second = send(report(place(1), "Twee mannen rennen weg (python)"), "py-client-report-2", [])
    second_incident = incident_of(second.id)
    assert second_incident.incident_id != incident.incident_id
    merged = call(
        "bridge.mergeIncidents",
        200,
        bridge("api.dispatchers.merge_incidents"),
        incident.incident_id,
        client=desk,
        body=desk_models.MergeRequest(incident_ids=[second_incident.incident_id]),
    )
    assert {r.report_id for r in merged.reports} >= {created.id, second.id}
    assert {merged.incident_id, *merged.merged_from} == {incident.incident_id, second_incident.incident_id}

    # The citizen withdraws the first report.
    withdrawn = call("intake.withdrawReport", 200, intake("api.citizen.withdraw_report"), created.id, client=citizen)
    assert (withdrawn.status, withdrawn.personal_data.value) == ("withdrawn", "removed")
    final = view()
    assert final.status.value == "withdrawn" and final.timeline[-1].event == "withdrawn"

    assert_round_trips(call.seen)


# The TypeScript client --------------------------------------------------------------------------------------------


@dataclass
class Step:
    """A step of the TypeScript client's pipeline, as it ended."""

    name: str
    returncode: int
    stdout: str
    stderr: str


def run_typescript_client(suite: Suite, documents: dict[str, dict[str, Any]], folder: Path) -> list[Step]:
    """Generate the TypeScript clients into `folder`, type-check the flow program with them and run it against
    the suite: each step's outcome, up to the first that failed."""
    generator = node_tool(CLIENTS, "openapi-ts", "the TypeScript client generator")
    tools = generator.parent
    steps: list[Step] = []

    def step(name: str, command: list[str], **options: Any) -> bool:
        done = subprocess.run(command, capture_output=True, text=True, check=False, **options)
        steps.append(Step(name, done.returncode, done.stdout, done.stderr))
        return done.returncode == 0

    for name in ("intake", "bridge"):
        source = folder / "documents" / f"{name}.json"
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(json.dumps(documents[name]))
        command = [str(generator), "-i", str(source), "-o", str(folder / name), "-c", "@hey-api/client-fetch"]
        if not step(f"openapi-ts {name}", [*command, "--no-log-file", "--silent"]):
            return steps
    program = folder / FLOW.name
    program.write_text(FLOW.read_text())
    (folder / "tsconfig.json").write_text(
        json.dumps(
            {
                "compilerOptions": {
                    "target": "ES2022",
                    "module": "ESNext",
                    "moduleResolution": "bundler",
                    "lib": ["ES2022", "DOM"],
                    "types": ["node"],
                    "typeRoots": [str(CLIENTS / "node_modules" / "@types")],
                },
                "files": [program.name],
            }
        )
    )
    if not step("tsc", [str(tools / "tsc"), "-p", str(folder), "--noEmit", "--strict"]):
        return steps

    password = create_account(suite, "typescript-client", "dispatcher")
    photo = folder / "photo.jpg"
    photo.write_bytes(camera_photo(**place(2), pattern=4))
    settings = {
        "RUN": "typescript",
        "INTAKE_URL": suite.urls["intake"],
        "BRIDGE_URL": suite.urls["bridge"],
        "USERNAME": "typescript-client",
        "PASSWORD": password,
        "PHOTO": str(photo),
        "PLACES": json.dumps([place(2), place(3)]),
        "POW_VECTOR": json.dumps(documented_vector(documents)),
    }
    env = {**os.environ, **{f"BM_FLOW_{name}": value for name, value in settings.items()}}
    step("tsx", [str(tools / "tsx"), str(program)], cwd=folder, env=env, timeout=180)
    return steps


@pytest.fixture(scope="module")
def typescript_client(
    suite: Suite, documents: dict[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Future[list[Step]]]:
    """The TypeScript client's steps, run in the background from the moment the documents are there: it drives
    the suite while the Python client does (both clients one after the other took the module well past a minute
    on two cores)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool.submit(run_typescript_client, suite, documents, tmp_path_factory.mktemp("typescript"))


def test_the_typescript_client_type_checks_and_runs_the_same_flows(
    documents: dict[str, dict[str, Any]], typescript_client: Future[list[Step]]
) -> None:
    try:
        steps = typescript_client.result(timeout=300)
    except NodeToolMissing as missing:
        pytest.fail(str(missing))
    for done in steps:
        assert done.returncode == 0, f"{done.name} failed:\n{done.stdout}\n{done.stderr}"
    assert [done.name for done in steps] == ["openapi-ts intake", "openapi-ts bridge", "tsc", "tsx"]
    result = json.loads(steps[-1].stdout.strip().splitlines()[-1])

    assert result["vector_solved"] == documented_vector(documents)["solution"]
    assert result["installation_id"]
    created, retried = result["created"], result["retried"]
    assert created["reference"].startswith("BM-") and created["status"] == "received"
    assert retried == created  # the same answer again
    assert result["forwarded_timeline"][:3] == ["received", "verified", "forwarded"]
    assert created["id"] in result["incident_reports"]
    assert result["opened"] == {
        "report_id": created["id"],
        "description": "Twee mannen bij de achterdeur (typescript)",
        "photos": 1,
    }
    assert result["photo"]["head"] == [0xFF, 0xD8, 0xFF]  # a JPEG: the sanitised copy
    assert result["photo"]["camera_named"] is False  # without the camera's metadata
    assert result["received"]["id"] == result["asked"]["id"]
    assert result["answered"]["direction"] == "from_citizen"
    assert result["answer_seen"]["in_reply_to"] == result["asked"]["id"]
    assert result["second_incident_id"] != result["incident_id"]
    merged = result["merged"]
    assert set(merged["reports"]) >= {created["id"], result["second_id"]}
    assert {merged["incident_id"], *merged["merged_from"]} == {result["incident_id"], result["second_incident_id"]}
    assert result["withdrawn"] == {"status": "withdrawn", "personal_data": "removed"}
    assert result["final"]["status"] == "withdrawn" and result["final"]["timeline"][-1] == "withdrawn"
    assert_round_trips([(c["operation"], c["status"]) for c in result["calls"]])


# Both -------------------------------------------------------------------------------------------------------------

FLOWS = {  # every operation of the flows, with the status of its success
    "intake.newChallenge": 201,
    "intake.registerInstallation": 201,
    "intake.createReport": 202,
    "intake.getReport": 200,
    "bridge.getReport": 200,
    "bridge.requestToken": 200,
    "bridge.listIncidents": 200,
    "bridge.getReportPhoto": 200,
    "bridge.askQuestion": 201,
    "intake.listMessages": 200,
    "intake.sendMessage": 201,
    "bridge.mergeIncidents": 200,
    "intake.withdrawReport": 200,
}


def assert_round_trips(calls: list[tuple[str, int]]) -> None:
    """Every operation of the flows ran, each answered as it should, and in the order a real client goes."""
    print("round trips:", json.dumps(calls))  # shown with a failure (or with -s)
    assert {operation for operation, _ in calls} == set(FLOWS), calls
    assert all(status == FLOWS[operation] for operation, status in calls), calls
    order = [operation for operation, _ in calls]
    assert order[:4] == [
        "intake.newChallenge",
        "intake.registerInstallation",
        "intake.createReport",
        "intake.createReport",
    ]
    assert order[-2:] == ["intake.withdrawReport", "intake.getReport"]
    assert order.index("bridge.askQuestion") < order.index("intake.sendMessage") < order.index("bridge.mergeIncidents")
