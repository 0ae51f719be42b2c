"""Slow clients (slowloris) and slow senders against a real intake process: they are answered 408 and cut off,
nothing of their uploads stays behind, and an ordinary citizen is served while hundreds of them hang on.

Real uvicorn process, raw sockets that send their headers or their body a few bytes at a time. Waits are bounded
only so that a broken run ends; nothing here asserts a duration.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from tests.helpers import phone_photo, report_json
from tests.suite import Suite, start_suite, submit

# Runs on SQLite only (conftest.py, END_TO_END_DATABASES): slow HTTP clients are cut off before any database is reached.
pytestmark = pytest.mark.runs_on("sqlite")

SLOW_HEADERS, SLOW_BODIES = 200, 50
SLOW_ENV = {
    "BM_INTAKE_HEADER_TIMEOUT_SECONDS": "3",
    "BM_INTAKE_BODY_IDLE_SECONDS": "3",
    "BM_INTAKE_BODY_GRACE_SECONDS": "3",
    "BM_INTAKE_BODY_MIN_BYTES_PER_SECOND": "2048",
}


@pytest.fixture
def suite(tmp_path: Path) -> Iterator[Suite]:
    running = start_suite(tmp_path / "suite", SLOW_ENV)
    yield running
    running.stop()


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)), timeout=5)
    conn.setblocking(False)
    return conn


def upload_head(length: int) -> bytes:
    return (
        f"POST /v1/reports HTTP/1.1\r\nHost: intake\r\nIdempotency-Key: slow-sender-0001\r\n"
        f"Content-Type: multipart/form-data; boundary=b0undary\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def connections_to(port: int) -> int:
    """Established TCP connections whose server end is this port (the kernel's table, both IP versions)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for line in fh.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                count += int(local.rsplit(":", 1)[1], 16) == port and state == "01"
    return count


def closed_by_server(conn: socket.socket) -> bool:
    """Whether the server has closed its end: the rest of its answer read, then the end of the stream."""
    try:
        while conn.recv(65536):
            pass
    except BlockingIOError:
        return False  # open, nothing more to read now
    except ConnectionResetError:
        pass  # closed by a reset: closed all the same
    return True


def test_slow_headers_and_slow_bodies_are_cut_off_and_others_are_served(suite: Suite) -> None:
    intake = suite.urls["intake"]
    port = int(intake.rsplit(":", 1)[1])
    slow_headers = [connect(intake) for _ in range(SLOW_HEADERS)]
    slow_bodies = [connect(intake) for _ in range(SLOW_BODIES)]
    for conn in slow_headers:
        conn.send(b"POST /v1/reports HTTP/1.1\r\nHost: intake\r\n")
    photo_part = (
        b'--b0undary\r\nContent-Disposition: form-data; name="photos"; filename="p.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n"
    )
    for conn in slow_bodies:
        conn.send(upload_head(1_000_000) + photo_part)

    answers: dict[int, bytes] = {}
    served = None
    deadline = time.monotonic() + 60
    while len(answers) < SLOW_HEADERS + SLOW_BODIES and time.monotonic() < deadline:
        for n, conn in enumerate(slow_headers + slow_bodies):
            if n in answers:
                continue
            with suppress(BlockingIOError, BrokenPipeError, ConnectionResetError):
                # A header line, or a few bytes of the photo, each second: alive, never finishing.
                conn.send(b"X-Slow: 1\r\n" if n < SLOW_HEADERS else b"\xff\xd8\xff\xe0")
            try:
                data = conn.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                data = b""
            answers[n] = data
        if served is None:  # while they all hang on, a citizen sends a report as usual
            place = {"lat": 52.1, "lon": 5.1}
            served = submit(
                suite, report_json(location=place), [phone_photo(77, **place, size=(800, 600))], "ordinary-citizen-0001"
            )
        time.sleep(1)

    assert served is not None and served.status_code == 202, served.text if served is not None else None
    assert len(answers) == SLOW_HEADERS + SLOW_BODIES, f"{len(answers)} of the slow clients were cut off"
    header_answers = [answers[n] for n in range(SLOW_HEADERS)]
    body_answers = [answers[n] for n in range(SLOW_HEADERS, SLOW_HEADERS + SLOW_BODIES)]
    assert all(a.startswith(b"HTTP/1.1 408") and b'"request_timeout"' in a for a in header_answers), header_answers[0]
    assert all(a.startswith(b"HTTP/1.1 408") and b'"request_timeout"' in a for a in body_answers), body_answers[0]
    # Every cut-off connection is closed by the server: each of ours reads to its end (the server's FIN)...
    still_open, deadline = slow_headers + slow_bodies, time.monotonic() + 30
    while still_open and time.monotonic() < deadline:
        still_open = [conn for conn in still_open if not closed_by_server(conn)]
        time.sleep(0.1)
    assert not still_open, f"the server kept {len(still_open)} cut-off connections open"
    # ...and what remains established at the server's port (ours are still open on our side) are the other
    # services' pooled keep-alive connections (a few), not the 250 slow ones. (File descriptors would also
    # count the database pool, which grows on PostgreSQL.)
    assert connections_to(port) <= 10, connections_to(port)
    for conn in slow_headers + slow_bodies:
        conn.close()
    uploads = suite.folder / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir()), "an upload of a slow sender was left behind"
