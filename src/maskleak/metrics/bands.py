"""The band at a mask's edge: outside pixels within ``band_px`` (Euclidean) of the
nearest inpaint pixel, computed exactly and without a distance transform."""

from __future__ import annotations

import math

import numpy as np

from maskleak.errors import InputError


def band_pixels(inpaint: np.ndarray, band_px: int) -> np.ndarray:
    """Bool (H, W): outside pixels (``~inpaint``) whose Euclidean distance to the nearest
    inpaint pixel is <= ``band_px``; empty when ``inpaint`` has no True pixel.

    The same set as ``~inpaint & (scipy.ndimage.distance_transform_edt(~inpaint) <=
    band_px)`` (tested), in booleans: a pixel is in the band exactly when some inpaint
    pixel lies ``dy`` rows and at most ``isqrt(band_px**2 - dy**2)`` columns away, for some
    ``|dy| <= band_px``. The mask is widened row-wise one column at a time, keeping the
    half-widths that occur, and those rows are OR-ed together shifted by ``dy``, all
    within the mask's bounding box grown by ``band_px``: 0.1-0.3 ms where the distance
    transform took 10-15 ms per 640x416 mask."""
    if isinstance(band_px, bool) or not isinstance(band_px, int | np.integer) or band_px < 0:
        raise InputError(f"band_px must be an integer >= 0, got {band_px!r}")
    r = int(band_px)
    height, width = inpaint.shape
    band = np.zeros((height, width), dtype=bool)
    rows = np.flatnonzero(inpaint.any(axis=1))
    if r == 0 or rows.size == 0:
        return band
    if r * r >= (height - 1) ** 2 + (width - 1) ** 2:
        # No two pixels of the image are farther apart than the band is wide.
        return ~inpaint
    cols = np.flatnonzero(inpaint.any(axis=0))
    y0, y1 = max(int(rows[0]) - r, 0), min(int(rows[-1]) + r + 1, height)
    x0, x1 = max(int(cols[0]) - r, 0), min(int(cols[-1]) + r + 1, width)
    crop = inpaint[y0:y1, x0:x1]
    ch, cw = crop.shape

    shifts = range(min(r, ch - 1) + 1)  # row offsets dy that fit in the box
    halves = [math.isqrt(r * r - dy * dy) for dy in shifts]
    # widened[w]: some inpaint pixel at most w columns away in the same row.
    padded = np.zeros((ch, cw + 2 * r), dtype=bool)
    padded[:, r : r + cw] = crop
    widened = {0: crop}
    current = crop.copy()
    for w in range(1, halves[0] + 1):
        np.bitwise_or(current, padded[:, r - w : r - w + cw], out=current)
        np.bitwise_or(current, padded[:, r + w : r + w + cw], out=current)
        if w in halves:
            widened[w] = current.copy()

    near = widened[halves[0]].copy()
    for dy in shifts[1:]:
        hit = widened[halves[dy]]
        near[dy:] |= hit[:-dy]  # an inpaint pixel dy rows above
        near[:-dy] |= hit[dy:]  # ... and dy rows below
    band[y0:y1, x0:x1] = near & ~crop
    return band
