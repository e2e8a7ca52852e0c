"""Small metrics and profile tables of a mechanism sweep, built row by row from functions
the tests choose, so that every statistic and figure value is known in advance. Column
names follow workflow/schemas/metrics.columns.yaml (and the profile table's)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

MECHANISMS: dict[str, Any] = {
    "latent_encoding": "sample",
    "latent_mask": "torch_nearest",
    "final_latent_paste": True,
    "paste_back": "none",
    "paste_blur_px": 0.0,
    "passes": 1,
    "dtype": "",  # the metrics' value when the manifest records none
}

#: Variant -> what it changes (as the config's variants section).
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "mask_cover": {"latent_mask": "cover"},
    "final_paste_on": {"final_latent_paste": True},  # today's pipeline already pastes
    "paste_hard": {"paste_back": "hard"},
    "paste_soft": {"paste_back": "soft", "paste_blur_px": 4.0},
    "passes_3": {"passes": 3},
}

#: (image index, seed, strength, variant, pass) -> (vae floor, footprint, beyond) parts.
Parts = Callable[[int, int, float, str, int], tuple[float, float, float]]
#: (image index, seed, strength, paste_back) -> seam_step_excess.
Seam = Callable[[int, int, float, str], float]

#: What each paste-back mode adds to the step across the mask edge: hard pastes the
#: original next to the decoded image, 6 levels sharper than the baseline plus 1 per
#: image index; soft blends them, 1.5 levels.
SEAM_ADDED = {"none": lambda image: 0.0, "hard": lambda image: 6.0 + image, "soft": lambda _: 1.5}


def default_parts(image: int, seed: int, strength: float, variant: str, pass_: int):
    """Parts as the metrics define them: the floor is the image's own (the same for
    every seed, variant and pass); the footprint and beyond parts grow with strength and
    pass, image 1 has more footprint error than image 0, seeds differ a little; hard
    paste-back leaves no error (the parts beyond the floor are its negative), soft
    paste-back keeps a fifth of the error beyond the floor."""
    vae = 2.0 + 0.5 * image
    if variant == "paste_hard":
        return vae, -0.75 * vae, -0.25 * vae
    footprint = (1.0 + image) * (1.0 + 4.0 * strength) + 0.2 * seed
    beyond = 0.5 * strength + 0.05 * image
    if variant == "mask_cover":
        footprint *= 1.25
    scale = float(pass_) * (0.2 if variant == "paste_soft" else 1.0)
    return vae, scale * footprint, scale * beyond


def default_seam(image: int, seed: int, strength: float, paste_back: str) -> float:
    """seam_step_excess: the baseline's grows with strength (0.5 per unit) and the seed
    (0.1 per seed); paste-back adds :data:`SEAM_ADDED`."""
    return 0.5 * strength + 0.1 * seed + SEAM_ADDED[paste_back](image)


def metrics_table(
    images: Sequence[str] = ("im0", "im1", "im2"),
    seeds: Sequence[int] = (0, 1),
    strengths: Sequence[float] = (0.25, 0.75),
    variants: Mapping[str, Mapping[str, Any]] = VARIANTS,
    parts: Parts = default_parts,
    radii: Sequence[float] = (80.0,),
    experiment: str = "mechanism_sweep",
    model: str = "tiny4",
    pipeline: str = "diffusers",
    seam: Seam = default_seam,
) -> pd.DataFrame:
    """One row per inpainting, with the columns the analysis and the figures read. The
    original's step across the mask edge (seam_step_original) is 4 + the image index;
    mse_seam_inside is 3 x strength, one less for soft paste-back (it blends the original
    into the band), the same for hard (it leaves the inside as it was)."""
    rows = []
    for variant, changed in variants.items():
        mech = {**MECHANISMS, **changed}
        for pass_ in range(1, int(mech["passes"]) + 1):
            for i, image in enumerate(images):
                for radius in radii:
                    area = math.pi * (radius / 200) ** 2
                    for strength in strengths:
                        for seed in seeds:
                            vae, footprint, beyond = parts(i, seed, strength, variant, pass_)
                            total = vae + footprint + beyond
                            hard = mech["paste_back"] == "hard"
                            soft = mech["paste_back"] == "soft"
                            excess = seam(i, seed, strength, mech["paste_back"])
                            rows.append(
                                {
                                    "experiment": experiment,
                                    "model": model,
                                    "pipeline": pipeline,
                                    "variant": variant,
                                    "pass": pass_,
                                    **mech,
                                    "image": image,
                                    "radius_pct": radius,
                                    "mask_id": f"r{radius:g}",
                                    "mask_kind": "circle",
                                    "area_frac": area,
                                    "strength": strength,
                                    "seed": seed,
                                    "mse_outside": total,
                                    "mse_outside_vae": vae,
                                    "mse_outside_part_vae": vae,
                                    "mse_outside_part_footprint": footprint,
                                    "mse_outside_part_beyond": beyond,
                                    "mse_seam_inside": 3.0 * strength - (1.0 if soft else 0.0),
                                    "seam_step": 4.0 + i + excess,
                                    "seam_step_original": 4.0 + i,
                                    "seam_step_excess": excess,
                                    "delta_e_outside": 0.0 if hard else area * (1 + strength),
                                    "shift_r_outside": 0.0 if hard else 0.5 * strength,
                                    "shift_g_outside": 0.0 if hard else -0.2 * strength,
                                    "shift_b_outside": 0.0 if hard else 0.1 * area,
                                    "texture_spearman": 0.5 + 0.1 * i,
                                }
                            )
    return pd.DataFrame(rows)


DISTANCE_BINS = [(0, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 128), (128, math.inf)]


def profile_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per metrics row: 7 distance bins (0-6) whose mse falls with distance (the last has
    no pixels: NaN) and 10 texture deciles (bins 0-9) whose mse grows with the decile."""
    keys = ["experiment", "model", "pipeline", "variant", "image", "radius_pct", "mask_id"]
    keys += ["strength"]
    keys += ["seed", "pass"]
    rows = []
    for _, row in metrics.iterrows():
        base = {k: row[k] for k in keys}
        scale = float(row["mse_outside"])
        for b, (lo, hi) in enumerate(DISTANCE_BINS):
            empty = hi == math.inf
            rows.append(
                {
                    **base,
                    "kind": "distance",
                    "bin": b,
                    "lo": float(lo),
                    "hi": float(hi),
                    "n_pixels": 0 if empty else 10 * (b + 1),
                    "mse": math.nan if empty else scale / (b + 1),
                    "mse_vae": math.nan if empty else 2.0,
                }
            )
        for decile in range(10):
            rows.append(
                {
                    **base,
                    "kind": "texture",
                    "bin": decile,
                    "lo": float(decile),
                    "hi": float(decile + 1),
                    "n_pixels": 25,
                    "mse": scale * (decile + 1) / 5,
                    "mse_vae": 2.0,
                }
            )
    return pd.DataFrame(rows)
