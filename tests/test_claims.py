"""Tests for maskleak.claims, on metrics tables built here whose truth is known by
construction (noise-free responses give exact statistics; seeded noise gives verdicts)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

from maskleak.claims.catalogue import CLAIMS, REPORT_CATEGORY, report_caption
from maskleak.claims.estimate import finite_rows, ratio, sample_sizes
from maskleak.claims.table import COLUMNS, claims_table, write_claims
from maskleak.claims.verdicts import (
    DOES_NOT_HOLD,
    HOLDS,
    INCONCLUSIVE,
    NOT_TESTABLE,
    PRACTICAL_REL,
    counted,
    number,
    verdict,
)
from maskleak.errors import InputError
from maskleak.provenance import read_parquet_record

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "claims.columns.yaml"
CAPTION = REPO / "workflow" / "report" / "claims.rst"
N = 100  # bootstrap resamples: enough for the verdicts below, fast

Response = Callable[[int, float, int], float]  # (image index, strength, seed) -> value


def row(experiment: str, image: int, strength: float, seed: int, **values: float) -> dict:
    base = {
        "experiment": experiment,
        "model": "tiny4",
        "pipeline": "diffusers",
        "image": f"im{image}",
        "seed": seed,
        "strength": strength,
        "radius_pct": 80.0,
        "mask_id": "r80",
        "mask_kind": "circle",
        "area_frac": 0.4,
        "area_frac_thesis": 0.41,
        "band_px": 8,
        "mse_outside": 10.0,
        "mse_outside_thesis": 8.0,
        "mse_whitedisc_thesis": 0.001,
        "frac_changed_outside": 0.5,
        "mse_outside_band": 20.0,
        "mse_outside_far": 5.0,
        "mse_outside_vae": 4.0,
        "mse_outside_far_vae": 5.0,
        "mse_outside_flat": math.nan,
        "mse_outside_textured": math.nan,
    }
    return {**base, **values}


def strength_sweep(
    mse: Response,
    strengths=(0.0, 0.5, 1.0),
    images=3,
    seeds=(0,),
    **columns: Response,
) -> pd.DataFrame:
    """A strength sweep where mse_outside (and mse_outside_thesis = 0.8 x it) follow
    ``mse``, and any other column its own response."""
    rows = []
    for i in range(images):
        for s in strengths:
            for seed in seeds:
                value = mse(i, s, seed)
                extra = {name: f(i, s, seed) for name, f in columns.items()}
                rows.append(
                    row(
                        "strength_sweep",
                        i,
                        s,
                        seed,
                        mse_outside=value,
                        mse_outside_thesis=0.8 * value,
                        **extra,
                    )
                )
    return pd.DataFrame(rows)


def mask_size_sweep(
    mse: Callable[[int, float, float], float],
    radii=(20.0, 50.0, 80.0),
    strengths=(0.1, 0.5, 0.9),
    images=3,
) -> pd.DataFrame:
    """A mask-size sweep, one seed; mse(image, strength, area_frac) gives mse_outside,
    and mse_whitedisc_thesis follows the same response against area_frac_thesis."""
    rows = []
    for i in range(images):
        for r in radii:
            area = math.pi * (r / 200) ** 2
            area_thesis = 1.01 * area
            for s in strengths:
                rows.append(
                    row(
                        "mask_size_sweep",
                        i,
                        s,
                        0,
                        radius_pct=r,
                        mask_id=f"r{r:g}",
                        area_frac=area,
                        area_frac_thesis=area_thesis,
                        mse_outside=mse(i, s, area),
                        mse_whitedisc_thesis=mse(i, s, area_thesis) / 1000,
                    )
                )
    return pd.DataFrame(rows)


def pick(
    table: pd.DataFrame, claim: int, metric: str = "mse_outside", model: str = "tiny4"
) -> pd.Series:
    found = table[
        (table["claim"] == claim) & (table["metric"] == metric) & (table["model"] == model)
    ]
    assert len(found) == 1
    return found.iloc[0]


def rng_noise(seed: int, scale: float) -> Response:
    """Deterministic noise per (image, strength, seed)."""

    def noise(i: int, s: float, k: int) -> float:
        generator = np.random.default_rng([seed, i, int(round(1000 * s)), k])
        return float(generator.normal(0.0, scale))

    return noise


# --- verdict rules --------------------------------------------------------------------


def test_verdict_rules() -> None:
    assert verdict(0.1, 2.0, 0.0, "greater") == HOLDS
    assert verdict(-2.0, -0.1, 0.0, "greater") == DOES_NOT_HOLD
    assert verdict(0.0, 0.0, 0.0, "greater") == DOES_NOT_HOLD  # exactly no change
    assert verdict(-1.0, 2.0, 0.0, "greater") == INCONCLUSIVE
    # straddles 0 but inside the practical band: known to be negligible
    assert verdict(-0.05, 0.05, 0.0, "greater", margin=0.1) == DOES_NOT_HOLD
    assert verdict(-0.05, 0.15, 0.0, "greater", margin=0.1) == INCONCLUSIVE
    assert verdict(0.2, 0.3, 1.0, "less") == HOLDS
    assert verdict(1.0, 1.5, 1.0, "less") == DOES_NOT_HOLD
    assert verdict(0.95, 1.05, 1.0, "less", margin=0.1) == DOES_NOT_HOLD
    assert verdict(0.5, 1.5, 1.0, "less", margin=0.1) == INCONCLUSIVE
    assert verdict(math.nan, 1.0, 0.0, "greater") == INCONCLUSIVE


def test_number_format() -> None:
    assert [number(v) for v in (12.345, 0.04567, 1234.5, -3.0, 0.0)] == [
        "12.3",
        "0.0457",
        "1,234",
        "−3.00",
        "0",
    ]


def test_counted_words() -> None:
    assert [counted(n, "image") for n in (0, 1, 3)] == ["0 images", "1 image", "3 images"]
    assert [counted(n, "radius", "radii") for n in (1, 2)] == ["1 radius", "2 radii"]


def test_ratio_of_levels() -> None:
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(1.0, 0.0) == math.inf  # something over nothing
    assert math.isnan(ratio(0.0, 0.0))


def test_finite_rows_and_sample_sizes() -> None:
    rows = pd.DataFrame(
        {
            "image": ["a", "a", "b", "c"],
            "seed": [0, 1, 0, 2],
            "x": [1.0, math.nan, 2.0, 3.0],
            "y": [1.0, 1.0, math.nan, 4.0],
        },
        index=[10, 11, 12, 13],
    )
    both = finite_rows(rows, "x", "y")
    assert list(both.index) == [10, 13]  # order and index kept
    assert list(finite_rows(rows, "x").index) == [10, 12, 13]
    assert sample_sizes(rows) == (3, 3)
    assert sample_sizes(both) == (2, 2)


# --- the table ---------------------------------------------------------------------


def test_columns_match_schema() -> None:
    table = claims_table(strength_sweep(lambda i, s, k: 10 + 5 * s), n_resamples=N)
    schema = yaml.safe_load(SCHEMA.read_text())["columns"]
    assert tuple(c["name"] for c in schema) == COLUMNS == tuple(table.columns)
    assert {c["name"]: str(table[c["name"]].dtype) for c in schema} == {
        c["name"]: c["dtype"] for c in schema
    }


def test_one_row_per_claim_model_metric_in_order() -> None:
    metrics = pd.concat(
        [
            strength_sweep(lambda i, s, k: 10 + 5 * s),
            strength_sweep(lambda i, s, k: 10 + 5 * s).assign(
                model="tiny4_study", pipeline="study"
            ),
        ]
    )
    table = claims_table(metrics, n_resamples=N)
    assert len(table) == 8 * 2 * 2
    expected = [
        (c.number, model, metric)
        for c in CLAIMS
        for model in ("tiny4", "tiny4_study")
        for metric in ("mse_outside", "mse_outside_thesis")
    ]
    assert list(zip(table["claim"], table["model"], table["metric"], strict=True)) == expected
    assert set(table.loc[table["model"] == "tiny4_study", "pipeline"]) == {"study"}
    assert set(table["verdict"]) <= {HOLDS, DOES_NOT_HOLD, INCONCLUSIVE, NOT_TESTABLE}
    # no mask-size sweep: claims 6 and 7 say so
    for claim in (6, 7):
        assert pick(table, claim)["verdict"] == NOT_TESTABLE
        assert "no mask-size sweep" in pick(table, claim)["evidence"]


def test_same_input_same_table() -> None:
    metrics = strength_sweep(lambda i, s, k: 10 + 5 * s + rng_noise(1, 1.0)(i, s, k), seeds=(0, 1))
    pd.testing.assert_frame_equal(
        claims_table(metrics, n_resamples=N), claims_table(metrics, n_resamples=N)
    )


def test_missing_column_is_input_error() -> None:
    metrics = strength_sweep(lambda i, s, k: 10.0).drop(columns="pipeline")
    with pytest.raises(InputError, match="pipeline"):
        claims_table(metrics, n_resamples=N)


# --- claims 1, 2, 3, 8 ------------------------------------------------------------------


def test_claim1_mean_over_strengths_above_zero() -> None:
    metrics = strength_sweep(
        lambda i, s, k: 2.0 + i + 4 * s,
        frac_changed_outside=lambda i, s, k: 0.1 * (i + 1),
    )
    table = claims_table(metrics, n_resamples=N)
    found = pick(table, 1)
    # strength 0 is left out: per image mean of 2 + i + 4 s over s = 0.5, 1 is 5 + i
    assert found["value"] == pytest.approx(np.mean([5.0, 6.0, 7.0]))
    assert found["verdict"] == HOLDS
    assert found["ci_low"] >= 5.0 and found["ci_high"] <= 7.0
    assert "20.0 %" in found["evidence"]  # mean share of changed outside pixels
    # The floor (row default 4) is 4 of the mean 6: 66.7 %.
    assert (
        "the VAE round trip alone (the floor) accounts for 4.00 of it, 66.7 %"
        in (found["evidence"])
    )
    wrapped = pick(table, 1, "mse_outside_thesis")
    assert wrapped["value"] == pytest.approx(0.8 * 6.0)
    assert "floor" not in wrapped["evidence"]  # the wrapped number has no floor


def test_claim1_floor_share_over_the_rows_with_one() -> None:
    # Image 0's rows come from an old manifest (no floor): the share is over images 1, 2,
    # mean mse_outside 6.5 (5 + i + 4 s over s = 0.5, 1), floor 1 + i: 2.5, 38.5 %.
    metrics = strength_sweep(
        lambda i, s, k: 2.0 + i + 4 * s,
        mse_outside_vae=lambda i, s, k: math.nan if i == 0 else 1.0 + i,
    )
    found = pick(claims_table(metrics, n_resamples=N), 1)
    assert found["value"] == pytest.approx(6.0)  # all 3 images
    assert "accounts for 2.50 of it, 38.5 %" in found["evidence"]
    none = strength_sweep(lambda i, s, k: 2.0 + i, mse_outside_vae=lambda i, s, k: math.nan)
    found = pick(claims_table(none, n_resamples=N), 1)
    assert found["verdict"] == HOLDS and "floor" not in found["evidence"]


def test_claim1_no_change_does_not_hold() -> None:
    table = claims_table(strength_sweep(lambda i, s, k: 0.0), n_resamples=N)
    found = pick(table, 1)
    assert (found["value"], found["ci_low"], found["ci_high"]) == (0.0, 0.0, 0.0)
    assert found["verdict"] == DOES_NOT_HOLD


def test_claim2_exact_slope_of_noise_free_line() -> None:
    table = claims_table(strength_sweep(lambda i, s, k: 10 + i + 5 * s), n_resamples=N)
    found = pick(table, 2)
    assert found["value"] == pytest.approx(5.0)
    assert found["ci_low"] == pytest.approx(5.0) and found["ci_high"] == pytest.approx(5.0)
    assert found["verdict"] == HOLDS
    # margin: 10 % of the mean level (10 + i + 2.5 over i = 0..2: 13.5) per unit strength
    assert found["margin"] == pytest.approx(PRACTICAL_REL * 13.5)
    assert found["unit"] == "(0-255 pixel value)^2 per unit strength"
    assert "5.00 per unit strength" in found["evidence"]
    assert "+37.0 %" in found["evidence"]  # 5 / 13.5
    assert pick(table, 2, "mse_outside_thesis")["value"] == pytest.approx(4.0)


def test_claim2_small_but_real_growth_is_flagged() -> None:
    found = pick(claims_table(strength_sweep(lambda i, s, k: 100 + i + 2 * s), N), 2)
    assert found["value"] == pytest.approx(2.0)
    assert found["ci_high"] < found["margin"]  # 2 % rise, margin 10 % of ~102
    assert found["verdict"] == HOLDS
    assert "real but small" in found["evidence"]
    large = pick(claims_table(strength_sweep(lambda i, s, k: 10 + i + 5 * s), N), 2)
    assert "real but small" not in large["evidence"]


def test_claim2_noisy_growth_holds() -> None:
    noise = rng_noise(2, 1.0)
    metrics = strength_sweep(
        lambda i, s, k: 10 + 2 * i + 5 * s + noise(i, s, k),
        strengths=(0.0, 0.25, 0.5, 0.75, 1.0),
        images=6,
        seeds=(0, 1, 2),
    )
    found = pick(claims_table(metrics, n_resamples=N), 2)
    assert found["verdict"] == HOLDS
    assert 0 < found["ci_low"] < 5 < found["ci_high"]
    assert found["resampled"] == "images, then seeds within each image"
    assert (found["n_images"], found["n_seeds"]) == (6, 3)


def test_claim2_flat_response() -> None:
    exact = pick(claims_table(strength_sweep(lambda i, s, k: 10.0 + i), n_resamples=N), 2)
    assert (exact["value"], exact["ci_low"], exact["ci_high"]) == (0.0, 0.0, 0.0)
    assert exact["verdict"] == DOES_NOT_HOLD
    noise = rng_noise(3, 4.0)
    noisy = pick(
        claims_table(strength_sweep(lambda i, s, k: 10.0 + noise(i, s, k), images=4), N), 2
    )
    assert noisy["ci_low"] < -noisy["margin"] and noisy["ci_high"] > noisy["margin"]
    assert noisy["verdict"] == INCONCLUSIVE


def test_claim2_one_strength_not_testable() -> None:
    table = claims_table(strength_sweep(lambda i, s, k: 10.0, strengths=(0.5,)), N)
    found = pick(table, 2)
    assert found["verdict"] == NOT_TESTABLE
    assert math.isnan(found["value"]) and math.isnan(found["ci_low"])
    assert "1 strength (0.5)" in found["evidence"]


def test_one_image_intervals() -> None:
    one_seed = pick(
        claims_table(strength_sweep(lambda i, s, k: 10 + 5 * s, images=1), n_resamples=N), 2
    )
    assert one_seed["value"] == pytest.approx(5.0)
    assert one_seed["verdict"] == INCONCLUSIVE
    assert one_seed["resampled"] == ""
    assert "nothing to resample" in one_seed["evidence"]
    noise = rng_noise(4, 0.1)
    seeds = pick(
        claims_table(
            strength_sweep(lambda i, s, k: 10 + 5 * s + noise(i, s, k), images=1, seeds=(0, 1, 2)),
            n_resamples=N,
        ),
        2,
    )
    assert seeds["resampled"] == "seeds only (1 image)"
    assert "over seeds only: 1 image" in seeds["evidence"]
    assert seeds["verdict"] == HOLDS


def test_claim3_variance_ratio_exact() -> None:
    slopes = [1.0, 2.0, 3.0, 4.0]
    metrics = strength_sweep(
        lambda i, s, k: 10 + slopes[i] * s, strengths=(0.2, 0.4, 0.8, 1.0), images=4
    )
    found = pick(claims_table(metrics, n_resamples=N), 3)
    # variance across images at s is var(slopes) s^2: (0.64 + 1) / (0.04 + 0.16)
    assert found["value"] == pytest.approx((0.64 + 1.0) / (0.04 + 0.16))
    assert found["verdict"] == HOLDS
    assert "a ratio of 8.20" in found["evidence"]


def test_claim3_needs_three_images_and_both_sides() -> None:
    two = pick(claims_table(strength_sweep(lambda i, s, k: 10 + i * s, images=2), N), 3)
    assert two["verdict"] == NOT_TESTABLE and "2 images" in two["evidence"]
    low = strength_sweep(lambda i, s, k: 10 + i * s, strengths=(0.1, 0.3))
    found = pick(claims_table(low, N), 3)
    assert found["verdict"] == NOT_TESTABLE and "no strength at or above 0.6" in found["evidence"]


def test_claim8_far_field_on_the_floor_does_not_hold() -> None:
    # Today's pipeline, 4-channel UNet: the far field ends on clean latents, its error is
    # the VAE round trip's at every strength (per image 2 + i).
    floor = strength_sweep(
        lambda i, s, k: 10 + 5 * s,
        mse_outside_far=lambda i, s, k: 2.0 + i,
        mse_outside_far_vae=lambda i, s, k: 2.0 + i,
    )
    table = claims_table(floor, n_resamples=N)
    found = pick(table, 8)
    assert found["statistic"] == "mse_outside_far − mse_outside_far_vae at strength > 0"
    assert (found["value"], found["ci_low"], found["ci_high"]) == (0.0, 0.0, 0.0)
    # margin: 10 % of the far-field floor at strength > 0, mean of 2, 3, 4
    assert found["margin"] == pytest.approx(PRACTICAL_REL * 3.0)
    assert found["verdict"] == DOES_NOT_HOLD
    assert "diffusers pipeline" in found["evidence"]
    evidence = found["evidence"]
    assert "exceeds its VAE floor (3.00, the image's VAE round trip) by 0 at the lowest" in evidence
    assert "and by 0 at strength > 0, 0 % of the floor (95 % CI 0 to 0 over 3" in evidence
    assert "blends the clean image latents back" in found["evidence"]
    assert pick(table, 8, "mse_outside_thesis")["verdict"] == NOT_TESTABLE


def test_claim8_study_pipeline_excess_at_every_strength_holds() -> None:
    # The study's pipeline leaves the kept latents noised at the last t, the same at
    # every strength: a constant excess of 1.5 over the floor. The old statistic (far
    # field at the top minus at the lowest strength) was 0 here and could not see it.
    metrics = strength_sweep(
        lambda i, s, k: 10 + 5 * s,
        mse_outside_far=lambda i, s, k: 3.5 + i,
        mse_outside_far_vae=lambda i, s, k: 2.0 + i,
    ).assign(model="tiny4_study", pipeline="study")
    found = pick(claims_table(metrics, n_resamples=N), 8, model="tiny4_study")
    assert found["value"] == pytest.approx(1.5)
    assert found["ci_low"] == pytest.approx(1.5) and found["ci_high"] == pytest.approx(1.5)
    assert found["margin"] == pytest.approx(0.3)
    assert found["verdict"] == HOLDS
    evidence = found["evidence"]
    assert "With the study pipeline" in evidence and "Legacy" in evidence
    assert "by 1.50 at the lowest strength, 0, and by 1.50 at strength > 0" in evidence
    assert "+50.0 % of the floor (95 % CI 1.50 to 1.50 over 3 images)" in evidence  # 1.5 / 3
    assert "strength 0 (one UNet step) included" in evidence
    assert "real but small" not in evidence


def test_claim8_regenerated_far_field_and_small_excess() -> None:
    # A 9-channel UNet regenerates every latent: the excess grows with strength and is
    # 0 at strength 0 (no step runs: the inpainting is the round trip).
    regenerated = strength_sweep(
        lambda i, s, k: 10 + 5 * s,
        mse_outside_far=lambda i, s, k: 2.0 + i + 10 * s,
        mse_outside_far_vae=lambda i, s, k: 2.0 + i,
    )
    found = pick(claims_table(regenerated, n_resamples=N), 8)
    assert found["value"] == pytest.approx(7.5)  # mean of 10 s over s = 0.5, 1
    assert found["verdict"] == HOLDS
    assert "by 0 at the lowest strength, 0, and by 7.50 at strength > 0" in found["evidence"]
    # Above 0 everywhere but well within 10 % of a floor of 10: real but small.
    small = strength_sweep(
        lambda i, s, k: 10.0,
        mse_outside_far=lambda i, s, k: 10.1 + rng_noise(5, 0.01)(i, s, k),
        mse_outside_far_vae=lambda i, s, k: 10.0,
        seeds=(0, 1),
    )
    found = pick(claims_table(small, n_resamples=N), 8)
    assert 0 < found["ci_low"] < found["ci_high"] < found["margin"] == pytest.approx(1.0)
    assert found["verdict"] == HOLDS
    assert "real but small" in found["evidence"]


def test_claim8_needs_the_floor_and_a_strength_above_zero() -> None:
    old = strength_sweep(lambda i, s, k: 10 + 5 * s, mse_outside_far_vae=lambda i, s, k: math.nan)
    found = pick(claims_table(old, n_resamples=N), 8)
    assert found["verdict"] == NOT_TESTABLE and math.isnan(found["value"])
    assert "no VAE floor" in found["evidence"] and "rerun the inpaint" in found["evidence"]
    assert (found["n_images"], found["n_seeds"]) == (3, 1)
    only_zero = strength_sweep(lambda i, s, k: 10.0, strengths=(0.0,))
    found = pick(claims_table(only_zero, n_resamples=N), 8)
    assert found["verdict"] == NOT_TESTABLE and "at a strength > 0" in found["evidence"]


# --- claims 4 and 5 ---------------------------------------------------------------------


def test_claim4_flat_vs_textured() -> None:
    def flat(i, s, k):
        return 2.0 + s if i < 2 else math.nan  # images 0 and 1 have region maps

    metrics = strength_sweep(
        lambda i, s, k: 10.0,
        mse_outside_flat=flat,
        mse_outside_textured=lambda i, s, k: 3 * flat(i, s, k),
    )
    table = claims_table(metrics, n_resamples=N)
    found = pick(table, 4)
    assert found["value"] == pytest.approx(3.0)
    assert found["verdict"] == HOLDS
    assert found["n_images"] == 2
    assert "On the 2 images with ground-truth regions" in found["evidence"]
    wrapped = pick(table, 4, "mse_outside_thesis")
    assert wrapped["verdict"] == NOT_TESTABLE and "per-region" in wrapped["evidence"]


def test_claim4_texture_on_every_image_with_the_ground_truth_as_check() -> None:
    def flat(i, s, k):
        return 2.0 + s if i < 2 else math.nan  # images 0 and 1 have region maps

    def rho(i, s, k):
        return 0.2 + 0.1 * i + 0.02 * k if s > 0 else math.nan  # NaN at 0: not used

    metrics = strength_sweep(
        lambda i, s, k: 10.0,
        seeds=(0, 1),
        mse_outside_flat=flat,
        mse_outside_textured=lambda i, s, k: 3 * flat(i, s, k),
        texture_spearman=rho,
    )
    found = pick(claims_table(metrics, n_resamples=N), 4)
    # Per image: the mean over seeds 0 and 1 (0.01 above 0.2 + 0.1 i); then over 3 images.
    assert found["value"] == pytest.approx(np.mean([0.21, 0.31, 0.41]))
    assert found["statistic"] == "mean texture_spearman at strength > 0"
    assert found["verdict"] == HOLDS and found["n_images"] == 3 and found["reference"] == 0
    assert found["ci_low"] <= found["value"] <= found["ci_high"]
    assert "On all 3 images" in found["evidence"]
    assert (
        "check on the 2 images with ground-truth regions: textured/flat MSE ratio 3"
        in (found["evidence"])
    )
    against = strength_sweep(lambda i, s, k: 10.0, texture_spearman=lambda i, s, k: -0.3 - i)
    assert pick(claims_table(against, n_resamples=N), 4)["verdict"] == DOES_NOT_HOLD
    assert (
        "no image has ground-truth regions"
        in (pick(claims_table(against, n_resamples=N), 4)["evidence"])
    )


def test_claim4_without_region_maps_not_testable() -> None:
    found = pick(claims_table(strength_sweep(lambda i, s, k: 10.0), n_resamples=N), 4)
    assert found["verdict"] == NOT_TESTABLE
    assert "region map" in found["evidence"]


def test_claim5_band_vs_far() -> None:
    metrics = strength_sweep(
        lambda i, s, k: 10.0,
        mse_outside_band=lambda i, s, k: 2 * (1.0 + i + s),
        mse_outside_far=lambda i, s, k: 1.0 + i + s,
    )
    table = claims_table(metrics, n_resamples=N)
    assert pick(table, 5)["value"] == pytest.approx(2.0)
    assert pick(table, 5)["verdict"] == HOLDS
    assert "within 8 px" in pick(table, 5)["evidence"]
    assert pick(table, 5, "mse_outside_thesis")["verdict"] == NOT_TESTABLE
    same = strength_sweep(
        lambda i, s, k: 10.0,
        mse_outside_band=lambda i, s, k: 1.0 + i,
        mse_outside_far=lambda i, s, k: 1.0 + i,
    )
    assert pick(claims_table(same, n_resamples=N), 5)["verdict"] == DOES_NOT_HOLD


# --- claims 6 and 7 ---------------------------------------------------------------------


def relative_change(k: float, areas: list[float]) -> float:
    """Relative change across ``areas`` of L (1 + k a): k (max - min) / (1 + k mean)."""
    return k * (max(areas) - min(areas)) / (1 + k * float(np.mean(areas)))


def test_claim6_little_and_large_mask_size_effect() -> None:
    radii = (20.0, 50.0, 80.0)
    areas = [math.pi * (r / 200) ** 2 for r in radii]
    gains = {0.1: 0.02, 0.5: 0.1, 0.9: 0.15}  # k per strength, all small

    def little(i, s, a):
        return (5.0 + i) * (1 + gains[s] * a)

    table = claims_table(mask_size_sweep(little, radii=radii), n_resamples=N)
    found = pick(table, 6)
    assert found["value"] == pytest.approx(relative_change(0.15, areas))
    assert found["verdict"] == HOLDS
    assert found["reference"] == PRACTICAL_REL and found["direction"] == "less"
    assert "(nearest the VAE floor)" in found["evidence"]
    thesis = pick(table, 6, "mse_outside_thesis")
    assert thesis["value"] == pytest.approx(relative_change(0.15, [1.01 * a for a in areas]))
    assert "mse_whitedisc_thesis across area_frac_thesis" in thesis["statistic"]

    large = pick(claims_table(mask_size_sweep(lambda i, s, a: (5.0 + i) * (1 + 2 * a)), N), 6)
    assert large["value"] == pytest.approx(relative_change(2.0, areas))
    assert large["verdict"] == DOES_NOT_HOLD


def test_claim7_spread_ratio() -> None:
    # spread between strengths grows with the radius: ratio = 20 / 80
    metrics = mask_size_sweep(lambda i, s, a: 10 + i + 4 * s * math.sqrt(a / math.pi) * 200)
    found = pick(claims_table(metrics, n_resamples=N), 7)
    assert found["value"] == pytest.approx(20 / 80)
    assert found["verdict"] == HOLDS
    assert "radius 20 %" in found["evidence"]
    equal = mask_size_sweep(lambda i, s, a: 10 + i + 4 * s)
    assert pick(claims_table(equal, n_resamples=N), 7)["verdict"] == DOES_NOT_HOLD


def test_mask_size_claims_need_two_radii() -> None:
    table = claims_table(mask_size_sweep(lambda i, s, a: 10.0, radii=(50.0,)), N)
    assert pick(table, 6)["verdict"] == NOT_TESTABLE
    assert "1 mask" in pick(table, 6)["evidence"]
    assert pick(table, 7)["verdict"] == NOT_TESTABLE
    # and the strength-sweep claims say the run has none
    assert "no strength sweep" in pick(table, 2)["evidence"]


# --- files ---------------------------------------------------------------------------


def test_write_claims_parquet_with_provenance_and_page(tmp_path: Path) -> None:
    metrics = pd.concat(
        [strength_sweep(lambda i, s, k: 10 + 5 * s), mask_size_sweep(lambda i, s, a: 10.0)]
    )
    metrics_path = tmp_path / "metrics.parquet"
    metrics.to_parquet(metrics_path)
    out, page = tmp_path / "claims.parquet", tmp_path / "claims.html"
    write_claims(metrics_path, out, page_path=page, n_resamples=N, seed=3)
    written = pd.read_parquet(out)
    pd.testing.assert_frame_equal(written, claims_table(metrics, n_resamples=N, seed=3))
    record = read_parquet_record(out)
    assert record is not None
    assert (record["stage"], record["n_resamples"], record["bootstrap_seed"]) == ("claims", N, 3)
    assert record["metrics"] == str(metrics_path)
    text = page.read_text()
    assert text.count("</td></tr>") == len(written)  # one line per row, after the header
    assert text.count(">holds</td>") == int((written["verdict"] == HOLDS).sum())
    assert "background:#c8e6c9" in text  # verdicts are colour-coded
    assert "1. Inpainting changes pixels outside the mask" in text


def test_write_claims_missing_metrics(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        write_claims(tmp_path / "none.parquet", tmp_path / "claims.parquet")


def test_write_claims_unreadable_metrics(tmp_path: Path) -> None:
    bad = tmp_path / "metrics.parquet"
    bad.write_text("not parquet")
    with pytest.raises(InputError, match=f"metrics table {bad} is not readable Parquet"):
        write_claims(bad, tmp_path / "claims.parquet")


def test_report_caption_links_each_claims_figures() -> None:
    """The caption renders as Snakemake renders captions (Jinja with trim_blocks and
    lstrip_blocks, then docutils), and links each claim to its figures in this run."""
    from docutils.core import publish_parts
    from jinja2 import Environment

    figures = "results/x/figures"
    paths = [
        f"{figures}/tiny4/strength_trend.png",
        f"{figures}/tiny4/worst_case/land.png",
        f"{figures}/model_comparison.png",
        f"{figures}/tiny4/area_curves.png",
        "results/x/claims.html",
    ]
    files = [SimpleNamespace(path=Path(p)) for p in paths]
    caption = report_caption("results/x/claims.parquet", "results/x/claims.html", figures)
    snakemake = SimpleNamespace(params=SimpleNamespace(caption=caption))
    env = Environment(trim_blocks=True, lstrip_blocks=True)
    rst = env.from_string(CAPTION.read_text()).render(snakemake=snakemake, files=files)
    body = publish_parts(rst, writer="html", settings_overrides={"halt_level": 2})["body"]
    items = body.split("<li>")[1:]
    assert len(items) == len(CLAIMS)

    def linked(item: str) -> list[str]:
        return [p for p in paths if f"showResultInfo('{p}')" in item]

    assert linked(items[0]) == paths[:2]  # claim 1: strength_trend, worst cases
    assert linked(items[3]) == [paths[2]]  # claim 4: model comparison
    assert linked(items[5]) == [paths[3]]  # claim 6: area curves (no gallery in this run)
    assert "results/x/claims.parquet" in body
    assert REPORT_CATEGORY < "Beyond the study"  # the verdicts come first in the report
