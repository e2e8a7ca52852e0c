"""Structural similarity (SSIM) maps of an inpainting against its original.

The map of ``skimage.metrics.structural_similarity(original, inpainted, full=True,
channel_axis=2, data_range=255)`` with its defaults: a 7x7 uniform window
(``scipy.ndimage.uniform_filter``, borders mirrored as its 'reflect' mode does), sample
covariances (49/48), K1 = 0.01, K2 = 0.03; one map per RGB channel.

The window sums of x, y, x², y² and xy over 8-bit values are exact integers (int32: at most
49 x 255² = 3.2e6), and so are the numerators below after multiplying out 49 and 48 (at most
3.2e8); only the last ratio is taken in float32. This agrees with skimage's float64 map to
about 1e-6 (tested) at a third of its time; the original's sums are computed once per
image."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

WINDOW_PX = 7
_HALF = WINDOW_PX // 2
_N = WINDOW_PX * WINDOW_PX  # 49 pixels per window
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2
# The constants in the scaled numerators: A1, B1 times 49², A2, B2 times 49 x 48.
_C1_SCALED = np.float32(_C1 * _N * _N)
_C2_SCALED = np.float32(_C2 * _N * (_N - 1))


def _padded(pixels: np.ndarray) -> np.ndarray:
    """int32 (3, H + 6, W + 6): the channels of uint8 (H, W, 3) mirrored by 3 px."""
    planar = np.moveaxis(pixels, 2, 0).astype(np.int32)
    return np.pad(planar, ((0, 0), (_HALF, _HALF), (_HALF, _HALF)), mode="symmetric")


def _running_dtype(cols: int) -> type[np.signedinteger]:
    # A row's running sum of squares reaches cols x 255²: int32 up to 33 000 px wide.
    return np.int32 if cols * 255**2 < 2**31 else np.int64


def _window_sums(padded: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """int32 (C, R, W): the sum over each pixel's 7x7 window of ``padded``'s values,
    int32 (C, R + 6, W + 6)."""
    channels, rows, cols = padded.shape
    height, width = rows - 2 * _HALF, cols - 2 * _HALF
    running = np.zeros((channels, rows, cols + 1), dtype=_running_dtype(cols))
    np.cumsum(padded, axis=2, out=running[:, :, 1:])
    across = running[:, :, WINDOW_PX:] - running[:, :, :width]  # (C, rows, W)
    if out is None:
        out = np.empty((channels, height, width), dtype=np.int32)
    np.add(across[:, :height], across[:, 1 : height + 1], out=out, casting="unsafe")
    for dy in range(2, WINDOW_PX):
        np.add(out, across[:, dy : dy + height], out=out, casting="unsafe")
    return out


@dataclass(frozen=True)
class SsimReference:
    """An original's part of the SSIM arithmetic, computed once per image."""

    padded: np.ndarray  # int32 (3, H + 6, W + 6)
    sums: np.ndarray  # int32 (3, H, W): window sums of x
    sum_squares: np.ndarray  # int32 (3, H, W): squared window sums of x
    spread: np.ndarray  # int32 (3, H, W): 49 sum(x²) - sum(x)², 49 x 48 times x's variance


def ssim_reference(original: np.ndarray) -> SsimReference | None:
    """The :class:`SsimReference` of uint8 (H, W, 3) ``original``; None for an image
    narrower or lower than the 7 px window (skimage refuses those)."""
    if min(original.shape[:2]) < WINDOW_PX:
        return None
    padded = _padded(original)
    sums = _window_sums(padded)
    square_sums = sums * sums
    spread = _N * _window_sums(padded * padded) - square_sums
    return SsimReference(padded, sums, square_sums, spread)


# The map is computed a strip of rows at a time, about this many pixels, so that its
# dozen work arrays stay in the CPU's cache (a fifth faster at 640 px wide than whole
# images); a small image is one strip.
_STRIP_PIXELS = 32768


class _Strip(threading.local):
    """Each thread's work arrays for one strip of a given width, reused."""

    key: tuple[int, int] = (-1, -1)

    def arrays(self, rows: int, width: int) -> dict[str, np.ndarray]:
        if (rows, width) != self.key:
            shape = (3, rows, width)
            self.work = {
                "product": np.empty((3, rows + 2 * _HALF, width + 2 * _HALF), np.int32),
                **{name: np.empty(shape, np.int32) for name in ("sy", "syy", "sxy", "sq")},
                **{name: np.empty(shape, np.float32) for name in ("num", "den")},
            }
            self.key = (rows, width)
        return self.work


_strip = _Strip()


def _strips(reference: SsimReference, inpainted: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, float32 (3, rows, W) SSIM map of those rows), strip by strip; each
    strip's array is reused by the next."""
    y = _padded(inpainted)
    height, width = inpainted.shape[:2]
    strip_rows = max(_STRIP_PIXELS // width, 8)
    for top in range(0, height, strip_rows):
        rows = min(strip_rows, height - top)
        work = _strip.arrays(strip_rows, width)
        ys = y[:, top : top + rows + 2 * _HALF]
        xs = reference.padded[:, top : top + rows + 2 * _HALF]
        cut = (slice(None), slice(top, top + rows))
        sum_x = reference.sums[cut]
        product = work["product"][:, : rows + 2 * _HALF]
        sum_y = _window_sums(ys, work["sy"][:, :rows])
        np.multiply(ys, ys, out=product)
        spread_y = _window_sums(product, work["syy"][:, :rows])
        np.multiply(xs, ys, out=product)
        cross = _window_sums(product, work["sxy"][:, :rows])
        square = work["sq"][:, :rows]
        num, den = work["num"][:, :rows], work["den"][:, :rows]
        # S = (2 ux uy + C1)(2 vxy + C2) / ((ux² + uy² + C1)(vx + vy + C2)), with A1, B1
        # times 49² and A2, B2 times 49 x 48: integer numerators, float32 ratio.
        np.multiply(sum_y, sum_y, out=square)
        spread_y *= _N
        spread_y -= square  # 49 x 48 vy
        spread_y += reference.spread[cut]  # 49 x 48 (vx + vy)
        square += reference.sum_squares[cut]  # 49² (ux² + uy²)
        cross *= _N
        np.multiply(sum_x, sum_y, out=sum_y)  # 49² ux uy
        cross -= sum_y  # 49 x 48 vxy
        cross *= 2
        sum_y *= 2
        np.add(sum_y, _C1_SCALED, out=num)
        np.add(cross, _C2_SCALED, out=den)
        num *= den
        np.add(square, _C1_SCALED, out=den)
        np.add(spread_y, _C2_SCALED, out=spread_y.view(np.float32), casting="unsafe")
        den *= spread_y.view(np.float32)
        num /= den
        yield top, num


def ssim_map(reference: SsimReference, inpainted: np.ndarray) -> np.ndarray:
    """float32 (3, H, W): the SSIM map of each channel, from ``reference`` (of the
    original) and uint8 (H, W, 3) ``inpainted`` of the same shape."""
    height, width = inpainted.shape[:2]
    out = np.empty((3, height, width), dtype=np.float32)
    for top, strip in _strips(reference, inpainted):
        out[:, top : top + strip.shape[1]] = strip
    return out


def ssim_sum(reference: SsimReference, inpainted: np.ndarray, keep: np.ndarray) -> float:
    """The SSIM map of :func:`ssim_map` summed (in float64) over the 3 channels of the
    pixels where float32 (H, W) ``keep`` is 1 (and 0 elsewhere)."""
    total = 0.0
    for top, strip in _strips(reference, inpainted):
        strip *= keep[top : top + strip.shape[1]]
        total += float(np.add.reduce(strip, axis=None, dtype=np.float64))
    return total
