"""The metrics table: one row per inpainting listed in inpaint manifests, built at once
(:func:`metrics_table`) or one manifest at a time (:func:`write_image_metrics`)."""

from __future__ import annotations

import functools
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

from maskleak import masks
from maskleak.errors import InputError
from maskleak.images import read_pixels
from maskleak.landscapes import FLAT, TEXTURED
from maskleak.metrics.columns import arrow_table, sort_rows, typed_frame
from maskleak.metrics.disc import area_frac_thesis
from maskleak.metrics.manifests import Entry, read_manifest
from maskleak.metrics.pairs import (
    NO_FLOOR,
    Original,
    floor_metrics,
    measure,
    prepare_original,
)
from maskleak.metrics.parts import write_table
from maskleak.metrics.regions import Region, build_region
from maskleak.provenance import write_parquet
from maskleak.workflow_hints import rerun_command

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
class _Mask:
    inpaint: np.ndarray
    area_frac: float


_Content = tuple[np.ndarray, np.ndarray] | None
#: A VAE floor's key: (round trip, original, mask, image) paths and name; the floor is
#: the same for every strength and seed made with them.
_FloorKey = tuple[str, str, str, str]


def _floor_key(entry: Entry) -> _FloorKey | None:
    if entry.vae_roundtrip_path is None:
        return None
    return (entry.vae_roundtrip_path, entry.image_path, entry.mask_path, entry.image)


@functools.cache
def missing_inpainting_hint(manifest: str) -> str:
    """What to run when an inpainting listed in ``manifest`` is gone: the inpaint job
    reuses every inpainting still on disk (its manifest is its only declared output,
    so Snakemake cannot see the loss), so forcing it recomputes just the missing ones."""
    return (
        f" (listed in manifest {manifest}); rerun the inpaint rule: "
        f"`{rerun_command('--forcerun', manifest)}` with the same --configfile "
        "recomputes only the missing inpaintings"
    )


class _Inputs:
    """The decoded inputs of a set of entries, each loaded once and released after its
    last entry: originals, masks, region maps and the regions built from them, the VAE
    round trips and the floors measured with them (once per round trip and mask)."""

    def __init__(
        self, entries: Sequence[Entry], band_px: int, region_maps: Mapping[str, str]
    ) -> None:
        self._band_px = band_px
        self._maps = dict(region_maps)
        self.originals: _OnceCache[str, Original] = _OnceCache(
            lambda path: prepare_original(read_pixels(path, "RGB", "image")),
            Counter(e.image_path for e in entries),
        )
        self.contents: _OnceCache[str, _Content] = _OnceCache(
            self._load_content, Counter(e.image for e in entries)
        )
        self.masks: _OnceCache[str, _Mask] = _OnceCache(
            self._load_mask, Counter(e.mask_path for e in entries)
        )
        self.regions: _OnceCache[tuple[str, str], Region] = _OnceCache(
            self._build_region, Counter((e.mask_path, e.image) for e in entries)
        )
        # The manifest that lists each round trip, for the missing-file hint.
        self._listed_in = {
            e.vae_roundtrip_path: e.manifest for e in entries if e.vae_roundtrip_path is not None
        }
        self.roundtrips: _OnceCache[str, np.ndarray] = _OnceCache(
            self._load_roundtrip,
            Counter(e.vae_roundtrip_path for e in entries if e.vae_roundtrip_path is not None),
        )
        floor_keys = [key for key in map(_floor_key, entries) if key is not None]
        self.floors: _OnceCache[_FloorKey, dict[str, float]] = _OnceCache(
            self._measure_floor, Counter(floor_keys)
        )

    def _load_content(self, image: str) -> _Content:
        if image not in self._maps:
            return None
        labels = read_pixels(self._maps[image], "L", "region map", "; rerun the regions rule")
        return np.isin(labels, list(FLAT)), np.isin(labels, list(TEXTURED))

    @staticmethod
    def _load_mask(path: str) -> _Mask:
        arr = read_pixels(path, "L", "mask")
        return _Mask(masks.inpaint_region(arr), masks.area_frac(arr))

    def _build_region(self, key: tuple[str, str]) -> Region:
        # Only called from row() after the entry's mask and content passed their size
        # checks; both are still held by that entry, so these gets load nothing.
        mask_path, image = key
        content = self.contents.get(image)
        flat, textured = content if content is not None else (None, None)
        return build_region(self.masks.get(mask_path).inpaint, self._band_px, flat, textured)

    def _load_roundtrip(self, path: str) -> np.ndarray:
        return read_pixels(
            path, "RGB", "VAE round trip", missing_inpainting_hint(self._listed_in[path])
        )

    def _measure_floor(self, key: _FloorKey) -> dict[str, float]:
        # Only called from row() after the entry's original, round trip and region were
        # loaded and their sizes checked; the entry still holds them.
        roundtrip, image_path, mask_path, image = key
        return floor_metrics(
            self.originals.get(image_path),
            self.roundtrips.get(roundtrip),
            self.regions.get((mask_path, image)),
        )

    @staticmethod
    def inpainted(entry: Entry) -> np.ndarray:
        return read_pixels(
            entry.inpainted_path,
            "RGB",
            "inpainted image",
            missing_inpainting_hint(entry.manifest),
        )

    def row(self, entry: Entry, inpainted: np.ndarray | None = None) -> dict[str, Any]:
        """The row of ``entry``, whose inpainting is decoded here unless given."""
        try:
            original = self.originals.get(entry.image_path)
            height, width = original.pixels.shape[:2]
            content = self.contents.get(entry.image)
            if content is not None and content[0].shape != (height, width):
                ch, cw = content[0].shape
                raise InputError(
                    f"region map of image {entry.image} is {cw}x{ch} but image "
                    f"{entry.image_path} is {width}x{height}; rerun the regions rule"
                )
            mask = self.masks.get(entry.mask_path)
            if mask.inpaint.shape != (height, width):
                mh, mw = mask.inpaint.shape
                raise InputError(
                    f"mask {entry.mask_path} is {mw}x{mh} but image {entry.image_path} is "
                    f"{width}x{height} (manifest {entry.manifest})"
                )
            region = self.regions.get((entry.mask_path, entry.image))
            if inpainted is None:
                inpainted = self.inpainted(entry)
            if inpainted.shape != original.pixels.shape:
                raise InputError(
                    f"inpainted image {entry.inpainted_path} is "
                    f"{inpainted.shape[1]}x{inpainted.shape[0]} but image {entry.image_path} "
                    f"is {width}x{height}; rerun the inpaint rule"
                )
            radius_px = _radius_px(entry, width, height)
            values = measure(original, inpainted, region, radius_px)
            floor = self._floor(entry, original)
        finally:
            self.originals.done(entry.image_path)
            self.contents.done(entry.image)
            self.masks.done(entry.mask_path)
            self.regions.done((entry.mask_path, entry.image))
            if entry.vae_roundtrip_path is not None:
                self.roundtrips.done(entry.vae_roundtrip_path)
                self.floors.done(_floor_key(entry))  # type: ignore[arg-type]
        return {
            "experiment": entry.experiment,
            "model": entry.model,
            "pipeline": entry.pipeline,
            "image": entry.image,
            "radius_pct": entry.radius_pct,
            "radius_px": radius_px,
            "area_frac": mask.area_frac,
            "area_frac_thesis": area_frac_thesis(width, height, radius_px),
            "strength": entry.strength,
            "seed": entry.seed,
            "steps": entry.steps,
            "steps_run": entry.steps_run,
            "mode": entry.mode,
            "width": width,
            "height": height,
            "band_px": region.band_px,
            **values,
            **floor,
            "image_path": entry.image_path,
            "mask_path": entry.mask_path,
            "inpainted_path": entry.inpainted_path,
            "vae_roundtrip_path": entry.vae_roundtrip_path or "",
        }

    def _floor(self, entry: Entry, original: Original) -> dict[str, float]:
        """The VAE floor of ``entry`` (NaN without a round trip in its manifest)."""
        key = _floor_key(entry)
        if key is None:
            return NO_FLOOR
        roundtrip = self.roundtrips.get(key[0])
        if roundtrip.shape != original.pixels.shape:
            height, width = original.pixels.shape[:2]
            raise InputError(
                f"VAE round trip {key[0]} is {roundtrip.shape[1]}x{roundtrip.shape[0]} but "
                f"image {entry.image_path} is {width}x{height} (manifest {entry.manifest}); "
                "rerun the inpaint rule"
            )
        return self.floors.get(key)


def _radius_px(entry: Entry, width: int, height: int) -> int:
    """The disc radius of ``entry``'s mask in px, from the formula the mask rule draws
    with; InputError naming the manifest for a radius_pct outside (0, 100]."""
    try:
        return masks.circle_radius_px(width, height, entry.radius_pct)
    except InputError as exc:
        raise InputError(f"manifest {entry.manifest}: {exc}") from None


def _check_band_px(band_px: object) -> int:
    if isinstance(band_px, bool) or not isinstance(band_px, int) or band_px < 0:
        raise InputError(f"band_px must be an integer >= 0, got {band_px!r}")
    return band_px


# On one thread, a few inpaintings are decoded back to back and then measured: each loop
# then runs with its own code and data in the cache, some 5 % faster than alternating.
_BATCH_ENTRIES = 16
_BATCH_BYTES = 16 * 2**20


def _serial_rows(inputs: _Inputs, entries: Sequence[Entry]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    batch: list[tuple[Entry, np.ndarray]] = []
    size = 0
    for entry in entries:
        pixels = inputs.inpainted(entry)
        batch.append((entry, pixels))
        size += pixels.nbytes
        if len(batch) == _BATCH_ENTRIES or size >= _BATCH_BYTES:
            rows += [inputs.row(e, p) for e, p in batch]
            batch, size = [], 0
    rows += [inputs.row(e, p) for e, p in batch]
    return rows


def _rows(
    entries: list[Entry], band_px: int, threads: int, region_maps: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The table's rows for ``entries``, in table order."""
    # Work through entries grouped by image and mask so each cached array is released soon.
    entries = sorted(entries, key=lambda e: (e.image_path, e.mask_path))
    inputs = _Inputs(entries, band_px, region_maps)
    if threads == 1:
        rows = _serial_rows(inputs, entries)
    else:
        pool = ThreadPoolExecutor(max_workers=threads)
        try:
            rows = list(pool.map(inputs.row, entries))
        except BaseException:
            # Fail fast: do not finish thousands of queued entries before reporting.
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    return sort_rows(rows)


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
    band_px = _check_band_px(band_px)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InputError(f"threads must be an integer >= 1, got {threads!r}")
    entries = [entry for path in manifest_paths for entry in read_manifest(path)]
    return typed_frame(_rows(entries, band_px, threads, region_maps or {}))


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


def write_image_metrics(
    manifest_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    band_px: int = 8,
    region_map: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """The metrics rows of ONE inpaint manifest (one model on one image), written
    atomically as Parquet with provenance to ``out_path``: one light job per manifest,
    whose parts :func:`merge_metrics` joins into exactly ``metrics_table(all manifests)``.

    ``region_map`` is the path of that image's ground-truth region PNG, or None (no
    flat/textured split). The frame returned and written equals
    ``metrics_table([manifest_path], band_px, region_maps={image: region_map})``. Runs on
    one thread. Raises InputError as :func:`metrics_table` does; a missing inpainting's
    message names the manifest and the ``snakemake --forcerun`` that recomputes it."""
    band_px = _check_band_px(band_px)
    manifest = os.fspath(manifest_path)
    entries = read_manifest(manifest)
    region = None if region_map is None else os.fspath(region_map)
    maps = {} if region is None else {entry.image: region for entry in entries}
    table = arrow_table(_rows(entries, band_px, 1, maps))
    record = {
        "stage": "image_metrics",
        "band_px": band_px,
        "manifest": manifest,
        "region_map": region,
    }
    write_table(table, out_path, record, intermediate=True)
    return table.to_pandas(use_threads=False)
