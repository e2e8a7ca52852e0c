"""The study's disc as its mask-size experiment measured it: from the radius formula, not
from the drawn pixels.

The study (thesis Fig 4.10) took the disc's area as ``np.pi * r ** 2`` with ``r`` the
floored radius of :func:`maskleak.masks.circle_radius_px` (a float there, an exact
integer value), plotted its MSE against ``pi r² / (w h)`` and divided that MSE by the
"outside count" ``w h - pi r²``. The drawn disc (PIL's ellipse, 2r+1 px wide) has
more pixels: 87 061 where ``pi r²`` = 86 569.7 for 640x416 at p = 80, so the counted
outside count is 0.05-0.3 % smaller than the analytic one at 640x416 (p = 20-80), and
up to several % on small test images."""

from __future__ import annotations

import math
import numbers

from maskleak.errors import InputError


def check_radius_px(radius_px: object, width: int, height: int) -> int:
    """``radius_px`` as an int; InputError unless it is an integer >= 0 whose analytic
    disc ``pi r²`` is smaller than the ``width`` x ``height`` image (the study's radius,
    at most half the shorter side, always is)."""
    if isinstance(radius_px, bool) or not isinstance(radius_px, numbers.Integral) or radius_px < 0:
        raise InputError(f"radius_px must be an integer >= 0, got {radius_px!r}")
    radius_px = int(radius_px)
    if disc_area_thesis(radius_px) >= width * height:
        raise InputError(
            f"radius_px={radius_px}: the disc's area pi*r^2 is not smaller than the "
            f"{width}x{height} image"
        )
    return radius_px


def disc_area_thesis(radius_px: int) -> float:
    """The disc's area in px² as the study computed it: ``pi * r**2`` (float64)."""
    # r**2 is an exact integer, so this is bit for bit the study's np.pi * r ** 2 with r
    # an integer-valued np.float64.
    return math.pi * radius_px**2


def area_frac_thesis(width: int, height: int, radius_px: int) -> float:
    """The study's x axis of Fig 4.10: ``pi r² / (w h)``, a fraction (at most pi/4 for
    the study's radii, which are at most half the shorter side)."""
    return disc_area_thesis(radius_px) / (width * height)


def outside_count_thesis(width: int, height: int, radius_px: int) -> float:
    """The study's number of pixels outside the disc: ``w h - pi r²`` (a float, > 0 for
    any radius :func:`check_radius_px` accepts)."""
    return width * height - disc_area_thesis(radius_px)
