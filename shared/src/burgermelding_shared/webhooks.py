"""Signed webhooks by the Standard Webhooks specification (the `standardwebhooks` package): HMAC-SHA256 over
`id.timestamp.body`, secrets written `whsec_<base64>`.

Used for the meldkamer's callbacks to the bridge. Each secret has a key id, so that it can be rotated without
downtime: the sender signs with every key it holds (the header carries one `v1,<signature>` per key, as the
specification allows), the receiver accepts a signature by any key it holds and counts which key id matched.
A rotation: the receiver adds the new key, the sender signs with old and new, then with the new one only; once
the receiver sees no more signatures by the old key id, it drops it.

The receiver refuses a wrong signature and a timestamp outside the tolerance (a replay of a captured request);
a second delivery with the same id inside the tolerance is a duplicate, which the receiver's inbox ignores.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from standardwebhooks import Webhook

from burgermelding_shared.errors import ServiceError

TOLERANCE_SECONDS = 300  # the package's own window; checked first here to answer with its own reason
DEVELOPMENT_KEY_ID = "dev-only-webhooks"

WebhookKeys = Mapping[str, str]  # key id -> `whsec_...` secret


def development_keys() -> dict[str, str]:
    """The published key development runs on (its id marks it, and production refuses it)."""
    secret = hashlib.sha256(b"burgermelding-development-webhook-key").digest()
    return {DEVELOPMENT_KEY_ID: "whsec_" + base64.b64encode(secret).decode()}


def key_bytes(secret: str) -> bytes:
    """The key a `whsec_<base64>` secret holds; ValueError for anything else (the package itself would quietly
    skip characters that are not base64, and take a secret without its prefix)."""
    if not secret.startswith("whsec_"):
        raise ValueError("not a whsec_<base64> secret")
    body = secret.removeprefix("whsec_")
    return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)


MIN_KEY_BYTES = 24


# The three headers of a signed webhook, as an operation's `openapi_extra`: a receiver's document says what a
# sender must send (Standard Webhooks, https://www.standardwebhooks.com). Required since the receivers were
# written; the documents said so only from dispatch-bridge API 1.2.0 (the mark tells the contract check).
DOCUMENTED_LATE = {"x-burgermelding-documented-late": "required since 1.0.0, documented from 1.2.0"}
SIGNED_WEBHOOK = {
    "parameters": [
        {
            "name": "webhook-id",
            "in": "header",
            "required": True,
            "description": "The message's unique id (the same on a retry of the same message).",
            "schema": {"type": "string", "maxLength": 200},
            **DOCUMENTED_LATE,
        },
        {
            "name": "webhook-timestamp",
            "in": "header",
            "required": True,
            "description": f"Seconds since 1970-01-01 UTC when it was sent; refused beyond {TOLERANCE_SECONDS} s "
            "either way (a replay).",
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
            **DOCUMENTED_LATE,
        },
        {
            "name": "webhook-signature",
            "in": "header",
            "required": True,
            "description": "`v1,<base64 HMAC-SHA256 of '{id}.{timestamp}.{body}'>` under a shared `whsec_` key; "
            "several, space separated, while keys are rotated (any one that matches will do).",
            "schema": {"type": "string", "maxLength": 2000},
            **DOCUMENTED_LATE,
        },
    ]
}


def check_keys(keys: WebhookKeys) -> None:
    """ValueError unless every key has an id and is a `whsec_` secret of base64 (checked at start-up)."""
    if not keys:
        raise ValueError("at least one webhook key is needed")
    for kid, secret in keys.items():
        try:
            key_bytes(secret)
        except ValueError as exc:
            raise ValueError(f"webhook key {kid!r} is not a whsec_<base64> secret") from exc


def secret_fields(setting: str, keys: WebhookKeys) -> dict[str, str]:
    """The keys as entries of the settings' check for placeholder and short secrets: the development key (under
    any id) shows as a placeholder, a key of fewer than MIN_KEY_BYTES bytes as a short value, any other as its
    base64 text (which passes)."""
    published = key_bytes(development_keys()[DEVELOPMENT_KEY_ID])

    def shown(kid: str, secret: str) -> str:
        key = key_bytes(secret)
        if kid.startswith("dev-only-") or key == published:
            return "dev-only-"
        return secret if len(key) >= MIN_KEY_BYTES else "short"

    return {f"{setting}[{kid}]": shown(kid, secret) for kid, secret in keys.items()}


def signed_headers(keys: WebhookKeys, webhook_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The three headers of a webhook, signed with every key in `keys`."""
    ts = int(time.time()) if timestamp is None else timestamp
    moment, data = datetime.fromtimestamp(ts, UTC), body.decode()
    signatures = " ".join(Webhook(secret).sign(webhook_id, moment, data) for secret in keys.values())
    return {"webhook-id": webhook_id, "webhook-timestamp": str(ts), "webhook-signature": signatures}


@dataclass(frozen=True)
class VerifiedWebhook:
    webhook_id: str
    key_id: str  # which of the receiver's keys the signature was made with


def verify(
    keys: WebhookKeys, headers: Mapping[str, str], body: bytes, tolerance: int = TOLERANCE_SECONDS
) -> VerifiedWebhook:
    """The id of a correctly signed, fresh request and the id of the key that signed it; raises 401 otherwise."""
    webhook_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    # ASCII digits only, and few: "²".isdigit() is true and int() of 5,000 digits raises.
    well_formed = timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12
    if not webhook_id or len(webhook_id) > 128 or not well_formed or not headers.get("webhook-signature"):
        raise ServiceError(
            401,
            "unsigned_callback",
            "webhook-id, webhook-timestamp and webhook-signature headers are required",
            detail_nl="de headers webhook-id, webhook-timestamp en webhook-signature zijn verplicht",
        )
    if abs(time.time() - int(timestamp)) > tolerance:
        raise ServiceError(
            401,
            "stale_callback",
            "callback timestamp is outside the accepted window",
            detail_nl="het tijdstip van de terugmelding valt buiten het toegestane venster",
        )
    wanted = {name: headers[name] for name in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    for kid, secret in keys.items():
        try:
            Webhook(secret).verify(body, wanted, json_parse=False)
        except Exception:  # noqa: S112  a mismatch, or a malformed signature or body: try the next key
            continue
        return VerifiedWebhook(webhook_id, kid)
    raise ServiceError(
        401,
        "bad_signature",
        "callback signature does not match",
        detail_nl="de handtekening van de terugmelding klopt niet",
    )


@dataclass
class WebhookDestination:
    """An outbox destination authenticated by signing the body (the meldkamer's callbacks)."""

    base_url: str
    keys: WebhookKeys

    def headers_for(self, body: bytes, message_id: str) -> dict[str, str]:
        return signed_headers(self.keys, message_id, body)
