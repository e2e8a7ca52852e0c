"""How much an inpainting changed the pixels outside its mask.

All error metrics are in 0-255 pixel units and, unless a name says otherwise, are taken
per *element*: a squared error is averaged over pixels x 3 channels. (BrushBench sums the
squared error over channels before dividing by the pixel count, so its MSE is 3x ours.)

Two numbers exist only so that results can be set beside the thesis this pipeline
reproduces; both are computed on uint8 arrays exactly as its script did, and neither is a
true MSE (see :func:`pair_metrics`).
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import pandas as pd
from scipy import ndimage

from maskleak import masks
from maskleak.errors import InputError
from maskleak.images import read_pixels
from maskleak.landscapes import FLAT, TEXTURED
from maskleak.provenance import write_parquet

#: Column -> dtype of the metrics table, in column order (mirrors
#: workflow/schemas/metrics.columns.yaml, which documents each one).
DTYPES: dict[str, str] = {
    "experiment": "str",
    "model": "str",
    "image": "str",
    "radius_pct": "float64",
    "area_frac": "float64",
    "strength": "float64",
    "seed": "int64",
    "steps": "int64",
    "steps_run": "int64",
    "mode": "str",
    "width": "int64",
    "height": "int64",
    "n_outside": "int64",
    "n_inside": "int64",
    "n_outside_band": "int64",
    "n_outside_flat": "int64",
    "n_outside_textured": "int64",
    "band_px": "int64",
    "mse_outside": "float64",
    "mse_outside_thesis": "float64",
    "psnr_outside": "float64",
    "mae_outside": "float64",
    "max_abs_outside": "float64",
    "frac_changed_outside": "float64",
    "mse_inside": "float64",
    "mse_whitedisc_thesis": "float64",
    "mse_outside_band": "float64",
    "mse_outside_far": "float64",
    "mse_outside_flat": "float64",
    "mse_outside_textured": "float64",
    "image_path": "str",
    "mask_path": "str",
    "inpainted_path": "str",
}
COLUMNS: tuple[str, ...] = tuple(DTYPES)

_SORT_KEYS = ["experiment", "model", "image", "radius_pct", "strength", "seed"]
# Ties in the documented key (e.g. the same model run at two step counts) are broken by
# these so the row order never depends on the order manifests were listed in.
_TIE_BREAKERS = ["steps", "mode", "inpainted_path"]

_MAX_PIXEL = 255.0


# --------------------------------------------------------------------------- pair metrics


@dataclass(frozen=True)
class _Region:
    """Everything about a mask that does not depend on the images, computed once per mask
    and shared by all inpaintings made with it (the distance transform dominates)."""

    inpaint: np.ndarray  # bool (H, W): True = inpaint
    outside: np.ndarray  # bool (H, W): ~inpaint
    outside_idx: np.ndarray  # flat indices of outside pixels, row-major like a[~inpaint]
    band: np.ndarray  # bool (H, W): outside and within band_px of an inpaint pixel
    far: np.ndarray  # bool (H, W): outside and farther than band_px
    band_px: int


def _region(inpaint: np.ndarray, band_px: int) -> _Region:
    if band_px < 0:
        raise InputError(f"band_px must be >= 0, got {band_px!r}")
    outside = ~inpaint
    if inpaint.any():
        # distance_transform_edt gives each nonzero (outside) pixel its Euclidean distance
        # to the nearest zero (inpaint) pixel; inpaint pixels themselves get 0.
        dist = ndimage.distance_transform_edt(outside)
        band = outside & (dist <= band_px)
    else:
        # With no inpaint pixel there is no edge; edt would return distances to the array
        # border instead, so the band is empty by definition.
        band = np.zeros_like(inpaint)
    return _Region(
        inpaint=inpaint,
        outside=outside,
        outside_idx=np.flatnonzero(outside),
        band=band,
        far=outside & ~band,
        band_px=band_px,
    )


def _check_pair(original: np.ndarray, inpainted: np.ndarray, inpaint: np.ndarray) -> None:
    for name, arr in (("original", original), ("inpainted", inpainted)):
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            raise InputError(
                f"{name} image must be a uint8 (H, W, 3) array, got {arr.dtype} {arr.shape}"
            )
    if original.shape != inpainted.shape:
        raise InputError(f"original {original.shape} and inpainted {inpainted.shape} sizes differ")
    if inpaint.dtype != np.bool_ or inpaint.shape != original.shape[:2]:
        raise InputError(
            f"inpaint region must be a bool {original.shape[:2]} array, "
            f"got {inpaint.dtype} {inpaint.shape}"
        )


def _mean_over(per_pixel: np.ndarray, where: np.ndarray, n: int) -> float:
    """Per-element mean of a per-pixel channel sum over ``where`` (exact int64 sum)."""
    if n == 0:
        return math.nan
    return float(per_pixel[where].sum(dtype=np.int64)) / (3 * n)


def _channel_sum(arr: np.ndarray) -> np.ndarray:
    # Explicit adds: numpy's reduction over a length-3 last axis is several times slower.
    return arr[..., 0] + arr[..., 1] + arr[..., 2]


def _metrics(
    original: np.ndarray,
    inpainted: np.ndarray,
    region: _Region,
    flat: np.ndarray | None = None,
    textured: np.ndarray | None = None,
) -> dict[str, Any]:
    inpaint, outside = region.inpaint, region.outside
    n_outside = int(region.outside_idx.size)
    n_inside = int(inpaint.size - n_outside)
    n_band = int(np.count_nonzero(region.band))
    n_far = n_outside - n_band

    # Signed differences in int16 cannot wrap (range -255..255); squares summed over the
    # 3 channels fit int32 (<= 3 * 255^2); region sums are taken in int64. Everything
    # below is reduced to per-pixel (H, W) arrays first, so masks index 2-D arrays only.
    diff = original.astype(np.int16) - inpainted.astype(np.int16)
    sq_pix = _channel_sum(np.square(diff, dtype=np.int32))

    mse_outside = _mean_over(sq_pix, outside, n_outside)
    if n_outside == 0:
        nan = math.nan
        mse_thesis = psnr = mae = max_abs = frac_changed = whitedisc = nan
    else:
        # a_out is exactly original[~inpaint] (uint8, (n_outside, 3), same order); take()
        # with cached indices is just faster than boolean indexing a 3-D array.
        a_out = np.take(original.reshape(-1, 3), region.outside_idx, axis=0)
        b_out = np.take(inpainted.reshape(-1, 3), region.outside_idx, axis=0)
        # The thesis script's number, on purpose on uint8: a - b wraps mod 256 and the
        # square wraps mod 256 again (difference 16 -> 0, -1 -> 255 -> 1, 20 -> 144).
        # It is NOT an MSE; it is kept only for comparability with the published values.
        mse_thesis = float(np.mean((a_out - b_out) ** 2))

        psnr = math.inf if mse_outside == 0 else 10 * math.log10(_MAX_PIXEL**2 / mse_outside)

        abs_diff = np.abs(diff)
        mae = _mean_over(_channel_sum(abs_diff), outside, n_outside)
        max_pix = np.maximum(np.maximum(abs_diff[..., 0], abs_diff[..., 1]), abs_diff[..., 2])
        max_abs = float(max_pix[outside].max())
        # A pixel changed in some channel exactly when its summed squared error is > 0.
        frac_changed = np.count_nonzero(sq_pix[outside]) / n_outside

        # Thesis Fig 4.10: the disc painted white in both images, uint8 (wrapping) MSE over
        # the whole image, then divided again by the number of outside pixels. Kept only
        # for comparability with the thesis; it is neither an MSE nor scale-free.
        disc = inpaint[..., None]
        a_white = np.where(disc, np.uint8(255), original)
        b_white = np.where(disc, np.uint8(255), inpainted)
        whitedisc = float(np.mean((a_white - b_white) ** 2)) / n_outside

    return {
        "n_outside": n_outside,
        "n_inside": n_inside,
        "n_outside_band": n_band,
        "mse_outside": mse_outside,
        "mse_outside_thesis": mse_thesis,
        "psnr_outside": psnr,
        "mae_outside": mae,
        "max_abs_outside": max_abs,
        "frac_changed_outside": frac_changed,
        "mse_inside": _mean_over(sq_pix, inpaint, n_inside),
        "mse_whitedisc_thesis": whitedisc,
        "mse_outside_band": _mean_over(sq_pix, region.band, n_band),
        "mse_outside_far": _mean_over(sq_pix, region.far, n_far),
        **_content_split(sq_pix, outside, flat, textured),
    }


def _content_split(
    sq_pix: np.ndarray, outside: np.ndarray, flat: np.ndarray | None, textured: np.ndarray | None
) -> dict[str, Any]:
    """Outside error over flat and over textured content, where a ground-truth region map
    says which is which (procedural landscapes); 0 pixels and NaN without one."""
    if flat is None or textured is None:
        return {
            "n_outside_flat": 0,
            "n_outside_textured": 0,
            "mse_outside_flat": math.nan,
            "mse_outside_textured": math.nan,
        }
    out_flat, out_textured = outside & flat, outside & textured
    n_flat, n_textured = int(np.count_nonzero(out_flat)), int(np.count_nonzero(out_textured))
    return {
        "n_outside_flat": n_flat,
        "n_outside_textured": n_textured,
        "mse_outside_flat": _mean_over(sq_pix, out_flat, n_flat),
        "mse_outside_textured": _mean_over(sq_pix, out_textured, n_textured),
    }


def pair_metrics(
    original: np.ndarray,
    inpainted: np.ndarray,
    inpaint: np.ndarray,
    band_px: int = 8,
    flat: np.ndarray | None = None,
    textured: np.ndarray | None = None,
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
    ``mse_inside``, ``mse_whitedisc_thesis`` (thesis Fig 4.10: disc painted white in both
    images, wrapping uint8 MSE over the whole image, divided by ``n_outside``; kept only
    for comparability with the thesis), ``mse_outside_band`` / ``mse_outside_far`` (true
    MSE over outside pixels within / beyond ``band_px`` Euclidean distance of the nearest
    inpaint pixel; ``band_px=8`` is one latent cell of an 8x VAE), and
    ``n_outside_flat`` / ``n_outside_textured`` / ``mse_outside_flat`` /
    ``mse_outside_textured`` over outside pixels where the bool (H, W) arrays ``flat`` /
    ``textured`` are True (0 and NaN when they are not given).

    Empty sets give NaN (all outside metrics when the mask covers everything).
    Raises InputError when dtypes or shapes do not match."""
    _check_pair(original, inpainted, inpaint)
    for name, arr in (("flat", flat), ("textured", textured)):
        if arr is not None and (arr.dtype != np.bool_ or arr.shape != inpaint.shape):
            raise InputError(f"{name} must be a bool {inpaint.shape} array")
    return _metrics(original, inpainted, _region(inpaint, band_px), flat, textured)


# ------------------------------------------------------------------------ manifest parsing


@dataclass(frozen=True)
class _Entry:
    manifest: str
    model: str
    image: str
    image_path: str
    steps: int
    experiment: str
    radius_pct: float
    strength: float
    seed: int
    steps_run: int
    mode: str
    mask_path: str
    inpainted_path: str


def _field(obj: Mapping[str, Any], key: str, kind: str, manifest: str, where: str) -> Any:
    """``obj[key]`` checked against ``kind`` ('str', 'int' or 'number')."""
    label = f"{where}.{key}" if where else key
    if key not in obj:
        raise InputError(f"manifest {manifest}: missing key {label!r}")
    value = obj[key]
    # bool is an int subclass; a JSON true/false is never a valid number here.
    ok = {
        "str": isinstance(value, str),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
    }[kind]
    if not ok:
        raise InputError(f"manifest {manifest}: key {label!r} must be {kind}, got {value!r}")
    if kind == "number":
        return float(value)
    return value


def _read_manifest(path: str | os.PathLike[str]) -> list[_Entry]:
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise InputError(f"manifest {name} not found; rerun the inpaint rule") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"manifest {name} is not readable JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"manifest {name}: top level must be a JSON object")

    model = _field(data, "model", "str", name, "")
    image = _field(data, "image", "str", name, "")
    image_path = _field(data, "image_path", "str", name, "")
    steps = _field(data, "steps", "int", name, "")
    items = data.get("inpaintings")
    if not isinstance(items, list):
        raise InputError(
            f"manifest {name}: key 'inpaintings' must be a list, got {type(items).__name__}"
        )

    entries = []
    for i, item in enumerate(items):
        where = f"inpaintings[{i}]"
        if not isinstance(item, dict):
            raise InputError(f"manifest {name}: key {where!r} must be an object")
        entries.append(
            _Entry(
                manifest=name,
                model=model,
                image=image,
                image_path=image_path,
                steps=steps,
                experiment=_field(item, "experiment", "str", name, where),
                radius_pct=_field(item, "radius_pct", "number", name, where),
                strength=_field(item, "strength", "number", name, where),
                seed=_field(item, "seed", "int", name, where),
                steps_run=_field(item, "steps_run", "int", name, where),
                mode=_field(item, "mode", "str", name, where),
                mask_path=_field(item, "mask_path", "str", name, where),
                inpainted_path=_field(item, "inpainted_path", "str", name, where),
            )
        )
    return entries


# ----------------------------------------------------------------------------- PNG loading


_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


class _OnceCache(Generic[_K, _V]):
    """Thread-safe cache that loads each key once and drops it after its last use, so
    that e.g. 1000 masks are never all held in memory at the same time."""

    def __init__(self, loader: Callable[[_K], _V], uses: Mapping[_K, int]) -> None:
        self._loader = loader
        self._lock = threading.Lock()
        self._key_locks = {key: threading.Lock() for key in uses}
        self._left = dict(uses)
        self._values: dict[_K, _V] = {}

    def get(self, key: _K) -> _V:
        # Per-key lock: concurrent users of one key wait for a single load, while other
        # keys load in parallel.
        with self._key_locks[key]:
            if key not in self._values:
                self._values[key] = self._loader(key)
            return self._values[key]

    def done(self, key: _K) -> None:
        with self._lock:
            self._left[key] -= 1
            if self._left[key] == 0:
                self._values.pop(key, None)


@dataclass(frozen=True)
class _MaskInfo:
    region: _Region
    area_frac: float


_Content = tuple[np.ndarray, np.ndarray] | None


def _entry_row(
    entry: _Entry,
    originals: _OnceCache[str, np.ndarray],
    regions: _OnceCache[str, _MaskInfo],
    contents: _OnceCache[str, _Content],
) -> dict[str, Any]:
    try:
        original = originals.get(entry.image_path)
        mask = regions.get(entry.mask_path)
        content = contents.get(entry.image)
        height, width = original.shape[:2]
        if content is not None and content[0].shape != (height, width):
            ch, cw = content[0].shape
            raise InputError(
                f"region map of image {entry.image} is {cw}x{ch} but image "
                f"{entry.image_path} is {width}x{height}; rerun the regions rule"
            )
        if mask.region.inpaint.shape != (height, width):
            mh, mw = mask.region.inpaint.shape
            raise InputError(
                f"mask {entry.mask_path} is {mw}x{mh} but image {entry.image_path} is "
                f"{width}x{height} (manifest {entry.manifest})"
            )
        inpainted = read_pixels(
            entry.inpainted_path,
            "RGB",
            "inpainted image",
            f" (listed in manifest {entry.manifest}); rerun the inpaint rule",
        )
        if inpainted.shape != original.shape:
            raise InputError(
                f"inpainted image {entry.inpainted_path} is "
                f"{inpainted.shape[1]}x{inpainted.shape[0]} but image {entry.image_path} is "
                f"{width}x{height}; rerun the inpaint rule"
            )
        values = _metrics(original, inpainted, mask.region, *(content or (None, None)))
    finally:
        originals.done(entry.image_path)
        regions.done(entry.mask_path)
        contents.done(entry.image)
    return {
        "experiment": entry.experiment,
        "model": entry.model,
        "image": entry.image,
        "radius_pct": entry.radius_pct,
        "area_frac": mask.area_frac,
        "strength": entry.strength,
        "seed": entry.seed,
        "steps": entry.steps,
        "steps_run": entry.steps_run,
        "mode": entry.mode,
        "width": width,
        "height": height,
        "band_px": mask.region.band_px,
        **values,
        "image_path": entry.image_path,
        "mask_path": entry.mask_path,
        "inpainted_path": entry.inpainted_path,
    }


def _typed_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame.astype(DTYPES)


def metrics_table(
    manifest_paths: Sequence[str | os.PathLike[str]],
    band_px: int = 8,
    threads: int = 1,
    region_maps: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """One row of :func:`pair_metrics` (plus the run's parameters) per inpainting listed
    in the inpaint manifests, columns :data:`COLUMNS`, sorted by experiment, model, image,
    radius_pct, strength, seed. Paths in manifests are relative to the working directory.

    Each original and each mask is decoded once (and dropped after its last use); entries
    are processed on ``threads`` threads, since PIL decoding and numpy release the GIL.
    Raises InputError naming the file for a malformed manifest, a missing or corrupt PNG,
    or an image/mask/inpainting size mismatch.

    ``region_maps`` maps image names to ground-truth region PNGs (procedural landscapes:
    landscapes.FLAT / TEXTURED codes) for the flat/textured split."""
    if isinstance(band_px, bool) or not isinstance(band_px, int) or band_px < 0:
        raise InputError(f"band_px must be an integer >= 0, got {band_px!r}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InputError(f"threads must be an integer >= 1, got {threads!r}")

    entries = [entry for path in manifest_paths for entry in _read_manifest(path)]
    # Work through entries grouped by image and mask so each cached array is released soon.
    entries.sort(key=lambda e: (e.image_path, e.mask_path))

    def load_mask(path: str) -> _MaskInfo:
        arr = read_pixels(path, "L", "mask")
        return _MaskInfo(_region(masks.inpaint_region(arr), band_px), masks.area_frac(arr))

    originals: _OnceCache[str, np.ndarray] = _OnceCache(
        lambda path: read_pixels(path, "RGB", "image"),
        Counter(e.image_path for e in entries),
    )
    regions: _OnceCache[str, _MaskInfo] = _OnceCache(
        load_mask, Counter(e.mask_path for e in entries)
    )
    maps = dict(region_maps or {})

    def load_content(image: str) -> _Content:
        if image not in maps:
            return None
        labels = read_pixels(maps[image], "L", "region map", "; rerun the regions rule")
        return np.isin(labels, list(FLAT)), np.isin(labels, list(TEXTURED))

    contents: _OnceCache[str, _Content] = _OnceCache(
        load_content, Counter(e.image for e in entries)
    )

    pool = ThreadPoolExecutor(max_workers=threads)
    try:
        rows = list(pool.map(lambda e: _entry_row(e, originals, regions, contents), entries))
    except BaseException:
        # Fail fast: do not finish thousands of queued entries before reporting the error.
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)

    frame = _typed_frame(rows)
    frame = frame.sort_values(_SORT_KEYS + _TIE_BREAKERS, kind="mergesort")
    return frame.reset_index(drop=True)


def write_metrics(
    manifest_paths: Sequence[str | os.PathLike[str]],
    out_path: str | os.PathLike[str],
    band_px: int = 8,
    threads: int = 1,
    region_maps: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Build :func:`metrics_table` and write it atomically as Parquet with provenance."""
    table = metrics_table(manifest_paths, band_px=band_px, threads=threads, region_maps=region_maps)
    record = {
        "stage": "metrics",
        "band_px": band_px,
        "manifests": [os.fspath(p) for p in manifest_paths],
        "region_maps": dict(region_maps or {}),
    }
    write_parquet(table, Path(out_path), record)
    return table
