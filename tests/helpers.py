"""Helpers the tests share: real image files with real EXIF, and report bodies."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any


def make_jpeg(width: int = 640, height: int = 480, color: tuple[int, int, int] = (40, 120, 200),
              exif: dict[int, Any] | None = None, exif_ifd: dict[int, Any] | None = None,
              gps: dict[int, Any] | None = None, quality: int = 90, pattern: int = 0) -> bytes:
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
    body = {"category": "burglary", "description": "Twee mannen bij de achterdeur",
            "location": {"lat": 52.0907, "lon": 5.1214}, "observed_at": datetime.now(UTC).isoformat(),
            "in_progress": False}
    body.update(overrides)
    return body


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
