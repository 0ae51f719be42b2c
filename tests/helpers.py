"""Helpers the tests share: real image files with real EXIF, report bodies as the app sends them, and an app
installation registered as the app does it."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any


def make_jpeg(
    width: int = 640,
    height: int = 480,
    color: tuple[int, int, int] = (40, 120, 200),
    exif: dict[int, Any] | None = None,
    exif_ifd: dict[int, Any] | None = None,
    gps: dict[int, Any] | None = None,
    quality: int = 90,
    pattern: int = 0,
) -> bytes:
    """A real JPEG written by Pillow, with real EXIF. `pattern` draws distinct content so hashes differ."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), color)
    draw = ImageDraw.Draw(image)
    for i in range(6):
        x = (pattern * 97 + i * 53) % max(1, width - 60)
        y = (pattern * 61 + i * 37) % max(1, height - 60)
        fill = ((pattern * 50 + i * 40) % 256, 255 - i * 30, i * 40)
        draw.rectangle([x, y, x + width // 5, y + height // 6], fill=fill)
    tags = Image.Exif()
    for tag, value in (exif or {}).items():
        tags[tag] = value
    if exif_ifd:
        sub = tags.get_ifd(0x8769)
        sub.update(exif_ifd)
    if gps:
        gps_ifd = tags.get_ifd(0x8825)
        gps_ifd.update(gps)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, exif=tags.tobytes())
    return buffer.getvalue()


def exif_time(moment: datetime) -> str:
    return moment.strftime("%Y:%m:%d %H:%M:%S")


def gps_tags(lat: float, lon: float) -> dict[int, Any]:
    def dms(value: float) -> tuple[float, float, float]:
        value = abs(value)
        degrees = int(value)
        minutes = int((value - degrees) * 60)
        seconds = round((value - degrees - minutes / 60) * 3600, 4)
        return (float(degrees), float(minutes), seconds)

    return {1: "N" if lat >= 0 else "S", 2: dms(lat), 3: "E" if lon >= 0 else "W", 4: dms(lon)}


def report_json(**overrides: Any) -> dict[str, Any]:
    body = {
        "category": "burglary",
        "description": "Twee mannen bij de achterdeur",
        "location": {"lat": 52.0907, "lon": 5.1214},
        "observed_at": datetime.now(UTC).isoformat(),
        "in_progress": False,
    }
    body.update(overrides)
    return body


def report_parts(body: Any, photos: Sequence[bytes | tuple[str, bytes, str]] = ()) -> list[tuple[str, Any]]:
    """The multipart parts of a report as the app sends it (httpx's `files=`): the report as JSON (a dict, or text
    sent as it is; None for none), then its photos, each bytes (a JPEG) or (file name, bytes, content type)."""
    parts: list[tuple[str, Any]] = []
    if body is not None:
        parts.append(
            ("report", (None, body if isinstance(body, (str, bytes)) else json.dumps(body), "application/json"))
        )
    parts += [
        ("photos", photo if isinstance(photo, tuple) else (f"photo{n}.jpg", photo, "image/jpeg"))
        for n, photo in enumerate(photos)
    ]
    return parts


def redeeming(challenge: dict[str, Any]) -> dict[str, str]:
    """The body that redeems an installation challenge: the challenge and its proof of work, solved as the app
    solves it."""
    from report_intake.installations.registration import solve

    return {
        "challenge": challenge["challenge"],
        "solution": solve(challenge["challenge"], challenge["difficulty_bits"]),
    }


def register_installation_at(intake_url: str, address: str | None = None, client: Any = None) -> dict[str, Any]:
    """Register an app installation with a running intake over HTTP (challenge, proof of work, redeem), from
    `address` as the proxy says (X-Forwarded-For): the answer, with its credential and installation id."""
    import httpx

    headers = {"X-Forwarded-For": address} if address else {}
    http = client or httpx.Client(timeout=60)
    try:
        challenge = http.post(f"{intake_url}/v1/installations/challenges", headers=headers).json()
        answer = http.post(f"{intake_url}/v1/installations", headers=headers, json=redeeming(challenge))
    finally:
        if client is None:
            http.close()
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def make_scene(seed: int, size: tuple[int, int] = (1200, 900)) -> Any:
    """A photo-like picture (smooth colour fields and shapes; enough texture for PDQ), different per seed."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    field = (rng.random((9, 12, 3)) * 255).astype(np.uint8)
    image = Image.fromarray(field).resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = int(rng.integers(0, size[0] - 100)), int(rng.integers(0, size[1] - 100))
        w, h = int(rng.integers(40, 300)), int(rng.integers(40, 300))
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x, y, x + w, y + h], fill=color)
    return image


def jpeg_bytes(image: Any, quality: int = 90, exif: bytes | None = None) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality, **({"exif": exif} if exif else {}))
    return buffer.getvalue()


def sign_with_content_credentials(jpeg: bytes) -> bytes:
    """The JPEG with C2PA content credentials, signed by the C2PA reference library under a throwaway
    certificate chain (a test CA and a leaf with the key usages C2PA asks of a signer)."""
    import datetime as dt
    import json

    import c2pa
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(common_name: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Burgermelding test"),
            ]
        )

    def usage(signer: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=not signer,
            crl_sign=not signer,
            encipher_only=False,
            decipher_only=False,
        )

    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def certificate(subject: str, public_key: Any, signer: bool) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name("Test CA"))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=not signer, path_length=None), critical=True)
            .add_extension(usage(signer), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )

    ca = certificate("Test CA", ca_key.public_key(), signer=False).sign(ca_key, hashes.SHA256())
    leaf = (
        certificate("Test camera", key.public_key(), signer=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, ca))
    private_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    signer = c2pa.Signer.from_info(
        c2pa.C2paSignerInfo(alg=b"es256", sign_cert=chain, private_key=private_key, ta_url=None)
    )
    manifest = {
        "claim_generator_info": [{"name": "burgermelding-tests", "version": "1"}],
        "format": "image/jpeg",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture",
                        }
                    ]
                },
            }
        ],
    }
    out = io.BytesIO()
    with c2pa.Builder(json.dumps(manifest)) as builder:
        builder.sign(signer, "image/jpeg", io.BytesIO(jpeg), out)
    return out.getvalue()


def camera_exif(lat: float, lon: float, when: datetime, make: str = "Google", model: str = "Pixel 8") -> bytes:
    """EXIF as a phone camera writes it: make, model, firmware, capture time with its offset, and GPS."""
    from PIL import Image

    tags = Image.Exif()
    tags[0x010F], tags[0x0110], tags[0x0131] = make, model, "HDR+ 1.0.641377693"
    tags.get_ifd(0x8769).update({0x9003: exif_time(when.astimezone(UTC)), 0x9011: "+00:00"})
    tags.get_ifd(0x8825).update(gps_tags(lat, lon))
    return tags.tobytes()


def phone_photo(
    seed: int,
    lat: float,
    lon: float,
    when: datetime | None = None,
    size: tuple[int, int] = (1600, 1200),
    noise: float = 6.0,
    quality: int = 90,
) -> bytes:
    """A photo as a phone sends it: a scene of its own (so no two are duplicates), sensor-like noise (so it
    compresses and decodes like a real photo, not like a flat synthetic one) and real camera EXIF with GPS."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed + 1_000_003)
    scene = np.asarray(make_scene(seed, size), dtype=np.int16)
    # Grain from a 256-px tile of Gaussian noise, shifted per photo: looks the same to JPEG (which works on 8x8
    # blocks) as noise drawn for every pixel, at a fraction of the cost for 12 MP.
    tile = rng.normal(0.0, noise, (256, 256, 3)).astype(np.int16)
    reps = (size[1] // 256 + 2, size[0] // 256 + 2, 1)
    dy, dx = (int(v) for v in rng.integers(0, 256, 2))
    grain = np.tile(tile, reps)[dy : dy + size[1], dx : dx + size[0]]
    image = Image.fromarray(np.clip(scene + grain, 0, 255).astype(np.uint8))
    return jpeg_bytes(image, quality=quality, exif=camera_exif(lat, lon, when or datetime.now(UTC)))


def heic_photo(jpeg: bytes, lat: float, lon: float, when: datetime | None = None, model: str = "iPhone 15") -> bytes:
    """The photo as an iPhone sends it: HEVC in a HEIF file (2 to 3 MB for 12 MP), camera EXIF with GPS."""
    import io

    from PIL import Image
    from pillow_heif import register_heif_opener

    register_heif_opener()
    out = io.BytesIO()
    with Image.open(io.BytesIO(jpeg)) as im:
        im.save(
            out,
            "HEIF",
            quality=55,
            exif=camera_exif(lat, lon, when or datetime.now(UTC), "Apple", model),
            enc_params={"preset": "ultrafast"},
        )
    return out.getvalue()
