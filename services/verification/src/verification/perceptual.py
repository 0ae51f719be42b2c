"""PDQ (Meta's 256-bit perceptual hash), sharpness and the embedded EXIF thumbnail."""

from __future__ import annotations

import io

import numpy as np
import pdqhash
from PIL import Image

from verification.phash import phash


def pdq_bytes(bits: np.ndarray) -> bytes:
    """256 bits (0/1 array) packed into 32 bytes, most significant bit first."""
    return np.packbits(bits.astype(np.uint8)).tobytes()


def pdq_hashes(image: Image.Image) -> tuple[bytes, list[bytes], int]:
    """(PDQ of the image, PDQ of its 8 rotations and mirrors, quality 0-100)."""
    pixels = np.asarray(image.convert("RGB"))
    hashes, qualities = pdqhash.compute_dihedral(pixels)
    quality = qualities if isinstance(qualities, int) else qualities[0]  # the binding returns one quality
    return pdq_bytes(hashes[0]), [pdq_bytes(h) for h in hashes], int(quality)


def sharpness(image: Image.Image) -> float:
    """How sharp the picture is, 0-100: the spread of its Laplacian (edges) on the normalised 256-px image,
    so every photo is measured at one scale. A blurred or shaken photo scores low; it is shown to the
    dispatcher after the sharp ones of the same event."""
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    if grey.shape[0] < 3 or grey.shape[1] < 3:
        return 0.0
    laplacian = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * grey[1:-1, 1:-1]
    return round(float(min(100.0, laplacian.std())), 2)


def embedded_thumbnail(image: Image.Image) -> Image.Image | None:
    """The JPEG thumbnail inside the EXIF block, if any (cameras and phones write one; editors often keep the
    old one while changing the image, which is what the thumbnail check looks for)."""
    raw = image.info.get("exif")
    if not raw or len(raw) < 16:
        return None
    start = raw.find(b"\xff\xd8\xff", 8)
    if start < 0:
        return None
    end = raw.find(b"\xff\xd9", start)
    try:
        thumbnail = Image.open(io.BytesIO(raw[start : end + 2 if end > 0 else len(raw)]))
        thumbnail.load()
    except Exception:
        return None
    return thumbnail if 16 <= max(thumbnail.size) <= 1024 else None


ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transpose that makes an image stored that way upright (as ImageOps.exif_transpose).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def upright(image: Image.Image, orientation: int) -> Image.Image:
    """An image stored with this EXIF orientation, turned upright (a thumbnail shares its photo's)."""
    method = _UPRIGHT.get(orientation)
    return image.transpose(method) if method is not None else image


def thumbnail_distance(image: Image.Image, thumbnail: Image.Image) -> int:
    """pHash distance between the image and its thumbnail (both upright)."""
    return (phash(image) ^ phash(thumbnail)).bit_count()
