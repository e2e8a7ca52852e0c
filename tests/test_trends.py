"""Tests for maskleak.trends, on data built from known polynomials."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from maskleak.bootstrap import N_RESAMPLES, bootstrap, percentile_interval
from maskleak.errors import InputError
from maskleak.provenance import read_parquet_record, write_parquet
from maskleak.trends import COLUMNS, coefficient_samples, equation, fit_trends, write_trends

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "trends.columns.yaml"
STRENGTHS = [0.0, 0.25, 0.5, 0.75, 1.0]


def f(x: float) -> float:
    return 2 * x**2 - 3 * x + 5


def g(x: float) -> float:
    return x**2 + 4


def row(experiment: str, image: str, strength: float, seed: int, **values: float) -> dict:
    base = {
        "experiment": experiment,
        "model": "tiny9",
        "image": image,
        "strength": strength,
        "seed": seed,
        "area_frac": 0.5,
        "area_frac_thesis": 0.5,
        "mse_outside": 0.0,
        "mse_outside_thesis": 0.0,
        "mse_whitedisc_thesis": 0.0,
    }
    return {**base, **values}


def strength_frame() -> pd.DataFrame:
    """img1: two seeds at f(x) + 1 and f(x) - 1 (seed mean exactly f);
    img2: one seed at g(x). mse_outside_thesis is the constant 7 everywhere."""
    rows = []
    for x in STRENGTHS:
        rows.append(row("strength_sweep", "img1", x, 0, mse_outside=f(x) + 1, mse_outside_thesis=7))
        rows.append(row("strength_sweep", "img1", x, 1, mse_outside=f(x) - 1, mse_outside_thesis=7))
        rows.append(row("strength_sweep", "img2", x, 0, mse_outside=g(x), mse_outside_thesis=7))
    return pd.DataFrame(rows)


def only(df: pd.DataFrame, **where: object) -> pd.Series:
    mask = np.ones(len(df), dtype=bool)
    for key, value in where.items():
        mask &= (df[key] == value).to_numpy()
    assert mask.sum() == 1, where
    return df[mask].iloc[0]


def test_strength_quadratic_recovered_per_image_and_mean() -> None:
    df = fit_trends(strength_frame())
    assert tuple(df.columns) == COLUMNS

    img1 = only(df, metric="mse_outside", scope="image", image="img1")
    # Seeds averaged: f(x) = 2x^2 - 3x + 5 exactly.
    assert img1["c2"] == pytest.approx(2, abs=1e-9)
    assert img1["c1"] == pytest.approx(-3, abs=1e-9)
    assert img1["c0"] == pytest.approx(5, abs=1e-9)
    assert img1["r2"] == pytest.approx(1.0, abs=1e-12)
    assert img1["equation"] == "y = 2.000x² − 3.000x + 5.000"
    assert (img1["degree"], img1["n_points"], img1["x_min"], img1["x_max"]) == (2, 5, 0.0, 1.0)
    assert img1["experiment"] == "strength_sweep" and img1["x"] == "strength"
    assert math.isnan(img1["strength"])

    img2 = only(df, metric="mse_outside", scope="image", image="img2")
    assert (img2["c2"], img2["c1"], img2["c0"]) == pytest.approx((1, 0, 4), abs=1e-9)

    # Mean over images of the per-image seed means: (f + g) / 2 = 1.5x^2 - 1.5x + 4.5.
    # (A flat mean over the 3 rows would give (2f + g) / 3 = 5/3 x^2 - 2x + 14/3 instead.)
    mean = only(df, metric="mse_outside", scope="mean")
    assert mean["image"] == ""
    assert (mean["c2"], mean["c1"], mean["c0"]) == pytest.approx((1.5, -1.5, 4.5), abs=1e-9)
    assert mean["r2"] == pytest.approx(1.0, abs=1e-12)
    assert mean["n_points"] == 5

    # Constant 7: the fit is 0x^2 + 0x + 7 and R^2 is undefined (zero variance).
    thesis = only(df, metric="mse_outside_thesis", scope="mean")
    assert (thesis["c2"], thesis["c1"], thesis["c0"]) == pytest.approx((0, 0, 7), abs=1e-9)
    assert math.isnan(thesis["r2"])
    assert thesis["equation"] == "y = 0.000x² + 0.000x + 7.000"

    # 2 metrics x (1 mean + 2 images) fits, nothing else, all with coefficients.
    assert len(df) == 6
    assert (df["reason"] == "").all()
    assert set(df["scope"]) == {"mean", "image"}


def test_noisy_quadratic_r2_by_hand() -> None:
    # x = 0, .25, .5, .75 and y = 0, 1, 0, 1. For 4 equally spaced points the quadratic
    # fit's residual is y's projection on the cubic contrast p = (-1, 3, -3, 1):
    # y.p = 0 + 3 - 0 + 1 = 4, |p|^2 = 20 -> residual 0.2 p, SS_res = 0.04 * 20 = 0.8.
    # SS_tot = 4 * 0.5^2 = 1 -> R^2 = 0.2. Fitted = y - 0.2 p = (.2, .4, .6, .8)
    # = 0.2 + 0.8 x, so c2 = 0, c1 = 0.8, c0 = 0.2.
    rows = [
        row("strength_sweep", "img", x, 0, mse_outside=y, mse_outside_thesis=y)
        for x, y in zip([0.0, 0.25, 0.5, 0.75], [0.0, 1.0, 0.0, 1.0], strict=True)
    ]
    df = fit_trends(pd.DataFrame(rows))
    fit = only(df, metric="mse_outside", scope="image")
    assert fit["r2"] == pytest.approx(0.2, abs=1e-12)
    assert (fit["c2"], fit["c1"], fit["c0"]) == pytest.approx((0.0, 0.8, 0.2), abs=1e-9)
    assert fit["equation"] == "y = 0.000x² + 0.800x + 0.200"
    assert fit["x_max"] == 0.75


def test_mask_size_linear_fits() -> None:
    rows = []
    for strength in (0.1, 0.5):
        for area in (0.1, 0.2, 0.4):
            for seed, noise in ((0, 0.5), (1, -0.5)):  # seed mean removes the +-0.5
                rows.append(
                    row(
                        "mask_size_sweep",
                        "img",
                        strength,
                        seed,
                        area_frac=area,
                        # The study's analytic share differs from the counted one.
                        area_frac_thesis=area + 0.01,
                        mse_outside=3 * area + 2 + noise + strength,
                        mse_outside_thesis=-area + 4,
                        mse_whitedisc_thesis=0.5 * (area + 0.01),
                    )
                )
    df = fit_trends(pd.DataFrame(rows))
    assert len(df) == 2 * 3  # 2 strengths x 3 metrics
    assert set(df["scope"]) == {"image"}
    assert set(df.loc[df["metric"] != "mse_whitedisc_thesis", "x"]) == {"area_frac"}
    assert set(df.loc[df["metric"] == "mse_whitedisc_thesis", "x"]) == {"area_frac_thesis"}
    assert (df["degree"] == 1).all() and df["c2"].isna().all()

    fit = only(df, metric="mse_outside", strength=0.5)
    # y = 3 area + 2.5 at strength 0.5.
    assert fit["c1"] == pytest.approx(3, abs=1e-9)
    assert fit["c0"] == pytest.approx(2.5, abs=1e-9)
    assert fit["r2"] == pytest.approx(1.0, abs=1e-12)
    assert fit["equation"] == "y = 3.000x + 2.500"
    assert (fit["n_points"], fit["x_min"], fit["x_max"]) == (3, 0.1, 0.4)
    assert fit["image"] == "img"

    low = only(df, metric="mse_outside", strength=0.1)
    assert low["c0"] == pytest.approx(2.1, abs=1e-9)
    thesis = only(df, metric="mse_outside_thesis", strength=0.1)
    assert (thesis["c1"], thesis["c0"]) == pytest.approx((-1, 4), abs=1e-9)
    assert thesis["equation"] == "y = −1.000x + 4.000"
    # Against area_frac_thesis exactly 0.5 x (against area_frac it would be 0.5 x + 0.005).
    white = only(df, metric="mse_whitedisc_thesis", strength=0.1)
    assert (white["c1"], white["c0"]) == pytest.approx((0.5, 0), abs=1e-9)
    assert (white["x_min"], white["x_max"]) == pytest.approx((0.11, 0.41), abs=1e-12)


def test_too_few_points_gives_a_row_without_fit_and_its_reason() -> None:
    rows = [
        # Per image only 2 strengths (< 3) -> no per-image fit; mean has 0, .5, 1 -> fit.
        row("strength_sweep", "a", 0.0, 0, mse_outside=1.0),
        row("strength_sweep", "a", 0.5, 0, mse_outside=2.0),
        row("strength_sweep", "b", 1.0, 0, mse_outside=5.0),
        row("strength_sweep", "b", 1.0, 1, mse_outside=5.0),
        # Mask-size: one distinct area (two seeds) -> no line.
        row("mask_size_sweep", "a", 0.1, 0, area_frac=0.3, area_frac_thesis=0.31),
        row("mask_size_sweep", "a", 0.1, 1, area_frac=0.3, area_frac_thesis=0.31),
        # Unknown experiments are ignored.
        row("other", "a", 0.0, 0),
        row("other", "a", 0.5, 0),
        row("other", "a", 1.0, 0),
    ]
    df = fit_trends(pd.DataFrame(rows))
    assert set(df["experiment"]) == {"strength_sweep", "mask_size_sweep"}
    # Points (0, 1), (.5, 2), (1, 5): c0 = 1; c2/4 + c1/2 = 1; c2 + c1 = 4 -> c2 = 4, c1 = 0.
    fit = only(df, metric="mse_outside", scope="mean")
    assert (fit["c2"], fit["c1"], fit["c0"]) == pytest.approx((4, 0, 1), abs=1e-9)
    assert fit["reason"] == ""

    a = only(df, experiment="strength_sweep", metric="mse_outside", image="a")
    assert math.isnan(a["c2"]) and math.isnan(a["c1"]) and math.isnan(a["c0"])
    assert math.isnan(a["r2"]) and a["equation"] == ""
    assert (a["degree"], a["n_points"], a["x_min"], a["x_max"]) == (2, 2, 0.0, 0.5)
    assert a["reason"] == (
        "only 2 distinct strength values with a finite mse_outside; a degree-2 fit needs 3"
    )
    b = only(df, experiment="strength_sweep", metric="mse_outside", image="b")
    assert (b["n_points"], b["x_min"], b["x_max"]) == (1, 1.0, 1.0)
    assert b["reason"].startswith("only 1 distinct strength value with")

    line = only(df, experiment="mask_size_sweep", metric="mse_whitedisc_thesis")
    assert (line["degree"], line["n_points"], line["x_min"]) == (1, 1, 0.31)
    assert math.isnan(line["c1"]) and line["strength"] == 0.1
    assert line["reason"] == (
        "only 1 distinct area_frac_thesis value with a finite mse_whitedisc_thesis;"
        " a degree-1 fit needs 2"
    )
    # No fit, no interval (although there are 2 seeds to resample).
    assert (line["n_seeds"], line["n_resamples"]) == (2, 0) and math.isnan(line["c1_lo"])
    # 2 metrics x (mean + 2 images) + 3 metrics x 1 image x 1 strength.
    assert len(df) == 2 * 3 + 3


def test_two_strengths_give_rows_without_fits() -> None:
    """A strength sweep of 2 strengths (the config allows it): no fit, but every row."""
    rows = [
        row("strength_sweep", image, x, 0, mse_outside=f(x), mse_outside_thesis=g(x))
        for image in ("img1", "img2")
        for x in (0.0, 1.0)
    ]
    df = fit_trends(pd.DataFrame(rows))
    assert len(df) == 2 * 3
    assert df[["c2", "c1", "c0", "r2"]].isna().all().all()
    assert (df["equation"] == "").all() and (df["n_points"] == 2).all()
    assert df["reason"].str.endswith("a degree-2 fit needs 3").all()


def test_nan_values_are_left_out() -> None:
    rows = [row("strength_sweep", "a", x, 0, mse_outside=f(x)) for x in STRENGTHS]
    rows.append(row("strength_sweep", "a", 0.6, 0, mse_outside=math.nan))
    # An image whose every value is NaN (a mask over the whole image) keeps its row.
    rows += [row("strength_sweep", "full", x, 0, mse_outside=math.nan) for x in STRENGTHS]
    df = fit_trends(pd.DataFrame(rows))
    fit = only(df, metric="mse_outside", scope="image", image="a")
    assert fit["n_points"] == 5
    assert (fit["c2"], fit["c1"], fit["c0"]) == pytest.approx((2, -3, 5), abs=1e-9)
    full = only(df, metric="mse_outside", scope="image", image="full")
    assert full["n_points"] == 0 and math.isnan(full["x_min"]) and math.isnan(full["c0"])
    assert full["reason"].startswith("only 0 distinct strength values with a finite mse_outside")
    # The mean over images skips the NaN image: the same fit as image a alone.
    mean = only(df, metric="mse_outside", scope="mean")
    assert (mean["c2"], mean["c1"], mean["c0"]) == pytest.approx((2, -3, 5), abs=1e-9)


def test_models_fitted_separately() -> None:
    a = strength_frame()
    b = strength_frame().assign(model="other", mse_outside=lambda d: d["mse_outside"] * 2)
    df = fit_trends(pd.concat([a, b], ignore_index=True))
    assert len(df) == 12
    mean_b = only(df, model="other", metric="mse_outside", scope="mean")
    assert (mean_b["c2"], mean_b["c1"], mean_b["c0"]) == pytest.approx((3, -3, 9), abs=1e-9)


def noisy_frame(n_images: int = 3, seeds: tuple[int, ...] = (0, 1, 2)) -> pd.DataFrame:
    """Images with their own quadratic (c2 = 2 + image) and seed noise."""
    rng = np.random.default_rng(1)
    rows = []
    for i in range(n_images):
        for seed in seeds:
            for x in STRENGTHS:
                y = (2 + i) * x**2 - 3 * x + 5 + rng.normal(0, 0.05)
                rows.append(
                    row("strength_sweep", f"img{i}", x, seed, mse_outside=y, mse_outside_thesis=y)
                )
    return pd.DataFrame(rows)


def _point_fit_statistic(sample: pd.DataFrame) -> np.ndarray:
    """The mean-scope fit written independently with pandas and np.polyfit: seed mean per
    image and strength, mean over images, degree-2 fit."""
    per_image = sample.groupby(["image", "strength"])["mse_outside"].mean()
    mean = per_image.groupby("strength").mean()
    return np.polyfit(mean.index.to_numpy(float), mean.to_numpy(float), 2)


def test_intervals_refit_each_resample_as_the_point_fit() -> None:
    frame = noisy_frame()
    # The vectorised samples equal the pandas statistic on bootstrap's resamples (the same
    # draws: images, then seeds within each drawn image).
    fast = coefficient_samples(frame, "mse_outside", "strength", 2, n_resamples=200)
    slow = bootstrap(frame, _point_fit_statistic, n_resamples=200, seed=0)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-9)
    # The trends row holds the 95 % percentile interval of 1000 such resamples.
    df = fit_trends(frame)
    mean = only(df, metric="mse_outside", scope="mean")
    samples = coefficient_samples(frame, "mse_outside", "strength", 2)
    low, high = percentile_interval(samples)
    got = [mean[f"{c}_{b}"] for b in ("lo", "hi") for c in ("c2", "c1", "c0")]
    assert got == pytest.approx([*low, *high], abs=1e-12)
    assert (mean["n_images"], mean["n_seeds"], mean["n_resamples"]) == (3, 3, N_RESAMPLES)
    # The images' own c2 are 2, 3, 4 (seed noise sd 0.05): a resample of 3 images has a
    # mean c2 from 2 to 4; img0 drawn three times occurs in 1/27 (3.7 %) of them, and so
    # does img2, so the 2.5th and 97.5th percentiles fall on those: about 2 and 4.
    assert 1.7 < mean["c2_lo"] < 2.4 and 3.6 < mean["c2_hi"] < 4.3
    assert mean["c2"] == pytest.approx(3, abs=0.2)
    for c in ("c1", "c0"):
        assert mean[f"{c}_lo"] < mean[c] < mean[f"{c}_hi"]
    # Same table, same intervals.
    pd.testing.assert_frame_equal(df, fit_trends(frame))


def test_per_image_interval_over_two_seeds_by_hand() -> None:
    """img1's seeds lie at f + 1 and f - 1. A seed resample is {0, 0} (p = 1/4: c0 = 6),
    {1, 1} (1/4: c0 = 4) or one of each (1/2: c0 = 5); c2 and c1 never change. With 1000
    resamples the 2.5th and 97.5th percentiles are 4 and 6."""
    df = fit_trends(strength_frame())
    img1 = only(df, metric="mse_outside", scope="image", image="img1")
    assert (img1["c0_lo"], img1["c0_hi"]) == pytest.approx((4, 6), abs=1e-9)
    assert (img1["c2_lo"], img1["c2_hi"]) == pytest.approx((2, 2), abs=1e-9)
    assert (img1["c1_lo"], img1["c1_hi"]) == pytest.approx((-3, -3), abs=1e-9)
    assert (img1["n_images"], img1["n_seeds"], img1["n_resamples"]) == (1, 2, N_RESAMPLES)
    samples = coefficient_samples(
        strength_frame().query("image == 'img1'"), "mse_outside", "strength", 2
    )
    # Each of the three outcomes occurs about as often as its probability.
    shares = [np.mean(np.isclose(samples[:, 2], c0)) for c0 in (4, 5, 6)]
    assert shares == pytest.approx([0.25, 0.5, 0.25], abs=0.05)
    # img2 has one seed: nothing to resample, no interval.
    img2 = only(df, metric="mse_outside", scope="image", image="img2")
    assert (img2["n_seeds"], img2["n_resamples"]) == (1, 0)
    assert img2[["c2_lo", "c2_hi", "c1_lo", "c1_hi", "c0_lo", "c0_hi"]].isna().all()


def test_degenerate_intervals() -> None:
    # One image, one seed: scope "mean" has nothing to resample either.
    one = fit_trends(noisy_frame(1, (0,)))
    mean = only(one, metric="mse_outside", scope="mean")
    assert (mean["n_images"], mean["n_seeds"], mean["n_resamples"]) == (1, 1, 0)
    assert math.isnan(mean["c2_lo"]) and math.isfinite(mean["c2"])
    # Two images with one seed each: images resampled.
    two = only(fit_trends(noisy_frame(2, (0,))), metric="mse_outside", scope="mean")
    assert two["n_resamples"] == N_RESAMPLES and two["c2_lo"] < two["c2_hi"]
    # One image with three seeds: scope "mean" resamples the seeds only, exactly as that
    # image's own row does (the same draws).
    seeds = fit_trends(noisy_frame(1))
    mean = only(seeds, metric="mse_outside", scope="mean")
    image = only(seeds, metric="mse_outside", scope="image", image="img0")
    bounds = ["c2_lo", "c2_hi", "c1_lo", "c1_hi", "c0_lo", "c0_hi"]
    assert mean[bounds].tolist() == image[bounds].tolist()
    assert mean["c0_lo"] < mean["c0_hi"]
    # Every image and seed on the same curve: zero-width intervals at the coefficients.
    flat = only(fit_trends(strength_frame()), metric="mse_outside_thesis", scope="mean")
    assert flat[bounds].tolist() == pytest.approx([0, 0, 0, 0, 7, 7], abs=1e-9)


def test_linear_fits_have_no_c2_interval() -> None:
    rows = [
        row(
            "mask_size_sweep",
            "img",
            0.5,
            seed,
            area_frac=a,
            area_frac_thesis=a,
            mse_outside=2 * a + seed,
            mse_outside_thesis=a,
            mse_whitedisc_thesis=a,
        )
        for a in (0.1, 0.2, 0.4)
        for seed in (0, 1)
    ]
    fit = only(fit_trends(pd.DataFrame(rows)), metric="mse_outside")
    assert math.isnan(fit["c2_lo"]) and math.isnan(fit["c2_hi"])
    # Seed 0 at 2a, seed 1 at 2a + 1: the slope never changes, the intercept is 0, 0.5 or 1.
    assert (fit["c1_lo"], fit["c1_hi"]) == pytest.approx((2, 2), abs=1e-9)
    assert (fit["c0_lo"], fit["c0_hi"]) == pytest.approx((0, 1), abs=1e-9)


def test_empty_input() -> None:
    df = fit_trends(pd.DataFrame())
    assert tuple(df.columns) == COLUMNS and len(df) == 0
    schema = yaml.safe_load(SCHEMA.read_text())["columns"]
    assert {c["name"]: str(df[c["name"]].dtype) for c in schema} == {
        c["name"]: c["dtype"] for c in schema
    }


def test_missing_column_is_input_error() -> None:
    frame = strength_frame().drop(columns="mse_outside_thesis")
    with pytest.raises(InputError, match="mse_outside_thesis"):
        fit_trends(frame)


def test_equation_format() -> None:
    assert equation([9.694, -4.105, 40]) == "y = 9.694x² − 4.105x + 40.000"
    assert equation([-0.5, 1.25]) == "y = −0.500x + 1.250"
    # Rounds to zero -> no "−0.000".
    assert equation([-0.0001, 2.0]) == "y = 0.000x + 2.000"


def test_write_trends(tmp_path: Path) -> None:
    metrics_path = str(tmp_path / "metrics.parquet")
    write_parquet(strength_frame(), metrics_path, {"stage": "metrics"})
    out = tmp_path / "trends.parquet"
    write_trends(metrics_path, out)
    record = read_parquet_record(out)
    assert record is not None
    assert (record["stage"], record["metrics"]) == ("trends", metrics_path)
    df = pd.read_parquet(out)
    schema = yaml.safe_load(SCHEMA.read_text())["columns"]
    assert [c["name"] for c in schema] == list(df.columns) == list(COLUMNS)
    for column in schema:
        assert str(df[column["name"]].dtype) == column["dtype"], column["name"]
    pd.testing.assert_frame_equal(df, fit_trends(strength_frame()))


def test_write_trends_missing_input(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.parquet")
    with pytest.raises(InputError, match="nope.parquet"):
        write_trends(missing, tmp_path / "out.parquet")
