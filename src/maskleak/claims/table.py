"""The claims table: each of the study's 8 claims (STUDY.md, "The study's claims") tested
on a run's own metrics, per model (and its pipeline) and per metric, the true MSE and the
study's wrapped uint8 number. One row per claim x model x metric, columns
:data:`COLUMNS` (documented in workflow/schemas/claims.columns.yaml).

The default run and the thesis config go through this same code: only the metrics
table differs. How a statistic and its interval become a verdict is in
:mod:`maskleak.claims.verdicts`; the statistics are in :mod:`~maskleak.claims.strength`
(claims 1, 2, 3, 8), :mod:`~maskleak.claims.regions` (4, 5) and
:mod:`~maskleak.claims.mask_size` (6, 7).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from maskleak.analysis_table import write_analysis
from maskleak.as_shipped import experiment_rows
from maskleak.bootstrap import N_RESAMPLES
from maskleak.claims import mask_size, regions, strength
from maskleak.claims.catalogue import CLAIMS, Claim
from maskleak.claims.page import write_page
from maskleak.claims.verdicts import PRACTICAL_REL, Finding, not_testable
from maskleak.provenance import require_columns

#: Column -> dtype of the claims table, in column order (mirrors
#: workflow/schemas/claims.columns.yaml).
DTYPES: dict[str, str] = {
    "claim": "int64",
    "claim_text": "str",
    "model": "str",
    "pipeline": "str",
    "metric": "str",
    "statistic": "str",
    "value": "float64",
    "ci_low": "float64",
    "ci_high": "float64",
    "unit": "str",
    "reference": "float64",
    "margin": "float64",
    "direction": "str",
    "verdict": "str",
    "evidence": "str",
    "n_images": "int64",
    "n_seeds": "int64",
    "resampled": "str",
    "figures": "str",
}
COLUMNS: tuple[str, ...] = tuple(DTYPES)

#: The two metrics every claim is tested with: the true MSE and the study's wrapped number
#: (for the mask-size claims 6 and 7, its experiment-2 version mse_whitedisc_thesis).
METRICS: tuple[str, ...] = ("mse_outside", "mse_outside_thesis")

#: Metrics-table columns the claims read.
REQUIRED: tuple[str, ...] = (
    "experiment",
    "model",
    "pipeline",
    "image",
    "seed",
    "strength",
    "mask_id",
    "radius_pct",
    "area_frac",
    "area_frac_thesis",
    "band_px",
    "mse_outside",
    "mse_outside_thesis",
    "mse_whitedisc_thesis",
    "frac_changed_outside",
    "mse_outside_band",
    "mse_outside_far",
    "mse_outside_vae",
    "mse_outside_far_vae",
    "mse_outside_flat",
    "mse_outside_textured",
)


_Test = Callable[[pd.DataFrame, str, int, int], Finding]

#: Claim number -> its test: (one model's rows of the claim's sweep, metric,
#: n_resamples, seed) -> Finding.
_TESTS: dict[int, _Test] = {
    1: strength.changes_outside,
    2: strength.grows_with_strength,
    3: strength.variance_grows,
    4: regions.flat_vs_textured,
    5: regions.edge_band_most,
    6: mask_size.little_effect,
    7: mask_size.small_masks_less,
    8: strength.noise_everywhere,
}

_SWEEP_NAMES = {"strength_sweep": "strength sweep", "mask_size_sweep": "mask-size sweep"}


def _test(claim: Claim, rows: pd.DataFrame, metric: str, n_resamples: int, seed: int) -> Finding:
    if rows.empty:
        return not_testable(
            "",
            "",
            f"Not testable: the run has no {_SWEEP_NAMES[claim.experiment]} of this model.",
        )
    return _TESTS[claim.number](rows, metric, n_resamples, seed)


def claims_table(
    metrics: pd.DataFrame, n_resamples: int = N_RESAMPLES, seed: int = 0
) -> pd.DataFrame:
    """Every claim tested on ``metrics`` (a metrics table with the ``pipeline`` and
    ``area_frac_thesis`` columns), per model and metric: one row per claim x model x
    metric in that order, columns :data:`COLUMNS`. Intervals: ``n_resamples``
    hierarchical bootstrap resamples (images, then seeds within each image) drawn from
    ``seed``; the same inputs give the same table."""
    rows = []
    if len(metrics):
        require_columns(metrics, REQUIRED, "metrics")
    for (model, pipeline), by_model in metrics.groupby(["model", "pipeline"], sort=True):
        sweeps = {
            name: by_model[experiment_rows(by_model, name)].reset_index(drop=True)
            for name in _SWEEP_NAMES
        }
        for claim in CLAIMS:
            for metric in METRICS:
                found = _test(claim, sweeps[claim.experiment], metric, n_resamples, seed)
                rows.append(
                    {
                        "claim": claim.number,
                        "claim_text": claim.text,
                        "model": str(model),
                        "pipeline": str(pipeline),
                        "metric": metric,
                        **asdict(found),
                        "figures": ", ".join(claim.figures),
                    }
                )
    frame = pd.DataFrame(rows, columns=list(COLUMNS)).astype(DTYPES)
    order = {metric: i for i, metric in enumerate(METRICS)}
    frame = frame.sort_values(
        ["claim", "model", "metric"], key=lambda c: c.map(order) if c.name == "metric" else c
    )
    return frame.reset_index(drop=True)[list(COLUMNS)]


def write_claims(
    metrics_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    page_path: str | os.PathLike[str] | None = None,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> None:
    """Read the metrics Parquet, test the claims, write the table atomically with
    provenance and, if ``page_path`` is given, the verdict page (HTML) for the report."""
    extra = {"practical_rel": PRACTICAL_REL}
    table, record = write_analysis(
        metrics_path, out_path, claims_table, "claims", n_resamples, seed, extra
    )
    if page_path is not None:
        write_page(table, Path(page_path), record, os.fspath(out_path))
