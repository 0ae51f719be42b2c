"""What the request spans cost: CPU per request, with and without FastAPI's telemetry.

A FastAPI app with one route (our telemetry settings, `tracing.app_telemetry()`, the process's tracer
provider, no exporter) is called directly over ASGI `--requests` times, with the spans on and off,
alternating `--rounds` times and keeping each one's fastest round (a busy moment of the machine only ever
adds time). Calling the app directly leaves out the HTTP client and server, whose cost is the same either
way and would hide the difference in the noise of a shared machine.

    uv run python bench/tracing_overhead.py [--requests 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from fastapi import FastAPI

from burgermelding_shared.tracing import app_telemetry, configure_tracing

SCOPE = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/v1/categories",
    "raw_path": b"/v1/categories",
    "query_string": b"",
    "root_path": "",
    "headers": [
        (b"host", b"intake"),
        (b"user-agent", b"Burgermelding/2.4"),
        (b"traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    ],
    "client": ("203.0.113.7", 50000),
    "server": ("127.0.0.1", 8001),
}


def make_app(traced: bool) -> FastAPI:
    app = FastAPI(telemetry={**app_telemetry(), "tracing": traced})

    @app.get("/v1/categories")
    async def categories() -> list[str]:
        return ["burglary", "theft"]

    return app


async def cpu_per_request(app: FastAPI, requests: int) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    for _ in range(500):  # warm up (the middleware stack is built on the first call)
        await app(dict(SCOPE), receive, send)
    started = time.process_time()
    for _ in range(requests):
        await app(dict(SCOPE), receive, send)
    return (time.process_time() - started) / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    configure_tracing("bench")
    plain_app, traced_app = make_app(False), make_app(True)
    plain, traced = [], []
    for _ in range(args.rounds):
        plain.append(asyncio.run(cpu_per_request(plain_app, args.requests)))
        traced.append(asyncio.run(cpu_per_request(traced_app, args.requests)))
    figures = {"plain_us": round(min(plain), 1), "traced_us": round(min(traced), 1)}
    figures["span_cost_us"] = round(figures["traced_us"] - figures["plain_us"], 1)
    print(
        f"CPU per request: {figures['plain_us']} us without a span, {figures['traced_us']} us with, "
        f"{figures['span_cost_us']} us for the span"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
