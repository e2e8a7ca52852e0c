"""The metrics table's columns, dtypes and row order, shared by every writer and reader of
it, so that a table built at once and one merged from per-image parts are identical."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd

from maskleak.errors import InputError

if TYPE_CHECKING:
    import pyarrow as pa

#: Column -> dtype of the metrics table, in column order (mirrors
#: workflow/schemas/metrics.columns.yaml, which documents each one).
DTYPES: dict[str, str] = {
    "experiment": "str",
    "model": "str",
    "pipeline": "str",
    "variant": "str",
    "image": "str",
    "mask_kind": "str",
    "mask_id": "str",
    "radius_pct": "float64",
    "radius_px": "float64",
    "area_frac": "float64",
    "area_frac_thesis": "float64",
    "perimeter_px": "int64",
    "n_components": "int64",
    "mask_dilate_px": "int64",
    "mask_blur_px": "float64",
    "strength": "float64",
    "seed": "int64",
    "pass": "int64",
    "steps": "int64",
    "steps_run": "int64",
    "mode": "str",
    "latent_encoding": "str",
    "latent_mask": "str",
    "final_latent_paste": "bool",
    "paste_back": "str",
    "paste_blur_px": "float64",
    "passes": "int64",
    "dtype": "str",
    "unet_in_channels": "int64",
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
    "mse_outside_vae": "float64",
    "mse_outside_band_vae": "float64",
    "mse_outside_far_vae": "float64",
    "mse_outside_vae_sample": "float64",
    "excess_over_floor": "float64",
    "n_outside_footprint": "float64",
    "n_outside_beyond": "float64",
    "mse_outside_footprint": "float64",
    "mse_outside_beyond": "float64",
    "mse_outside_part_vae": "float64",
    "mse_outside_part_footprint": "float64",
    "mse_outside_part_beyond": "float64",
    "n_seam_inside": "int64",
    "mse_seam_inside": "float64",
    "seam_step": "float64",
    "seam_step_original": "float64",
    "seam_step_excess": "float64",
    "shift_r_outside": "float64",
    "shift_g_outside": "float64",
    "shift_b_outside": "float64",
    "delta_e_outside": "float64",
    "ssim_outside": "float64",
    "texture_spearman": "float64",
    "bb_mse_outside": "float64",
    "bb_psnr_outside": "float64",
    "image_path": "str",
    "mask_path": "str",
    "inpainted_path": "str",
    "vae_roundtrip_path": "str",
    "vae_roundtrip_sample_path": "str",
}
COLUMNS: tuple[str, ...] = tuple(DTYPES)

#: Row order. A table of one variant and one pass (every table written before variants
#: existed) keeps the order it had without the two keys.
SORT_KEYS = (
    "experiment",
    "model",
    "variant",
    "image",
    "radius_pct",
    "mask_id",
    "strength",
    "seed",
    "pass",
)
# Ties in the documented key (e.g. the same model run at two step counts) are broken by
# these so the row order never depends on the order manifests were listed in.
TIE_BREAKERS = ("steps", "mode", "inpainted_path")


@dataclass(frozen=True, eq=False)
class TableSpec:
    """A table's columns, their dtypes and its row order: what its writers, its parts'
    reader and its merge share. ``name`` names its parts in messages ("metrics part
    ...")."""

    name: str
    dtypes: Mapping[str, str]
    order: tuple[str, ...]  # sort keys, then tie breakers

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.dtypes)

    @functools.cached_property
    def schema(self) -> pa.Schema:
        """The Arrow schema of :func:`arrow_table`'s tables."""
        return arrow_table([], self).schema

    @functools.cached_property
    def expected(self) -> dict[str, Any]:
        """The pandas dtypes of a typed frame ("str" is object under pandas 2)."""
        return dict(typed_frame([], self).dtypes.items())


#: The metrics table.
METRICS = TableSpec("metrics", DTYPES, SORT_KEYS + TIE_BREAKERS)


def _arrow_type(dtype: str) -> Any:
    import pyarrow as pa

    return pa.large_string() if dtype == "str" else pa.from_numpy_dtype(np.dtype(dtype))


def arrow_table(rows: Sequence[Mapping[str, Any]], spec: TableSpec = METRICS) -> pa.Table:
    """``rows`` (dicts with every column) as an Arrow table of ``spec``'s columns, typed."""
    import pyarrow as pa

    names = spec.columns
    columns = zip(*map(itemgetter(*names), rows), strict=True) if rows else [()] * len(names)
    arrays = [
        pa.array(values, type=_arrow_type(dtype))
        for values, dtype in zip(columns, spec.dtypes.values(), strict=True)
    ]
    return pa.table(arrays, names=list(names))


def table_schema() -> pa.Schema:
    """The Arrow schema of the metrics table."""
    return METRICS.schema


def typed_frame(rows: Sequence[Mapping[str, Any]], spec: TableSpec = METRICS) -> pd.DataFrame:
    """``rows`` (dicts with every column) as a frame with ``spec``'s columns and dtypes.

    Equal to ``pd.DataFrame(rows, columns=COLUMNS).astype(DTYPES)`` (tested), built
    through Arrow because that is 3x faster for the few dozen rows of one image."""
    return arrow_table(rows, spec).to_pandas(use_threads=False)


def _sort_value(value: Any, is_float: bool) -> Any:
    # NaN last, as pandas sorts it, and equal to NaN: a NaN inside a key tuple would end
    # the comparison there, so the later keys would be ignored.
    if not is_float:
        return value
    return (1, 0.0) if value != value else (0, value)


_Row = TypeVar("_Row", bound=Mapping[str, Any])


def sort_rows(rows: Sequence[_Row], spec: TableSpec = METRICS) -> list[_Row]:
    """``rows`` in table order, the order :func:`sort_frame` gives their frame (stable
    Python sort on key tuples: a tenth of a millisecond for one image's rows)."""
    names = spec.order
    floats = [spec.dtypes[name] == "float64" for name in names]
    return sorted(
        rows,
        key=lambda row: tuple(
            _sort_value(row[name], is_float) for name, is_float in zip(names, floats, strict=True)
        ),
    )


def _sort_codes(values: list[Any]) -> np.ndarray:
    """Integer codes that sort like the strings ``values`` (by code point, as pandas)."""
    rank = {value: i for i, value in enumerate(sorted(set(values)))}
    return np.array([rank[value] for value in values], dtype=np.intp)


def sort_order(column: Callable[[str], Any], n_rows: int, spec: TableSpec = METRICS) -> np.ndarray:
    """Row indices in table order: by ``spec.order`` (for the metrics table
    :data:`SORT_KEYS` then :data:`TIE_BREAKERS`), ascending, NaN last, stable (rows with
    equal keys keep their order), as ``frame.sort_values(keys, kind="mergesort")`` orders
    them (tested). ``column(name)`` gives a column as a list (strings) or an array
    (numbers).

    One ``np.lexsort`` over the numeric keys and code-point ranks of the string keys: a
    fraction of a millisecond for the rows of one image (pandas takes over 1 ms at any
    size), some 15 ms for 5000 rows."""
    if n_rows == 0:
        return np.arange(0)
    keys = []
    for name in reversed(spec.order):  # np.lexsort's last key sorts first
        values = column(name)
        keys.append(_sort_codes(list(values)) if spec.dtypes[name] == "str" else np.asarray(values))
    return np.lexsort(keys)


def sort_table(table: pa.Table, spec: TableSpec = METRICS) -> pa.Table:
    """``table``'s rows in table order (:func:`sort_order`)."""
    order = sort_order(
        lambda name: table.column(name).to_numpy(zero_copy_only=False), table.num_rows, spec
    )
    return table.take(order)


def sort_frame(frame: pd.DataFrame, spec: TableSpec = METRICS) -> pd.DataFrame:
    """``frame``'s rows in table order (:func:`sort_order`), index reset."""
    order = sort_order(lambda name: frame[name].to_numpy(), len(frame), spec)
    return frame.take(order).reset_index(drop=True)


def check_frame(
    frame: pd.DataFrame, path: str | os.PathLike[str], spec: TableSpec = METRICS
) -> None:
    """InputError naming ``path`` unless ``frame`` has exactly ``spec``'s columns, in
    order, with their dtypes."""
    name = os.fspath(path)
    columns = [str(c) for c in frame.columns]
    if columns != list(spec.columns):
        missing = [c for c in spec.columns if c not in columns]
        extra = [c for c in columns if c not in spec.dtypes]
        raise InputError(
            f"{spec.name} part {name}: its columns are not the {spec.name} table's "
            f"(missing {missing}, unexpected {extra}, or out of order); "
            "rerun its metrics job"
        )
    dtypes = dict(frame.dtypes.items())
    wrong = {c: str(dtypes[c]) for c in spec.columns if dtypes[c] != spec.expected[c]}
    if wrong:
        expected = {c: spec.dtypes[c] for c in wrong}
        raise InputError(
            f"{spec.name} part {name}: wrong dtypes {wrong}, expected {expected}; "
            "rerun its metrics job"
        )
