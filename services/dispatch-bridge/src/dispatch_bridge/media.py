"""Expiring signed URLs for photos: the meldkamer fetches the original and checks its SHA-256."""

from __future__ import annotations

import hashlib
import hmac
import time

from burgermelding_shared.errors import ServiceError


def _signature(secret: str, digest: str, expires: int) -> str:
    return hmac.new(secret.encode(), f"media:{digest}:{expires}".encode(), hashlib.sha256).hexdigest()


def signed_url(base_url: str, secret: str, digest: str, ttl: int) -> str:
    expires = int(time.time()) + ttl
    return f"{base_url.rstrip('/')}/v1/media/{digest}?expires={expires}&signature={_signature(secret, digest, expires)}"


def check_signature(secret: str, digest: str, expires: int, signature: str) -> None:
    if expires < time.time():
        raise ServiceError(403, "media_url_expired", "this photo link has expired",
                           detail_nl="deze fotolink is verlopen")
    if not hmac.compare_digest(signature, _signature(secret, digest, expires)):
        raise ServiceError(403, "media_url_invalid", "this photo link is not valid",
                           detail_nl="deze fotolink is niet geldig")
