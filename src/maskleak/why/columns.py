"""The why table's columns (mirrors workflow/schemas/why.columns.yaml, which documents
each one) and the metrics-table columns the analysis reads."""

from __future__ import annotations

from maskleak import mechanisms

#: The experiment whose rows the analysis and the mechanism figures read.
EXPERIMENT = "mechanism_sweep"

ATTRIBUTION, VARIANT_EFFECT, SEAM_COST, PASS_GROWTH = (
    "attribution",
    "variant_effect",
    "seam_cost",
    "pass_growth",
)
ANALYSES = (ATTRIBUTION, VARIANT_EFFECT, SEAM_COST, PASS_GROWTH)

SHARE, CHANGE, RELATIVE_CHANGE = "share", "change", "relative_change"
#: seam_cost's quantity: the paired change of :data:`SEAM_COLUMN`.
SEAM_STEP_CHANGE = "seam_step_change"

#: Unit of each quantity's value and interval.
UNITS: dict[str, str] = {
    SHARE: "fraction of mse_outside",
    CHANGE: "(8-bit level)²",
    RELATIVE_CHANGE: "fraction of reference_mean",
    SEAM_STEP_CHANGE: "8-bit level",
}

#: The metrics column of the seam a variant leaves at the mask edge: the step across
#: the edge beyond the original's own there (metrics.columns.yaml).
SEAM_COLUMN = "seam_step_excess"

#: The outside error's three parts, which sum exactly to mse_outside: part name ->
#: metrics column, in stacking order (the floor at the bottom).
PARTS: dict[str, str] = {
    "vae_floor": "mse_outside_part_vae",
    "latent_footprint": "mse_outside_part_footprint",
    "beyond_footprint": "mse_outside_part_beyond",
}

#: How the page and the figures name each part.
PART_NAMES: dict[str, str] = {
    "vae_floor": "the VAE floor",
    "latent_footprint": "the latent footprint",
    "beyond_footprint": "pixels beyond the footprint",
}

#: The columns that pair a variant's inpainting with the baseline's (with pass 1), or a
#: pass with the first pass of the same variant.
PAIR_KEYS: tuple[str, ...] = ("image", "mask_id", "strength", "seed")

#: Metrics columns the analysis reads.
REQUIRED: tuple[str, ...] = (
    "experiment",
    "model",
    "pipeline",
    "variant",
    "pass",
    *PAIR_KEYS,
    *mechanisms.NAMES,
    "mse_outside",
    *PARTS.values(),
    SEAM_COLUMN,
)

#: Column -> dtype of the why table, in column order.
DTYPES: dict[str, str] = {
    "analysis": "str",
    "model": "str",
    "pipeline": "str",
    "variant": "str",
    "changes": "str",
    "strength": "float64",
    "pass": "int64",
    "part": "str",
    "quantity": "str",
    "value": "float64",
    "ci_low": "float64",
    "ci_high": "float64",
    "unit": "str",
    "reference_mean": "float64",
    "compared_mean": "float64",
    "n_images": "int64",
    "n_seeds": "int64",
    "n_rows": "int64",
    "resampled": "str",
}
COLUMNS: tuple[str, ...] = tuple(DTYPES)
