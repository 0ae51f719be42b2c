"""A simulated SMS gateway: what the bridge sends a caller (the one-time link of issue #33) arrives here instead of
on a phone, for tests to read and a developer to see.

It speaks the API of the provider the bridge's adapter is written for, CM.com's Business Messaging gateway
(`POST /v1.0/message`, the product token in `X-CM-PRODUCTTOKEN` and in the body, the numbers as `00<country>...`),
so the adapter under test is the one production uses; only `BM_BRIDGE_SMS_URL` and the token differ. Messages are
kept in memory (a restart forgets them) and delivered after `BM_SMS_SIM_DELAY_SECONDS` (a real network's delay,
which the benchmarks show apart):

- `GET /messages?to=0031612345678` the delivered messages, newest first, as JSON (tests);
- `GET /` the same as a page (a developer: the link to open in a browser is there);
- `GET /readyz` for the suite's start.

    python -m sms_sim serve        # BM_SMS_SIM_HOST, BM_SMS_SIM_PORT (8005), BM_SMS_SIM_PRODUCT_TOKEN
"""

from __future__ import annotations

import argparse
import html
import os
import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from fastapi import FastAPI, Header, Request
from fastapi.responses import HTMLResponse, JSONResponse

DEVELOPMENT_TOKEN = "dev-only-sms-product-token-change-me"  # noqa: S105 (the simulator's development default)
NUMBER = re.compile(r"^00[1-9]\d{6,14}$")  # CM.com's international format: 00, country code, number
MAX_CONTENT = 1530  # CM.com's limit: 10 concatenated parts of 153 characters


@dataclass
class Sms:
    id: str
    to: str
    sender: str
    content: str
    reference: str
    accepted_at: float
    delivered_at: float


class Gateway:
    def __init__(self, product_token: str, delay_seconds: float) -> None:
        self.product_token, self.delay_seconds = product_token, delay_seconds
        self.messages: list[Sms] = []
        self.lock = threading.Lock()

    def delivered(self, to: str | None = None) -> list[Sms]:
        now = time.time()
        with self.lock:
            return [m for m in reversed(self.messages) if m.delivered_at <= now and to in (None, m.to)]


def refusal(status: int, details: str, error_code: int) -> JSONResponse:
    """An error in CM.com's shape (the adapter reads `errorCode` and `details`)."""
    return JSONResponse({"details": details, "errorCode": error_code, "messages": []}, status_code=status)


def create_app(product_token: str | None = None, delay_seconds: float | None = None) -> FastAPI:
    gateway = Gateway(
        product_token or os.environ.get("BM_SMS_SIM_PRODUCT_TOKEN", DEVELOPMENT_TOKEN),
        float(os.environ.get("BM_SMS_SIM_DELAY_SECONDS", "0")) if delay_seconds is None else delay_seconds,
    )
    app = FastAPI(title="Simulated SMS gateway (CM.com's Business Messaging API)", version="1.0.0")
    app.state.gateway = gateway

    @app.post("/v1.0/message")
    async def send(request: Request, x_cm_producttoken: str | None = Header(None)) -> JSONResponse:
        try:
            body = await request.json()
            messages = body["messages"]
            token = messages.get("authentication", {}).get("productToken") or x_cm_producttoken
            items = messages["msg"]
            assert isinstance(items, list) and items
        except (ValueError, KeyError, TypeError, AttributeError, AssertionError):
            return refusal(400, "The request is not a valid message request", 999)
        if token != gateway.product_token:
            return refusal(401, "No account found for the given authentication", 101)
        accepted = []
        now = time.time()
        for item in items:
            content = str((item.get("body") or {}).get("content", ""))
            numbers = [str(to.get("number", "")) for to in item.get("to") or [] if isinstance(to, dict)]
            if not content or len(content) > MAX_CONTENT or not numbers or not all(NUMBER.match(n) for n in numbers):
                return refusal(400, "A message has no content, too much content or an invalid number", 304)
            for number in numbers:
                sms = Sms(
                    id=str(uuid.uuid4()),
                    to=number,
                    sender=str(item.get("from", ""))[:11],
                    content=content,
                    reference=str(item.get("reference", ""))[:32],
                    accepted_at=now,
                    delivered_at=now + gateway.delay_seconds,
                )
                accepted.append(sms)
        with gateway.lock:
            gateway.messages.extend(accepted)
        return JSONResponse(
            {
                "details": f"Created {len(accepted)} message(s)",
                "errorCode": 0,
                "messages": [
                    {"to": m.to, "status": "Accepted", "reference": m.reference, "parts": 1, "messageErrorCode": 0}
                    for m in accepted
                ],
            }
        )

    @app.get("/messages")
    async def messages(to: str | None = None) -> list[dict[str, Any]]:
        return [asdict(m) for m in gateway.delivered(to)]

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        rows = "".join(
            f"<tr><td>{html.escape(m.to)}</td><td>{html.escape(m.sender)}</td>"
            f"<td>{time.strftime('%H:%M:%S', time.localtime(m.delivered_at))}</td>"
            f"<td>{linked(m.content)}</td></tr>"
            for m in gateway.delivered()
        )
        return (
            '<!doctype html><html lang="en"><meta charset="utf-8"><title>Simulated SMS gateway</title>'
            "<h1>Messages sent by SMS</h1><p>What the bridge sent, newest first (kept in memory).</p>"
            "<table><tr><th>to</th><th>from</th><th>delivered</th><th>text</th></tr>" + rows + "</table></html>"
        )

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    return app


def linked(text: str) -> str:
    """The text with its links clickable (a developer opens the caller's page from here)."""
    escaped = html.escape(text)
    return re.sub(r"(https?://[^\s<]+)", r'<a href="\1">\1</a>', escaped)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="sms_sim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the simulated gateway")
    sub.add_parser("migrate", help="nothing to do: it keeps no database (for the suite's start, like the others)")
    args = parser.parse_args(argv)
    if args.command == "serve":
        import uvicorn

        host = os.environ.get("BM_SMS_SIM_HOST", "127.0.0.1")
        port = int(os.environ.get("BM_SMS_SIM_PORT", "8005"))
        uvicorn.run(create_app(), host=host, port=port, log_level="warning")
