"""The quality report's bars, column definitions, summary and files."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from maskleak.errors import InputError
from maskleak.training.quality.measures import (
    BRUSHBENCH_BB_PSNR_RANGE_DB,
    BRUSHBENCH_SOURCE,
    bb_psnr_to_mse,
    ratio,
)
from maskleak.training.quality.report import GUIDANCE_SCALE, PROMPT, STEPS, STRENGTH

#: Bar 1: mse_inside <= this x mse_inside_mean_fill (issue 12, "Quality bars").
INSIDE_OVER_MEAN_FILL_BAR = 2.0
#: Bar 2, "far below the untrained model's", made a number: mse_inside <= this x the
#: untrained reference's mse_inside.
FAR_BELOW_REFERENCE_FACTOR = 0.5

#: The table's column definitions, one source of truth with the reports' docs.
COLUMNS_YAML = (
    Path(__file__).resolve().parents[4] / "workflow" / "schemas" / "inpaint_quality.columns.yaml"
)


def _load_columns() -> dict[str, str]:
    import yaml

    table = yaml.safe_load(COLUMNS_YAML.read_text())
    return {
        c["name"]: (f"{c['unit']}: " if c["unit"] else "") + c["definition"]
        for c in table["columns"]
    }


#: Every column a report can give: name -> unit and definition (recorded in the Parquet
#: file's metadata), from workflow/schemas/inpaint_quality.columns.yaml.
COLUMNS: dict[str, str] = _load_columns()


def _mean(rows: Sequence[Mapping[str, Any]], column: str) -> float:
    return float(np.mean([float(r[column]) for r in rows]))


def _bar_ratio(rows: Sequence[Mapping[str, Any]], num: str, den: str, bar: float) -> dict[str, Any]:
    """A bar on the ratio of two columns' means over all rows (pooled: one flat hole whose
    mean fill is nearly exact would swamp a mean of per-row ratios), with the per-row
    ratios' median and maximum and the share of rows that meet it alone."""
    num_mean, den_mean = _mean(rows, num), _mean(rows, den)
    per_row = np.array([ratio(float(r[num]), float(r[den])) for r in rows])
    finite = per_row[np.isfinite(per_row)]
    pooled = ratio(num_mean, den_mean)
    return {
        f"{num}_mean": num_mean,
        f"{den}_mean": den_mean,
        "ratio_of_means": pooled,
        "ratio_median": float(np.median(finite)) if finite.size else math.nan,
        "ratio_max": float(finite.max()) if finite.size else math.nan,
        "rows_meeting_bar": float(np.mean(finite <= bar)) if finite.size else math.nan,
        "bar": bar,
        "passes": bool(pooled <= bar),
    }


def _position(value: float, low: float, high: float) -> str:
    return "below" if value < low else "above" if value > high else "within"


def summarize(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per model: the bars it is measured against (pass/fail on the pooled ratio, see
    :func:`_bar_ratio`) and the outside error's means beside BrushBench's range. The
    BrushBench comparison is a report, not a bar: ``bb_psnr_outside_mean`` is the mean of
    per-row values, BrushBench's own aggregation; ``position`` says where it falls."""
    if not rows:
        raise InputError("quality summary: no rows")
    low, high = BRUSHBENCH_BB_PSNR_RANGE_DB
    models: dict[str, Any] = {}
    for label in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == label]
        entry: dict[str, Any] = {
            "rows": len(mine),
            "unet_in_channels": int(mine[0]["unet_in_channels"]),
            "images": sorted({r["image"] for r in mine}),
            "masks": list(dict.fromkeys(r["mask_id"] for r in mine)),
        }
        if "mse_inside" in mine[0]:
            entry["inside_vs_mean_fill"] = _bar_ratio(
                mine, "mse_inside", "mse_inside_mean_fill", INSIDE_OVER_MEAN_FILL_BAR
            )
        if "mse_inside_reference" in mine[0]:
            entry["inside_vs_reference"] = {
                "reference": mine[0]["reference"],
                **_bar_ratio(
                    mine, "mse_inside", "mse_inside_reference", FAR_BELOW_REFERENCE_FACTOR
                ),
            }
        if "mse_outside" in mine[0]:
            bb_mean = _mean(mine, "bb_psnr_outside")
            mse_mean = _mean(mine, "mse_outside")
            entry["outside"] = {
                "mse_outside_mean": mse_mean,
                "mse_outside_vae_mean": _mean(mine, "mse_outside_vae"),
                "excess_over_floor_mean": _mean(mine, "excess_over_floor"),
                "psnr_outside_mean": _mean(mine, "psnr_outside"),
                "bb_psnr_outside_mean": bb_mean,
                "bb_psnr_outside_vae_mean": _mean(mine, "bb_psnr_outside_vae"),
                "brushbench_bb_psnr_range_db": [low, high],
                "brushbench_mse_outside_range": [bb_psnr_to_mse(high), bb_psnr_to_mse(low)],
                "brushbench_source": BRUSHBENCH_SOURCE,
                "position": _position(bb_mean, low, high),
            }
        models[label] = entry
    return {"models": models}


def settings_record() -> dict[str, Any]:
    """The call every row measures, for the files' records."""
    return {
        "strength": STRENGTH,
        "steps": STEPS,
        "guidance_scale": GUIDANCE_SCALE,
        "prompt": PROMPT,
        "scheduler": "default (the folder's own)",
        "call": "maskleak.pipeline_choice.denoise, output_type pil = round(np * 255) to uint8",
        "generator": "one torch.Generator('cpu').manual_seed(seed) per call",
        "mse": "per element, 8-bit levels^2",
        "bars": {
            "inside_over_mean_fill": INSIDE_OVER_MEAN_FILL_BAR,
            "inside_over_reference": FAR_BELOW_REFERENCE_FACTOR,
        },
        "brushbench_bb_psnr_range_db": list(BRUSHBENCH_BB_PSNR_RANGE_DB),
    }


def write_quality(
    rows: Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    parameters: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``rows`` to the Parquet file ``path`` (maskleak.provenance.write_parquet:
    the record holds :func:`settings_record`, the caller's ``parameters`` (model folders
    and fingerprints, images, seeds, ...) and each column's definition) and the summary
    (:func:`summarize`, same record) to ``path`` with suffix ``.json``; returns the
    summary. A column not in :data:`COLUMNS` is an InputError naming it."""
    import pandas as pd

    from maskleak.provenance import versions, write_json, write_parquet

    if not rows:
        raise InputError(f"{os.fspath(path)}: no quality rows to write")
    names = list(rows[0])
    unknown = [c for c in names if c not in COLUMNS]
    if unknown:
        raise InputError(f"{os.fspath(path)}: quality column(s) {unknown} have no definition")
    record = {
        "stage": "training_quality",
        "settings": settings_record(),
        "parameters": dict(parameters or {}),
    }
    frame = pd.DataFrame([dict(r) for r in rows], columns=names)
    write_parquet(frame, path, {**record, "columns": {c: COLUMNS[c] for c in names}})
    summary = {**record, **summarize(rows)}
    write_json(Path(path).with_suffix(".json"), _json_safe({**summary, "versions": versions()}))
    return summary


def _json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (an identical outside's inf PSNR, a NaN
    ratio) as None: JSON has no inf or NaN, and the project writes strict JSON."""
    if isinstance(value, Mapping):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
