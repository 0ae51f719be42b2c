"""The hash of one video frame, run inside the video reader's child process (`video_worker`'s "key_frames"): only
NumPy and pdqhash are imported here, so that the child starts in a fraction of a second."""

from __future__ import annotations

import numpy as np
import pdqhash


def frame_pdq(pixels: np.ndarray) -> list[object]:
    """[PDQ of an upright RGB frame as hex, its quality 0-100]."""
    hashes, quality = pdqhash.compute(np.ascontiguousarray(pixels))
    return [np.packbits(hashes.astype(np.uint8)).tobytes().hex(), int(quality)]
