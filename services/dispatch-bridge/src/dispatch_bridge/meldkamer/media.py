"""Signed links by which the meldkamer fetches a report's photos."""

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


LATEST_EXPIRY = 10**11  # the year 5138: any link claiming to live longer was not made here


def check_signature(secret: str, digest: str, expires: int, signature: str) -> None:
    invalid = ServiceError(
        403, "media_url_invalid", "this photo link is not valid", detail_nl="deze fotolink is niet geldig"
    )
    # Bounded before any arithmetic: a huge number would overflow the comparison with the clock (a 500).
    if not 0 <= expires <= LATEST_EXPIRY:
        raise invalid
    if expires < time.time():
        raise ServiceError(
            403, "media_url_expired", "this photo link has expired", detail_nl="deze fotolink is verlopen"
        )
    # As bytes: a signature with characters outside ASCII is simply wrong, not an error of ours.
    if not hmac.compare_digest(signature.encode(), _signature(secret, digest, expires).encode()):
        raise invalid
