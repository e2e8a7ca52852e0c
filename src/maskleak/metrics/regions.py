"""Everything about a mask (and an image's flat/textured map) that does not depend on
the inpainting, computed once and shared by all inpaintings made with that mask."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maskleak.metrics.bands import band_pixels

# Each pixel gets one label: 0 inside; outside, 1 plus the bits that apply. Summing a
# per-pixel quantity by label once then gives its sum over every group below.
_FLAT_BIT, _TEXTURED_BIT, _FAR_BIT = 1, 2, 4
N_LABELS = 1 + (_FLAT_BIT | _TEXTURED_BIT | _FAR_BIT) + 1  # 9

#: The pixel groups the metrics report, in the order of Region.sizes and group_sums().
GROUPS = ("inside", "outside", "band", "far", "flat", "textured")
INSIDE, OUTSIDE, BAND, FAR, FLAT, TEXTURED = range(len(GROUPS))


def _members(label: int) -> list[int]:
    """The groups of a label, as a 0/1 row over GROUPS."""
    if label == 0:
        return [1, 0, 0, 0, 0, 0]
    bits = label - 1
    far = int(bool(bits & _FAR_BIT))
    flat, textured = int(bool(bits & _FLAT_BIT)), int(bool(bits & _TEXTURED_BIT))
    return [0, 1, 1 - far, far, flat, textured]


#: (len(GROUPS), N_LABELS): 1 where a label belongs to a group. Sums by label times this
#: are sums by group; float64, like the label sums, and exact for integers below 2^53.
MEMBERSHIP = np.array([_members(label) for label in range(N_LABELS)], dtype=np.float64).T

_U32 = 2**32
_MAX_SQUARE = 255**2


@dataclass(frozen=True)
class Region:
    """One mask's pixel partition in the forms the arithmetic uses.

    ``starts``/``run_labels`` cut the row-major (H*W*3) element sequence into runs of one
    label that never cross a row, so a run's sum of squared errors fits ``run_dtype``;
    ``keep_elements`` (uint8, 255 outside, 0 inside, per element) zeroes the inside
    with one AND."""

    band_px: int
    sizes: tuple[int, ...]  # pixels per group of GROUPS
    starts: np.ndarray  # intp: first element (pixel index * 3) of each run
    run_labels: np.ndarray  # intp: label of each run
    run_dtype: type[np.unsignedinteger]  # exact for any run's sum of squares
    sum_dtype: type[np.unsignedinteger]  # exact for a whole-image sum of values <= 255
    keep_elements: np.ndarray


def build_region(
    inpaint: np.ndarray,
    band_px: int,
    flat: np.ndarray | None = None,
    textured: np.ndarray | None = None,
) -> Region:
    """The :class:`Region` of bool (H, W) ``inpaint`` (True = inpaint) with the band of
    :func:`band_pixels` and, when given, the bool (H, W) ``flat``/``textured`` content
    (shapes must already match; the caller checks them)."""
    width = inpaint.shape[1]
    outside = ~inpaint
    labels = outside.astype(np.uint8)  # 1 for every outside pixel
    labels += np.uint8(_FAR_BIT) * (outside & ~band_pixels(inpaint, band_px))
    if flat is not None:
        labels += np.uint8(_FLAT_BIT) * (outside & flat)
    if textured is not None:
        labels += np.uint8(_TEXTURED_BIT) * (outside & textured)

    flat_labels = labels.reshape(-1)
    n = flat_labels.size
    breaks = np.ones(n, dtype=bool)
    if n:
        np.not_equal(flat_labels[1:], flat_labels[:-1], out=breaks[1:])
        breaks[::width] = True
    starts = np.flatnonzero(breaks)
    run_labels = flat_labels[starts].astype(np.intp)
    lengths = np.diff(starts, append=n)
    counts = np.bincount(run_labels, weights=lengths, minlength=N_LABELS)
    keep = outside.reshape(-1)
    return Region(
        band_px=int(band_px),
        sizes=tuple(int(size) for size in MEMBERSHIP @ counts),
        starts=starts * 3,
        run_labels=run_labels,
        run_dtype=np.uint32 if 3 * width * _MAX_SQUARE < _U32 else np.uint64,
        sum_dtype=np.uint32 if 3 * n * 255 < _U32 else np.uint64,
        keep_elements=np.repeat(keep.view(np.uint8) * np.uint8(255), 3),
    )


def group_sums(region: Region, run_sums: np.ndarray) -> list[int]:
    """Exact sums over each group of GROUPS of a quantity summed per run."""
    by_label = np.bincount(region.run_labels, weights=run_sums, minlength=N_LABELS)
    return [int(total) for total in (MEMBERSHIP @ by_label).tolist()]
