"""The step across a mask's edge: how sharply an image changes between each inside pixel
and its outside 4-neighbours. On an inpainting pasted back (the original outside, the
decoded image inside) the two sides no longer come from one image, and the step there
exceeds the original's own gradient at the same pixels: that excess is the seam the
paste-back leaves. An error against the original inside the edge cannot show it (soft
paste-back blends the original in there, hard paste-back changes nothing inside)."""

from __future__ import annotations

import math

import numpy as np


def edge_pairs(inpaint: np.ndarray) -> np.ndarray:
    """intp (2, n_pairs): every pair of 4-neighbour pixels (p, q) of bool (H, W)
    ``inpaint`` (True = inpaint) with p inside and q outside, as flat row-major pixel
    indices: row 0 the inside pixel p, row 1 the outside pixel q. Horizontal pairs first
    (row-major by the left pixel), then vertical ones (row-major by the upper pixel).
    An inside pixel appears once per outside neighbour (up to 4 times)."""
    height, width = inpaint.shape
    index = np.arange(height * width, dtype=np.intp).reshape(height, width)
    sides = []
    for first, second in (
        (inpaint[:, :-1], inpaint[:, 1:]),  # (y, x) and (y, x + 1)
        (inpaint[:-1, :], inpaint[1:, :]),  # (y, x) and (y + 1, x)
    ):
        cut = first != second
        a = index[: first.shape[0], : first.shape[1]][cut]
        b = index[height - second.shape[0] :, width - second.shape[1] :][cut]
        a_inside = first[cut]
        sides.append((np.where(a_inside, a, b), np.where(a_inside, b, a)))
    inside = np.concatenate([s[0] for s in sides])
    outside = np.concatenate([s[1] for s in sides])
    return np.stack([inside, outside]).astype(np.intp, copy=False)


def step_sum(planar: np.ndarray, pairs: np.ndarray) -> int:
    """Exact sum over ``pairs`` (:func:`edge_pairs`) and the 3 channels of |v[p] - v[q]|
    for uint8 (3, H*W) ``planar`` pixel values (8-bit levels); 0 for no pair. One
    gather of both sides, differences in int16, summed in int64 (at most
    255 x 3 x 2 H W: exact)."""
    if pairs.shape[1] == 0:
        return 0
    both = np.take(planar, pairs, axis=1)  # (3, 2, n_pairs)
    step = both[:, 0].astype(np.int16)
    step -= both[:, 1]
    np.abs(step, out=step)
    return int(step.sum(dtype=np.int64))


def mean_step(total: int, n_pairs: int) -> float:
    """Per-element mean of a :func:`step_sum` over ``n_pairs`` pairs x 3 channels (8-bit
    levels); NaN for no pair."""
    return math.nan if n_pairs == 0 else total / (3 * n_pairs)
