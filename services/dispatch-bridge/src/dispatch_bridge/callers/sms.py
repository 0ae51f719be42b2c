"""Sending an SMS: one adapter, for CM.com's Business Messaging gateway (`POST /v1.0/message`, JSON, the product
token in a header and in the body). The simulated gateway (infra/sms-sim) speaks the same API, so development and
the tests run this very adapter; production sets `BM_BRIDGE_SMS_URL=https://gw.messaging.cm.com` and the
product token from the contract with CM.com. Another provider is another class with `send`.
"""

from __future__ import annotations

import logging

import httpx

from burgermelding_shared.errors import ServiceError

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 10.0


class SmsUnavailable(Exception):
    """The gateway did not take the message (down, refused, or no answer in time)."""


def sms_unavailable() -> ServiceError:
    return ServiceError(
        503,
        "sms_unavailable",
        "the SMS could not be sent, so the link was ended at once: try again",
        detail_nl="De sms kon niet worden verstuurd, dus de link is meteen beëindigd: probeer het opnieuw",
        headers={"Retry-After": "5"},
    )


class CmSmsGateway:
    def __init__(self, base_url: str, product_token: str, sender: str) -> None:
        self.url = base_url.rstrip("/") + "/v1.0/message"
        self.product_token, self.sender = product_token, sender

    async def send(self, number: str, text: str, reference: str) -> None:
        """Send `text` to `number` (E.164, +31612345678). Raises SmsUnavailable unless the gateway accepted it.
        The number is in the request only: never in a log line."""
        body = {
            "messages": {
                "authentication": {"productToken": self.product_token},
                "msg": [
                    {
                        "allowedChannels": ["SMS"],
                        "from": self.sender,
                        "to": [{"number": "00" + number.removeprefix("+")}],
                        "body": {"type": "auto", "content": text},
                        "reference": reference[:32],
                    }
                ],
            }
        }
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as client:
                answer = await client.post(self.url, json=body, headers={"X-CM-PRODUCTTOKEN": self.product_token})
            result = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("SMS gateway unreachable: %s", type(exc).__name__, extra={"reference": reference})
            raise SmsUnavailable(type(exc).__name__) from exc
        accepted = answer.status_code == 200 and result.get("errorCode") == 0
        if not accepted:
            log.warning(
                "SMS gateway refused the message",
                extra={"reference": reference, "status": answer.status_code, "error_code": result.get("errorCode")},
            )
            raise SmsUnavailable(str(result.get("details", ""))[:200])
