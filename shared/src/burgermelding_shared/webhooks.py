"""Signed webhooks in the Standard Webhooks convention: HMAC-SHA256 over `id.timestamp.body`.

Used for the meldkamer's callbacks to the bridge. The receiver refuses a wrong signature and a timestamp
outside the tolerance (a replay of a captured request); a second delivery with the same id inside the
tolerance is a duplicate, which the receiver's inbox ignores.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

from burgermelding_shared.errors import ServiceError

TOLERANCE_SECONDS = 300


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    mac = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signed_headers(secret: str, webhook_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {"webhook-id": webhook_id, "webhook-timestamp": str(ts),
            "webhook-signature": sign(secret, webhook_id, ts, body)}


def verify(secret: str, headers: dict[str, str], body: bytes, tolerance: int = TOLERANCE_SECONDS) -> str:
    """The webhook id of a correctly signed, fresh request; raises 401 otherwise."""
    webhook_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not webhook_id or len(webhook_id) > 128 or not timestamp.isdigit() or not signatures:
        raise ServiceError(401, "unsigned_callback", "webhook-id, webhook-timestamp and webhook-signature "
                                                     "headers are required",
                           detail_nl="de headers webhook-id, webhook-timestamp en webhook-signature zijn "
                           "verplicht")
    if abs(time.time() - int(timestamp)) > tolerance:
        raise ServiceError(401, "stale_callback", "callback timestamp is outside the accepted window",
                           detail_nl="het tijdstip van de terugmelding valt buiten het toegestane venster")
    expected = sign(secret, webhook_id, int(timestamp), body)
    # The header may carry several space-separated signatures (key rotation); one valid one suffices.
    if not any(hmac.compare_digest(candidate, expected) for candidate in signatures.split()):
        raise ServiceError(401, "bad_signature", "callback signature does not match",
                           detail_nl="de handtekening van de terugmelding klopt niet")
    return webhook_id


@dataclass
class WebhookDestination:
    """An outbox destination authenticated by signing the body (the meldkamer's callbacks)."""

    base_url: str
    secret: str

    def headers_for(self, body: bytes, message_id: str) -> dict[str, str]:
        return signed_headers(self.secret, message_id, body)
