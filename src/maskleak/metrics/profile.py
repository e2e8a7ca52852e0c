"""The profile: a long table of each inpainting's outside error by distance from the mask
and by texture decile (workflow/schemas/profile.columns.yaml), written beside the metrics
table by the same jobs (:func:`maskleak.metrics.write_image_metrics`) and merged the same
way (:func:`merge_profile`)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from maskleak.metrics.columns import SORT_KEYS, TableSpec
from maskleak.metrics.decompose import DISTANCE_EDGES_PX, N_DISTANCE, N_TEXTURE, Profile
from maskleak.metrics.merge import merge_parts

#: Column -> dtype of the profile, in column order (mirrors
#: workflow/schemas/profile.columns.yaml).
DTYPES: dict[str, str] = {
    "experiment": "str",
    "model": "str",
    "pipeline": "str",
    "variant": "str",
    "image": "str",
    "radius_pct": "float64",
    "mask_id": "str",
    "strength": "float64",
    "seed": "int64",
    "pass": "int64",
    "kind": "str",
    "bin": "int64",
    "lo": "float64",
    "hi": "float64",
    "n_pixels": "int64",
    "mse": "float64",
    "mse_vae": "float64",
    "inpainted_path": "str",
}
COLUMNS: tuple[str, ...] = tuple(DTYPES)
#: The inpainting's columns a profile row repeats (its key in the metrics table, but the
#: tie breakers steps and mode: ``inpainted_path`` names the inpainting).
IDENTITY = tuple(name for name in COLUMNS[:10]) + ("inpainted_path",)
DISTANCE, TEXTURE = "distance", "texture"

PROFILE = TableSpec(
    "profile",
    DTYPES,
    (*SORT_KEYS, "inpainted_path", "kind", "bin"),
)


def profile_rows(identity: Mapping[str, Any], profile: Profile) -> list[dict[str, Any]]:
    """The profile's rows of one inpainting: :data:`N_DISTANCE` distance bins, then
    :data:`N_TEXTURE` texture deciles, each with ``identity`` (:data:`IDENTITY`)."""
    base = {name: identity[name] for name in IDENTITY}
    rows = []
    for k in range(N_DISTANCE):
        rows.append(
            {
                **base,
                "kind": DISTANCE,
                "bin": k,
                "lo": DISTANCE_EDGES_PX[k],
                "hi": DISTANCE_EDGES_PX[k + 1],
                "n_pixels": int(profile.distance_n[k]),
                "mse": float(profile.distance_mse[k]),
                "mse_vae": float(profile.distance_mse_vae[k]),
            }
        )
    for k in range(N_TEXTURE):
        rows.append(
            {
                **base,
                "kind": TEXTURE,
                "bin": k,
                "lo": float(profile.texture_edges[k]),
                "hi": float(profile.texture_edges[k + 1]),
                "n_pixels": int(profile.texture_n[k]),
                "mse": float(profile.texture_mse[k]),
                "mse_vae": float(profile.texture_mse_vae[k]),
            }
        )
    return rows


def merge_profile(
    part_paths: Sequence[str | os.PathLike[str]], out_path: str | os.PathLike[str]
) -> pd.DataFrame:
    """Concatenate per-image profile parts into the profile and write it atomically as
    Parquet with provenance: the rows, order and values that
    :func:`maskleak.metrics.metrics_tables` gives at once. InputError naming a part that
    is missing, unreadable or not of the profile's columns and dtypes."""
    return merge_parts(part_paths, out_path, PROFILE, "profile")
