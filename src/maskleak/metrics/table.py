"""The metrics table: one row per inpainting listed in inpaint manifests, built at once
(:func:`metrics_table`) or one manifest at a time (:func:`write_image_metrics`)."""

from __future__ import annotations

import functools
import math
import os
import threading
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np
import pandas as pd

from maskleak import masks
from maskleak.errors import InputError
from maskleak.images import read_pixels
from maskleak.landscapes import FLAT, TEXTURED
from maskleak.metrics import decompose as parts_of
from maskleak.metrics.columns import arrow_table, sort_rows, sort_table, typed_frame
from maskleak.metrics.disc import area_frac_thesis
from maskleak.metrics.manifests import Entry, read_manifest
from maskleak.metrics.mask_shape import n_components, perimeter_px
from maskleak.metrics.pairs import (
    NO_FLOOR,
    Original,
    floor_metrics,
    measure,
    prepare_original,
)
from maskleak.metrics.parts import write_table
from maskleak.metrics.profile import PROFILE, profile_rows
from maskleak.metrics.regions import Region, build_region
from maskleak.provenance import write_parquet
from maskleak.workflow_hints import rerun_command

if TYPE_CHECKING:
    import pyarrow as pa

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
    perimeter_px: int
    n_components: int


_Content = tuple[np.ndarray, np.ndarray] | None
#: A VAE floor's key: (round trip, original, mask, image) paths and name; the floor is
#: the same for every strength and seed made with them.
_FloorKey = tuple[str, str, str, str]


def _floor_key(entry: Entry) -> _FloorKey | None:
    if entry.vae_roundtrip_path is None:
        return None
    return (entry.vae_roundtrip_path, entry.image_path, entry.mask_path, entry.image)


def _sample_key(entry: Entry) -> _FloorKey | None:
    """The floor key of the round trip through a posterior sample."""
    if entry.vae_roundtrip_sample_path is None:
        return None
    return (entry.vae_roundtrip_sample_path, entry.image_path, entry.mask_path, entry.image)


#: An image and mask (paths), and what decides the latent footprint
#: (:func:`maskleak.metrics.decompose.footprint_key`).
_PartitionKey = tuple[str, str, str | None]


def _partition_key(entry: Entry) -> _PartitionKey:
    rule = entry.mechanisms.latent_mask
    return (entry.image_path, entry.mask_path, parts_of.footprint_key(entry.unet_in_channels, rule))


def _floor_sums_key(entry: Entry) -> tuple[str, _PartitionKey] | None:
    if entry.vae_roundtrip_path is None:
        return None
    return (entry.vae_roundtrip_path, _partition_key(entry))


#: The decomposition's columns of a table built without it (the benchmark's baseline).
NO_DECOMPOSITION: dict[str, Any] = {
    **dict.fromkeys(parts_of.KEYS, math.nan),
    "n_seam_inside": 0,
    "mse_outside_vae_sample": math.nan,
}


class _PixelError(threading.local):
    """Each thread's per-pixel squared error buffer, reused (see pairs._Scratch)."""

    size = -1

    def array(self, size: int) -> np.ndarray:
        if size != self.size:
            self.buffer = np.empty(size, dtype=np.uint32)
            self.size = size
        return self.buffer


_pixel_error = _PixelError()


def _identity(entry: Entry) -> dict[str, Any]:
    """The columns that say which pipeline variant and pass made ``entry``."""
    used = entry.mechanisms
    return {
        "latent_encoding": used.latent_encoding,
        "latent_mask": used.latent_mask,
        "final_latent_paste": used.final_latent_paste,
        "paste_back": used.paste_back,
        "paste_blur_px": float(used.paste_blur_px),
        "passes": used.passes,
        "dtype": used.dtype if used.dtype is not None else entry.common_dtype or "",
        "unet_in_channels": entry.unet_in_channels or 0,
    }


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
    round trips and the floors measured with them (once per round trip and mask); and,
    unless ``decompose`` is False, what the decomposition prepares once per image, mask,
    footprint and round trip (:mod:`maskleak.metrics.decompose`)."""

    def __init__(
        self,
        entries: Sequence[Entry],
        band_px: int,
        region_maps: Mapping[str, str],
        decompose: bool = True,
    ) -> None:
        self._band_px = band_px
        self._maps = dict(region_maps)
        self.decompose = decompose
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
        self._listed_in = {path: e.manifest for e in entries for path in self._roundtrips(e)}
        self.roundtrips: _OnceCache[str, np.ndarray] = _OnceCache(
            self._load_roundtrip, Counter(path for e in entries for path in self._roundtrips(e))
        )
        floor_keys = [key for key in map(_floor_key, entries) if key is not None]
        if decompose:
            floor_keys += [key for key in map(_sample_key, entries) if key is not None]
        self.floors: _OnceCache[_FloorKey, dict[str, float]] = _OnceCache(
            self._measure_floor, Counter(floor_keys)
        )
        if not decompose:
            return
        self.features: _OnceCache[str, parts_of.OriginalFeatures] = _OnceCache(
            lambda path: parts_of.original_features(self.originals.get(path).pixels),
            Counter(e.image_path for e in entries),
        )
        self.geometries: _OnceCache[str, parts_of.MaskGeometry] = _OnceCache(
            lambda path: parts_of.mask_geometry(self.masks.get(path).inpaint, band_px),
            Counter(e.mask_path for e in entries),
        )
        self.splits: _OnceCache[tuple[str, str], parts_of.Split] = _OnceCache(
            lambda key: parts_of.split(self.features.get(key[0]), self.geometries.get(key[1])),
            Counter((e.image_path, e.mask_path) for e in entries),
        )
        self.partitions: _OnceCache[_PartitionKey, parts_of.Partition] = _OnceCache(
            lambda key: parts_of.partition(
                self.geometries.get(key[1]), self.splits.get((key[0], key[1])), key[2]
            ),
            Counter(map(_partition_key, entries)),
        )
        self.floor_sums: _OnceCache[tuple[str, _PartitionKey], np.ndarray] = _OnceCache(
            self._floor_sums,
            Counter(key for key in map(_floor_sums_key, entries) if key is not None),
        )

    def _roundtrips(self, entry: Entry) -> list[str]:
        """The round trip PNGs ``entry``'s row reads."""
        paths = [entry.vae_roundtrip_path]
        if self.decompose:
            paths.append(entry.vae_roundtrip_sample_path)
        return [path for path in paths if path is not None]

    def _floor_sums(self, key: tuple[str, _PartitionKey]) -> np.ndarray:
        # Only called from row() after the round trip's size was checked; the entry
        # holds the round trip, the original and the partition.
        roundtrip, partition_key = key
        original = self.originals.get(partition_key[0]).pixels
        error = parts_of.pixel_squared_error(original, self.roundtrips.get(roundtrip))
        return parts_of.label_sums(self.partitions.get(partition_key), error)

    def _load_content(self, image: str) -> _Content:
        if image not in self._maps:
            return None
        labels = read_pixels(self._maps[image], "L", "region map", "; rerun the regions rule")
        return np.isin(labels, list(FLAT)), np.isin(labels, list(TEXTURED))

    @staticmethod
    def _load_mask(path: str) -> _Mask:
        arr = read_pixels(path, "L", "mask")
        inpaint = masks.inpaint_region(arr)
        return _Mask(inpaint, masks.area_frac(arr), perimeter_px(inpaint), n_components(inpaint))

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

    def row(
        self, entry: Entry, inpainted: np.ndarray | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The row of ``entry`` and its profile rows (none without the decomposition);
        its inpainting is decoded here unless given."""
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
            radius_px = _radius_px(entry, width, height)  # None unless a study disc
            pixel_error = _pixel_error.array(height * width) if self.decompose else None
            values = measure(original, inpainted, region, radius_px, pixel_error)
            floor = self._floor(entry, original, _floor_key(entry))
            extra = NO_DECOMPOSITION
            profile = None
            if self.decompose:
                assert pixel_error is not None
                extra, profile = self._decompose(entry, original, inpainted, pixel_error)
        finally:
            self._release(entry)
        row = {
            "experiment": entry.experiment,
            "model": entry.model,
            "pipeline": entry.pipeline,
            "variant": entry.variant,
            "image": entry.image,
            "mask_kind": entry.mask_kind,
            "mask_id": entry.mask_id,
            "radius_pct": math.nan if entry.radius_pct is None else entry.radius_pct,
            "radius_px": math.nan if radius_px is None else radius_px,
            "area_frac": mask.area_frac,
            "area_frac_thesis": (
                math.nan if radius_px is None else area_frac_thesis(width, height, radius_px)
            ),
            "perimeter_px": mask.perimeter_px,
            "n_components": mask.n_components,
            "mask_dilate_px": entry.mask_dilate_px,
            "mask_blur_px": entry.mask_blur_px,
            "strength": entry.strength,
            "seed": entry.seed,
            "pass": entry.pass_number,
            "steps": entry.steps,
            "steps_run": entry.steps_run,
            "mode": entry.mode,
            **_identity(entry),
            "width": width,
            "height": height,
            "band_px": region.band_px,
            **values,
            **floor,
            **extra,
            "image_path": entry.image_path,
            "mask_path": entry.mask_path,
            "inpainted_path": entry.inpainted_path,
            "vae_roundtrip_path": entry.vae_roundtrip_path or "",
            "vae_roundtrip_sample_path": entry.vae_roundtrip_sample_path or "",
        }
        return row, [] if profile is None else profile_rows(row, profile)

    def _decompose(
        self, entry: Entry, original: Original, inpainted: np.ndarray, pixel_error: np.ndarray
    ) -> tuple[dict[str, Any], parts_of.Profile]:
        """The decomposition's columns and profile of a checked entry."""
        key = _partition_key(entry)
        try:
            partition = self.partitions.get(key)
        except InputError as exc:  # a latent-mask rule on an image not a multiple of 8
            raise InputError(f"manifest {entry.manifest}: {exc}") from None
        floor_key = _floor_sums_key(entry)
        floor_sums = None if floor_key is None else self.floor_sums.get(floor_key)
        values, profile = parts_of.decompose(
            self.features.get(entry.image_path),
            self.geometries.get(entry.mask_path),
            self.splits.get((entry.image_path, entry.mask_path)),
            partition,
            inpainted,
            pixel_error,
            floor_sums,
        )
        sample = self._floor(entry, original, _sample_key(entry))
        values["mse_outside_vae_sample"] = sample["mse_outside_vae"]
        return values, profile

    def _release(self, entry: Entry) -> None:
        """One use of each of ``entry``'s inputs done (loaded or not)."""
        self.originals.done(entry.image_path)
        self.contents.done(entry.image)
        self.masks.done(entry.mask_path)
        self.regions.done((entry.mask_path, entry.image))
        for path in self._roundtrips(entry):
            self.roundtrips.done(path)
        for key in (_floor_key(entry), _sample_key(entry) if self.decompose else None):
            if key is not None:
                self.floors.done(key)
        if self.decompose:
            self.features.done(entry.image_path)
            self.geometries.done(entry.mask_path)
            self.splits.done((entry.image_path, entry.mask_path))
            self.partitions.done(_partition_key(entry))
            floor_key = _floor_sums_key(entry)
            if floor_key is not None:
                self.floor_sums.done(floor_key)

    def _floor(self, entry: Entry, original: Original, key: _FloorKey | None) -> dict[str, float]:
        """The VAE floor of ``entry`` through the round trip of ``key`` (NaN without one
        in its manifest)."""
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


def _radius_px(entry: Entry, width: int, height: int) -> int | None:
    """The disc radius of ``entry``'s mask in px, from the formula the mask rule draws
    with, for a disc drawn as the study drew it (None for other shapes and dilated
    discs: the thesis' disc columns are NaN there); InputError naming the manifest for a
    radius_pct outside (0, 100]."""
    if entry.radius_pct is None or entry.mask_kind != "circle" or entry.mask_dilate_px:
        return None
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


_Rows = list[tuple[dict[str, Any], list[dict[str, Any]]]]


def _serial_rows(inputs: _Inputs, entries: Sequence[Entry]) -> _Rows:
    rows: _Rows = []
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
    entries: list[Entry],
    band_px: int,
    threads: int,
    region_maps: Mapping[str, str],
    decompose: bool = True,
) -> tuple[list[dict[str, Any]], pa.Table]:
    """The metrics table's rows for ``entries`` and the profile, each in table order."""
    # Work through entries grouped by image and mask so each cached array is released soon.
    entries = sorted(entries, key=lambda e: (e.image_path, e.mask_path))
    inputs = _Inputs(entries, band_px, region_maps, decompose)
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
    # The profile's rows are sorted as an Arrow table: hundreds of rows per image, too
    # many for sort_rows' Python keys.
    profile = sort_table(
        arrow_table([line for _, lines in rows for line in lines], PROFILE), PROFILE
    )
    return sort_rows([row for row, _ in rows]), profile


def _check_threads(threads: object) -> int:
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InputError(f"threads must be an integer >= 1, got {threads!r}")
    return threads


def metrics_tables(
    manifest_paths: Sequence[str | os.PathLike[str]],
    band_px: int = 8,
    threads: int = 1,
    region_maps: Mapping[str, str] | None = None,
    *,
    decompose: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The metrics table (:func:`metrics_table`) and the profile (columns
    :data:`maskleak.metrics.profile.COLUMNS`: each inpainting's outside error by distance
    bin and texture decile), built in one pass over the inpaintings.

    ``decompose=False`` leaves out the decomposition (:mod:`maskleak.metrics.decompose`):
    its columns are NaN (``n_seam_inside`` 0) and the profile is empty. It exists for the
    benchmark, whose baseline it is: the metrics as they were before it."""
    band_px = _check_band_px(band_px)
    threads = _check_threads(threads)
    entries = [entry for path in manifest_paths for entry in read_manifest(path)]
    rows, profile = _rows(entries, band_px, threads, region_maps or {}, decompose)
    return typed_frame(rows), profile.to_pandas(use_threads=False)


def metrics_table(
    manifest_paths: Sequence[str | os.PathLike[str]],
    band_px: int = 8,
    threads: int = 1,
    region_maps: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """One row of :func:`pair_metrics` (plus the run's parameters and the decomposition
    of :mod:`maskleak.metrics.decompose`) per inpainting listed in the inpaint
    manifests, columns :data:`COLUMNS`, sorted by experiment, model, variant, image,
    radius_pct, strength, seed, pass. Paths in manifests are relative to the working
    directory.

    Each original and each mask is decoded once (and dropped after its last use); entries
    are processed on ``threads`` threads, since PIL decoding and numpy release the GIL.
    Raises InputError naming the file for a malformed manifest, a missing or corrupt PNG,
    or an image/mask/inpainting size mismatch.

    ``region_maps`` maps image names to ground-truth region PNGs (procedural landscapes:
    landscapes.FLAT / TEXTURED codes) for the flat/textured split."""
    return metrics_tables(manifest_paths, band_px, threads, region_maps)[0]


def write_metrics(
    manifest_paths: Sequence[str | os.PathLike[str]],
    out_path: str | os.PathLike[str],
    band_px: int = 8,
    threads: int = 1,
    region_maps: Mapping[str, str] | None = None,
    profile_path: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Build :func:`metrics_tables` and write the metrics table atomically as Parquet
    with provenance to ``out_path`` (and the profile to ``profile_path`` if given)."""
    table, profile = metrics_tables(
        manifest_paths, band_px=band_px, threads=threads, region_maps=region_maps
    )
    record = {
        "stage": "metrics",
        "band_px": band_px,
        "manifests": [os.fspath(p) for p in manifest_paths],
        "region_maps": dict(region_maps or {}),
    }
    write_parquet(table, Path(out_path), record)
    if profile_path is not None:
        write_parquet(profile, Path(profile_path), {**record, "stage": "profile"})
    return table


def write_image_metrics(
    manifest_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    band_px: int = 8,
    region_map: str | os.PathLike[str] | None = None,
    profile_path: str | os.PathLike[str] | None = None,
    *,
    decompose: bool = True,
) -> pd.DataFrame:
    """The metrics rows of ONE inpaint manifest (one model on one image), written
    atomically as Parquet with provenance to ``out_path``: one light job per manifest,
    whose parts :func:`merge_metrics` joins into exactly ``metrics_table(all manifests)``;
    and its profile rows to ``profile_path`` if given, whose parts
    :func:`maskleak.metrics.profile.merge_profile` joins into exactly the profile of
    :func:`metrics_tables`.

    ``region_map`` is the path of that image's ground-truth region PNG, or None (no
    flat/textured split). The frame returned and written equals
    ``metrics_table([manifest_path], band_px, region_maps={image: region_map})``. Runs on
    one thread. Raises InputError as :func:`metrics_table` does; a missing inpainting's
    message names the manifest and the ``snakemake --forcerun`` that recomputes it.
    ``decompose``: as in :func:`metrics_tables` (False only for the benchmark)."""
    band_px = _check_band_px(band_px)
    manifest = os.fspath(manifest_path)
    entries = read_manifest(manifest)
    region = None if region_map is None else os.fspath(region_map)
    maps = {} if region is None else {entry.image: region for entry in entries}
    rows, profile = _rows(entries, band_px, 1, maps, decompose)
    table = arrow_table(rows)
    record = {
        "stage": "image_metrics",
        "band_px": band_px,
        "manifest": manifest,
        "region_map": region,
    }
    write_table(table, out_path, record, intermediate=True)
    if profile_path is not None:
        write_table(
            profile,
            profile_path,
            {**record, "stage": "image_profile"},
            intermediate=True,
        )
    return table.to_pandas(use_threads=False)
