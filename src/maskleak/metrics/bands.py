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
    band_px)`` (tested), in integers: a pixel is in the band exactly when some inpaint
    pixel lies ``dy`` rows and at most ``isqrt(band_px**2 - dy**2)`` columns away, for some
    ``|dy| <= band_px``. Each such half-width is a window count over row prefix sums, and
    the rows are OR-ed together, all within the mask's bounding box grown by ``band_px``:
    a fraction of a millisecond where the distance transform took 10 ms per 640x416 mask."""
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

    # prefix[:, j] = inpaint pixels in columns < j of a row padded with r zeros each side,
    # so the count in columns x-w..x+w is prefix[:, x+r+w+1] - prefix[:, x+r-w].
    prefix = np.zeros((ch, cw + 2 * r + 1), dtype=np.int32)
    np.cumsum(crop, axis=1, out=prefix[:, r + 1 : r + 1 + cw])
    prefix[:, r + 1 + cw :] = prefix[:, r + cw : r + cw + 1]

    near = np.zeros((ch, cw), dtype=bool)
    for dy in range(min(r, ch - 1) + 1):
        half = math.isqrt(r * r - dy * dy)
        hit = prefix[:, r + half + 1 : r + half + 1 + cw] > prefix[:, r - half : r - half + cw]
        if dy == 0:
            near |= hit
        else:
            near[dy:] |= hit[:-dy]  # an inpaint pixel dy rows above
            near[:-dy] |= hit[dy:]  # ... and dy rows below
    band[y0:y1, x0:x1] = near & ~crop
    return band
