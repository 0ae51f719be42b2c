"""64-bit perceptual hash (pHash): DCT of a 32x32 greyscale image, low 8x8 frequencies against their median.

Written with NumPy rather than imagehash so that it runs on the already reduced decode (imagehash would
resample again and pulls in SciPy); the bit order matches imagehash's (row-major, most significant first).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

_N = 32
_k = np.arange(_N)
# DCT-II basis; the constant factors do not matter because every coefficient is compared with a median.
_DCT = np.cos(np.pi * (2 * _k[None, :] + 1) * _k[:, None] / (2 * _N))


def phash(image: Image.Image) -> int:
    # reducing_gap: a box reduction first, then Lanczos for the last step (5x faster, same hash in practice).
    small = image.convert("L").resize((_N, _N), Image.Resampling.LANCZOS, reducing_gap=2.0)
    pixels = np.asarray(small, dtype=np.float64)
    low = (_DCT @ pixels @ _DCT.T)[:8, :8]
    bits = (low > np.median(low)).flatten()
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return value


def to_signed(value: int) -> int:
    """Unsigned 64-bit -> signed, for databases without unsigned 64-bit integers."""
    return value - (1 << 64) if value >= 1 << 63 else value


def to_unsigned(value: int) -> int:
    return value + (1 << 64) if value < 0 else value


def hamming(a: int, b: int) -> int:
    return (to_unsigned(a) ^ to_unsigned(b)).bit_count()
