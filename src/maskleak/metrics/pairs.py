"""Error metrics between an original and its inpainting, split by the mask, and the VAE
floor (:func:`floor_metrics`): the same errors of the image's VAE round trip.

All sums are exact integers (an 8-bit difference squared fits uint16, a row's sum of
squares uint32), so every float metric is an exact integer sum divided once: bit for
bit the value of the plain float64/int64 expressions over boolean masks it replaces
(tests/test_metrics_exact.py), at a fraction of their passes over the pixels."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from maskleak.errors import InputError
from maskleak.metrics.disc import check_radius_px, outside_count_thesis
from maskleak.metrics.regions import (
    BAND,
    FAR,
    FLAT,
    GROUPS,
    INSIDE,
    OUTSIDE,
    TEXTURED,
    Region,
    build_region,
    group_sums,
)

_MAX_PIXEL = 255.0


@dataclass(frozen=True)
class Original:
    """An original image in the form the arithmetic uses, prepared once per image."""

    pixels: np.ndarray  # uint8 (H, W, 3)
    elements: np.ndarray  # uint8 (H*W*3,), row-major, contiguous


def prepare_original(pixels: np.ndarray) -> Original:
    return Original(pixels=pixels, elements=np.ascontiguousarray(pixels).reshape(-1))


class _Scratch(threading.local):
    """Work arrays reused by every call on a thread. Fresh ones cost more than the
    arithmetic: freeing a few MB returns them to the OS, and the next call page-faults
    them back in (1500 faults, 6 ms, per 640x416 inpainting on a VM). One buffer serves
    three arrays in turn, each dead before the next is written, to keep the working set
    (which shares the cache with the PNG decoder's) small."""

    size = -1

    def arrays(self, size: int) -> tuple[np.ndarray, ...]:
        """For ``size`` elements: a uint8 array of ``size + 1`` (last element 0) and its
        bytes as little-endian uint32 at a 3-byte stride (``size // 3`` of them); and,
        sharing another buffer, a uint8 array of ``size``, a uint16 one of ``size`` and
        a uint32 one of ``size // 3``."""
        if size != self.size:
            padded = np.zeros(size + 1, dtype=np.uint8)
            packed = np.ndarray((size // 3,), dtype="<u4", buffer=padded, strides=(3,))
            shared = np.empty(2 * size + 4, dtype=np.uint8)
            self.work = (
                padded,
                packed,
                shared[:size],
                shared[: 2 * size].view(np.uint16),
                shared[: 4 * (size // 3)].view(np.uint32),
            )
            self.size = size
        return self.work


_scratch = _Scratch()


def _mean(total: int, n: int) -> float:
    """Per-element mean of an exact sum over ``n`` pixels x 3 channels; NaN for none."""
    return math.nan if n == 0 else total / (3 * n)


def _squared_error_sums(a: np.ndarray, b: np.ndarray, region: Region) -> list[int]:
    """Exact sums of ``(a - b)²`` over each group of GROUPS, for ``a`` and ``b`` uint8
    (H*W*3,) contiguous. Leaves ``|a - b|`` in this thread's scratch (``padded[:-1]``
    of :meth:`_Scratch.arrays`) for :func:`measure`'s other metrics."""
    # work, square and packed_out share memory: each is dead before the next is written.
    padded, _, work, square, _ = _scratch.arrays(b.size)
    absolute = padded[:-1]
    # |a - b| in uint8 (max - min cannot wrap); its square fits uint16 (255^2 = 65025).
    np.maximum(a, b, out=absolute)
    np.subtract(absolute, np.minimum(a, b, out=work), out=absolute)
    np.square(absolute, out=square, dtype=np.uint16)
    if square.size:
        # Sums over runs of one label (never longer than a row, so run_dtype is exact),
        # then by label and group in float64, exact for integers below 2^53.
        sums = group_sums(region, np.add.reduceat(square, region.starts, dtype=region.run_dtype))
    else:
        sums = [0] * len(GROUPS)
    return sums


#: The keys of :func:`floor_metrics`.
FLOOR_KEYS = ("mse_outside_vae", "mse_outside_band_vae", "mse_outside_far_vae")
#: :func:`floor_metrics` for an inpainting without a VAE round trip (a manifest written
#: before the inpaint job saved one): unknown, NaN.
NO_FLOOR: dict[str, float] = dict.fromkeys(FLOOR_KEYS, math.nan)


def floor_metrics(original: Original, roundtrip: np.ndarray, region: Region) -> dict[str, float]:
    """The VAE floor of the inpaintings made with ``region``'s mask: the true per-element
    MSE between the original and its VAE round trip (encode, decode, no denoising; uint8
    (H, W, 3) of the original's shape, checked by the caller) over the outside pixels,
    the edge band and the far field (keys :data:`FLOOR_KEYS`, NaN for an empty set), by
    the same exact arithmetic as :func:`measure`'s ``mse_outside`` / ``_band`` / ``_far``.
    A latent-diffusion pipeline cannot bring its output nearer the original than this
    (short of pasting pixels back). It is the same for every strength and seed, so the
    table computes it once per image, model and mask."""
    sums = _squared_error_sums(
        original.elements, np.ascontiguousarray(roundtrip).reshape(-1), region
    )
    sizes = region.sizes
    return {
        "mse_outside_vae": _mean(sums[OUTSIDE], sizes[OUTSIDE]),
        "mse_outside_band_vae": _mean(sums[BAND], sizes[BAND]),
        "mse_outside_far_vae": _mean(sums[FAR], sizes[FAR]),
    }


def measure(
    original: Original,
    inpainted: np.ndarray,
    region: Region,
    radius_px: int | None,
    pixel_error: np.ndarray | None = None,
) -> dict[str, Any]:
    """The metrics of :func:`pair_metrics` but the VAE floor's (:func:`floor_metrics`)
    for a checked pair (same shape, uint8 RGB) and a checked ``radius_px``
    (:func:`maskleak.metrics.disc.check_radius_px`) or None. ``pixel_error``, a uint32
    (H*W,) array if given, receives each pixel's squared error summed over R, G, B (the
    exact integers the sums are made of, for :mod:`maskleak.metrics.decompose`)."""
    a = original.elements
    b = np.ascontiguousarray(inpainted).reshape(-1)
    sums = _squared_error_sums(a, b, region)
    if pixel_error is not None:
        # The squares are still in this thread's scratch (the next step overwrites them).
        square = _scratch.arrays(b.size)[3].reshape(-1, 3)
        np.add(square[:, 0], square[:, 1], out=pixel_error, dtype=np.uint32)
        np.add(pixel_error, square[:, 2], out=pixel_error)
    # The same scratch: absolute holds |a - b|; work (and packed_out, sharing its buffer)
    # is free again.
    padded, packed, work, _, packed_out = _scratch.arrays(b.size)
    absolute = padded[:-1]
    sizes = region.sizes
    n_outside = sizes[OUTSIDE]

    values: dict[str, Any] = {
        "n_outside": n_outside,
        "n_inside": sizes[INSIDE],
        "n_outside_band": sizes[BAND],
        "n_outside_flat": sizes[FLAT],
        "n_outside_textured": sizes[TEXTURED],
        "mse_outside": _mean(sums[OUTSIDE], n_outside),
        "mse_inside": _mean(sums[INSIDE], sizes[INSIDE]),
        "mse_outside_band": _mean(sums[BAND], sizes[BAND]),
        "mse_outside_far": _mean(sums[FAR], sizes[FAR]),
        "mse_outside_flat": _mean(sums[FLAT], sizes[FLAT]),
        "mse_outside_textured": _mean(sums[TEXTURED], sizes[TEXTURED]),
    }
    if n_outside == 0:
        nan = math.nan
        values.update(
            mse_outside_thesis=nan,
            psnr_outside=nan,
            mae_outside=nan,
            max_abs_outside=nan,
            frac_changed_outside=nan,
            mse_whitedisc_thesis=nan,
        )
        return values

    # From here on only outside pixels count: the AND with keep_elements (255 outside,
    # 0 inside) zeroes the inside of |a - b|.
    np.bitwise_and(absolute, region.keep_elements, out=absolute)
    abs_sum = int(np.add.reduce(absolute, dtype=region.sum_dtype))
    max_abs = float(np.maximum.reduce(absolute))
    # The thesis script's uint8 arithmetic: a - b wraps mod 256 and so does its square,
    # i.e. each element gives (a - b)^2 mod 256 = |a - b|^2 mod 256, which a uint8
    # multiply computes. It is NOT an MSE; it is kept only for comparability with the
    # published values.
    wrapped = np.multiply(absolute, absolute, out=work)
    wrapped_sum = int(np.add.reduce(wrapped, dtype=region.sum_dtype))

    # Changed outside pixels: a pixel's 3 bytes of |a - b| read as one little-endian
    # uint32 at a 3-byte stride (``packed``; the spare last byte of ``padded`` ends it),
    # masked to 24 bits.
    changed = int(np.count_nonzero(np.bitwise_and(packed, 0xFFFFFF, out=packed_out)))

    mse_outside = values["mse_outside"]
    values.update(
        mse_outside_thesis=_mean(wrapped_sum, n_outside),
        psnr_outside=(
            math.inf if mse_outside == 0 else 10 * math.log10(_MAX_PIXEL**2 / mse_outside)
        ),
        mae_outside=_mean(abs_sum, n_outside),
        max_abs_outside=max_abs,
        frac_changed_outside=changed / n_outside,
        mse_whitedisc_thesis=_whitedisc_thesis(wrapped_sum, b.size, original, radius_px),
    )
    return values


def _whitedisc_thesis(
    wrapped_sum: int, n_elements: int, original: Original, radius_px: int | None
) -> float:
    """Thesis Fig 4.10's number: with the disc painted white in both images the inside
    adds 0 to the uint8 (wrapping) mean over the whole image, ``np.mean`` of
    ``n_elements`` values (an exact integer sum divided once, as numpy's float64
    pairwise sum of integers is exact), then divided by the ANALYTIC outside count
    ``w h - pi r²``, as the study did; NaN without a radius. Kept only for
    comparability; neither an MSE nor scale-free."""
    if radius_px is None:
        return math.nan
    height, width = original.pixels.shape[:2]
    return wrapped_sum / n_elements / outside_count_thesis(width, height, radius_px)


def check_pair(
    original: np.ndarray, inpainted: np.ndarray, inpaint: np.ndarray, label: str = "inpainted"
) -> None:
    """InputError unless both images are uint8 (H, W, 3) of one shape and ``inpaint`` is
    bool (H, W); ``label`` names the second image in the message."""
    for name, arr in (("original", original), (label, inpainted)):
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            raise InputError(
                f"{name} image must be a uint8 (H, W, 3) array, got {arr.dtype} {arr.shape}"
            )
    if original.shape != inpainted.shape:
        raise InputError(f"original {original.shape} and {label} {inpainted.shape} sizes differ")
    if inpaint.dtype != np.bool_ or inpaint.shape != original.shape[:2]:
        raise InputError(
            f"inpaint region must be a bool {original.shape[:2]} array, "
            f"got {inpaint.dtype} {inpaint.shape}"
        )


def pair_metrics(
    original: np.ndarray,
    inpainted: np.ndarray,
    inpaint: np.ndarray,
    band_px: int = 8,
    flat: np.ndarray | None = None,
    textured: np.ndarray | None = None,
    radius_px: int | None = None,
    vae_roundtrip: np.ndarray | None = None,
) -> dict[str, float | int]:
    """Error metrics between an original and its inpainting, split by the mask.

    ``original`` and ``inpainted`` are uint8 (H, W, 3); ``inpaint`` is bool (H, W), True
    where the mask asked for inpainting ("outside" = False). All values are in 0-255
    pixel units; MSE/MAE are per element (pixels x 3 channels).

    Keys: ``n_outside``, ``n_inside``, ``n_outside_band`` (ints); ``mse_outside`` (true
    MSE, no wrap-around), ``mse_outside_thesis`` (the thesis script's
    ``np.mean((a_out - b_out) ** 2)`` on uint8, wrapping mod 256 twice), ``psnr_outside``
    (dB, +inf for identical outside pixels), ``mae_outside``, ``max_abs_outside``,
    ``frac_changed_outside`` (share of outside pixels with any channel changed),
    ``mse_inside``, ``mse_whitedisc_thesis`` (thesis Fig 4.10: the inpaint region painted
    white in both images, wrapping uint8 MSE over the whole image, divided by the study's
    analytic outside count ``w*h - pi*radius_px**2`` (float); ``radius_px`` is the
    disc's radius, :func:`maskleak.masks.circle_radius_px`; NaN when it is None; kept
    only for comparability with the thesis), ``mse_outside_band`` / ``mse_outside_far`` (true
    MSE over outside pixels within / beyond ``band_px`` Euclidean distance of the nearest
    inpaint pixel; ``band_px=8`` is one latent cell of an 8x VAE), and
    ``n_outside_flat`` / ``n_outside_textured`` / ``mse_outside_flat`` /
    ``mse_outside_textured`` over outside pixels where the bool (H, W) arrays ``flat`` /
    ``textured`` are True (0 and NaN when they are not given); and the VAE floor
    ``mse_outside_vae`` / ``mse_outside_band_vae`` / ``mse_outside_far_vae``, the same
    three true MSEs between the original and ``vae_roundtrip`` (uint8 (H, W, 3): the
    original encoded and decoded by the model's VAE, :func:`floor_metrics`; NaN when it
    is None).

    Empty sets give NaN (all outside metrics when the mask covers everything).
    Raises InputError when dtypes or shapes do not match, or for a ``radius_px`` that is
    not an integer >= 0 with ``pi*radius_px**2`` below the image's area."""
    check_pair(original, inpainted, inpaint)
    if vae_roundtrip is not None:
        check_pair(original, vae_roundtrip, inpaint, "VAE round trip")
    if radius_px is not None:
        height, width = inpaint.shape
        radius_px = check_radius_px(radius_px, width, height)
    for name, arr in (("flat", flat), ("textured", textured)):
        if arr is not None and (arr.dtype != np.bool_ or arr.shape != inpaint.shape):
            raise InputError(f"{name} must be a bool {inpaint.shape} array")
    region = build_region(inpaint, band_px, flat, textured)
    prepared = prepare_original(original)
    values = measure(prepared, inpainted, region, radius_px)
    if vae_roundtrip is None:
        return {**values, **NO_FLOOR}
    return {**values, **floor_metrics(prepared, vae_roundtrip, region)}
