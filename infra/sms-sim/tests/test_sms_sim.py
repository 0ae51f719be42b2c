"""The simulated SMS gateway speaks CM.com's Business Messaging API: what it accepts, what it refuses, and that a
message shows only once its simulated delay has passed."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from sms_sim.main import DEVELOPMENT_TOKEN, create_app


def request(content: str = "Bekijk: https://m.example/c/abc", number: str = "0031612345678") -> dict:
    return {
        "messages": {
            "authentication": {"productToken": DEVELOPMENT_TOKEN},
            "msg": [
                {
                    "allowedChannels": ["SMS"],
                    "from": "Politie",
                    "to": [{"number": number}],
                    "body": {"type": "auto", "content": content},
                    "reference": "link-1",
                }
            ],
        }
    }


@pytest.fixture
def gateway() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(delay_seconds=0)), base_url="http://sms")


async def test_a_message_is_accepted_in_cm_shape_and_shown(gateway: httpx.AsyncClient) -> None:
    answer = await gateway.post("/v1.0/message", json=request())
    assert answer.status_code == 200
    assert answer.json()["errorCode"] == 0 and answer.json()["messages"][0]["status"] == "Accepted"
    (sms,) = (await gateway.get("/messages", params={"to": "0031612345678"})).json()
    assert sms["content"].endswith("/c/abc") and sms["sender"] == "Politie" and sms["reference"] == "link-1"
    page = (await gateway.get("/")).text
    assert '<a href="https://m.example/c/abc">' in page


async def test_wrong_tokens_numbers_and_bodies_are_refused_in_cm_shape(gateway: httpx.AsyncClient) -> None:
    wrong = request()
    wrong["messages"]["authentication"]["productToken"] = "nope"
    assert (await gateway.post("/v1.0/message", json=wrong)).json()["errorCode"] == 101
    for bad in (request(number="+31612345678"), request(number="0612345678"), request(content="")):
        answer = await gateway.post("/v1.0/message", json=bad)
        assert answer.status_code == 400 and answer.json()["errorCode"] == 304
    assert (await gateway.post("/v1.0/message", content=b"{")).status_code == 400
    assert (await gateway.get("/messages")).json() == []


async def test_a_message_arrives_after_the_simulated_delay() -> None:
    app = create_app(delay_seconds=0.3)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sms") as gateway:
        await gateway.post("/v1.0/message", json=request())
        assert (await gateway.get("/messages")).json() == []
        await asyncio.sleep(0.35)
        assert len((await gateway.get("/messages")).json()) == 1
