"""C2PA content credentials: absent, valid or invalid, validated with the C2PA reference library (c2pa-python).

Absence means nothing (few phones sign their photos yet). A valid manifest says who signed the picture and
that the pixels are the ones signed; an invalid one means the file was changed after signing, or the
credentials are forged or broken. The library's full read costs about 65 ms on a 12 MP JPEG even without a
manifest, three times the whole per-photo budget, so a cheap scan of the file's segments decides first
whether there is anything to validate.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from typing import Literal

import c2pa

log = logging.getLogger(__name__)

CredentialsState = Literal["absent", "valid", "invalid", "unchecked"]
# Our media types as the C2PA library names them.
C2PA_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "HEIF": "image/heif"}
# Without a configured trust list every signer is "untrusted"; that is not a sign of tampering.
NOT_TAMPERING = {"signingCredential.untrusted", "signingCredential.ocsp.skipped"}


@dataclass
class ContentCredentials:
    state: CredentialsState
    signer: str | None = None  # the signing certificate's organisation and name
    failures: list[str] = field(default_factory=list)  # the library's validation failure codes


def manifest_may_be_present(data: bytes, pillow_format: str | None) -> bool:
    """Whether the file can carry a C2PA manifest store: JUMBF in a JPEG APP11 segment or a PNG caBX chunk.
    Other formats (WebP, HEIF) are always handed to the library, which is rare and so affordable."""
    if pillow_format == "PNG":
        return b"caBX" in data
    if pillow_format != "JPEG":
        return True
    position = 2
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker in (0xD9, 0xDA):  # end of image / start of scan: no more metadata segments
            break
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if marker == 0xEB and b"c2pa" in data[position + 4 : position + 2 + length]:
            return True
        position += 2 + length
    return False


def read_content_credentials(data: bytes, pillow_format: str | None) -> ContentCredentials:
    """Validate the file's C2PA manifest, if it has one. Never raises: a library fault is `unchecked`."""
    media_type = C2PA_FORMATS.get(pillow_format or "")
    if media_type is None or not manifest_may_be_present(data, pillow_format):
        return ContentCredentials("absent")
    try:
        reader = c2pa.Reader.try_create(media_type, io.BytesIO(data))
    except c2pa.C2paError as exc:  # a manifest is there but cannot be read: broken or forged
        return ContentCredentials("invalid", failures=[f"manifest.unreadable: {str(exc)[:200]}"])
    except Exception:
        log.exception("C2PA validation failed")
        return ContentCredentials("unchecked")
    if reader is None:
        return ContentCredentials("absent")
    with reader:
        state = reader.get_validation_state()
        results = reader.get_validation_results() or {}
        manifest = reader.get_active_manifest() or {}
    failures = [f.get("code", "?") for f in (results.get("activeManifest") or {}).get("failure", [])]
    signature = manifest.get("signature_info") or {}
    signer = " / ".join(str(part) for part in (signature.get("issuer"), signature.get("common_name")) if part)
    tampering = [code for code in failures if code not in NOT_TAMPERING]
    valid = state in ("Valid", "Trusted") and not tampering
    return ContentCredentials("valid" if valid else "invalid", signer or None, failures)
