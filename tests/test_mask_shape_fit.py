"""Leak against mask shape (maskleak.shape.fit, maskleak.figures.mask_shape): fits on
synthetic metrics tables whose true law is known (the excess over the VAE floor follows
the latent footprint, area, or edge length exactly, on top of a large per-image floor),
their intervals checked against the project's bootstrap, the one-x family, the verdict
rules, the table's schema, the writer and the figure."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from maskleak.bootstrap import bootstrap, percentile_interval
from maskleak.errors import InputError
from maskleak.figures.mask_shape import mask_shape
from maskleak.provenance import read_parquet_record, read_png_record, read_table
from maskleak.shape.fit import (
    ALL,
    AREA,
    COLUMNS,
    DTYPES,
    EDGE,
    FOOTPRINT,
    PREDICTORS,
    VERDICT_AREA,
    VERDICT_EDGE,
    VERDICT_UNDECIDED,
    fit_table,
    verdict,
    write_fits,
)

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "mask_shape.columns.yaml"
N = 200  # bootstrap resamples: enough for stable intervals, fast
N_PX = 4096  # a 64 x 64 image

#: mask_id -> (mask_kind, area_frac, footprint_share, perimeter_px) of image 0; areas and
#: footprint shares unrelated across families (strokes: small area, large footprint).
MASKS: dict[str, tuple[str, float, float, int]] = {
    "r20": ("circle", 0.05, 0.05, 120),
    "r40": ("circle", 0.20, 0.08, 240),
    "r60": ("circle", 0.45, 0.12, 360),
    "r80": ("circle", 0.80, 0.25, 480),
    "rect-a": ("rectangle", 0.10, 0.09, 200),
    "rect-b": ("rectangle", 0.30, 0.15, 300),
    "strokes-0": ("strokes", 0.05, 0.30, 900),
    "strokes-1": ("strokes", 0.10, 0.45, 1500),
    "strokes-2": ("strokes", 0.20, 0.60, 2100),
    # One user mask, the same on every image: one x value per predictor.
    "file-user": ("file", 0.25, 0.20, 500),
}

#: Image -> its VAE floor mse_outside_vae, (8-bit level)²: 4x apart, as on the test run,
#: and far larger than the excess, so a fit of mse_outside is swamped by it.
FLOORS: dict[str, float] = {"a": 600.0, "b": 1200.0, "c": 1800.0, "d": 2400.0, "e": 900.0}

Law = Callable[[float, float, float], float]  # (area_frac, edge_per_kept_px, footprint_share)


def metrics_table(
    law: Law,
    images: tuple[str, ...] = ("a", "b", "c", "d"),
    seeds: tuple[int, ...] = (0, 1),
    strengths: tuple[float, ...] = (0.5,),
    noise: float = 0.0,
    nine_channel: bool = False,
) -> pd.DataFrame:
    """Mask-shape sweep rows: image i scales every non-file mask's footprint share and
    perimeter by (1 + 0.1 i), so the points differ between images; excess_over_floor =
    law(x...) · (1 + strength) (+ ``noise`` · a fixed pseudo-random number per row),
    mse_outside_vae = the image's floor (:data:`FLOORS`) and mse_outside = floor +
    excess. ``nine_channel``: every kept pixel's cell repainted (footprint_share 1)."""
    rng = np.random.default_rng(7)
    rows = []
    for i, image in enumerate(images):
        for seed in seeds:
            for strength in strengths:
                for mask_id, (kind, area, share, perimeter) in MASKS.items():
                    scale = 1.0 if kind == "file" else 1.0 + 0.1 * i
                    n_outside = round(N_PX * (1 - area))
                    share_i = 1.0 if nine_channel else share * scale
                    perimeter_i = round(perimeter * scale)
                    y = law(area, perimeter_i / n_outside, share_i) * (1 + strength)
                    excess = y + noise * rng.standard_normal()
                    rows.append(
                        {
                            "experiment": "mask_shape_sweep",
                            "model": "m1",
                            "pipeline": "diffusers",
                            "variant": "baseline",
                            "pass": 1,
                            "image": image,
                            "seed": seed,
                            "strength": strength,
                            "mask_kind": kind,
                            "mask_id": mask_id,
                            "area_frac": area,
                            "perimeter_px": perimeter_i,
                            "n_outside": n_outside,
                            "n_outside_footprint": share_i * n_outside,
                            "mse_outside": FLOORS[image] + excess,
                            "mse_outside_vae": FLOORS[image],
                            "excess_over_floor": excess,
                        }
                    )
    return pd.DataFrame(rows)


def _footprint_law(area: float, edge: float, share: float) -> float:
    return 5.0 + 100.0 * share


def _area_law(area: float, edge: float, share: float) -> float:
    return 7.0 + 50.0 * area


def _row(table: pd.DataFrame, predictor: str, family: str, strength: float = 0.5) -> pd.Series:
    hit = table.loc[
        (table["predictor"] == predictor)
        & (table["family"] == family)
        & (table["strength"] == strength)
    ]
    assert len(hit) == 1
    return hit.iloc[0]


def _seed_means(
    rows: pd.DataFrame, predictor: str, response: str = "excess_over_floor"
) -> tuple[np.ndarray, np.ndarray]:
    """Independent of the module: (x, y) per (image, mask_id), the seeds averaged."""
    kept = rows["n_outside"].astype(float)
    x_all = {
        AREA: rows["area_frac"],
        EDGE: rows["perimeter_px"] / kept,
        FOOTPRINT: rows["n_outside_footprint"] / kept,
    }[predictor]
    frame = pd.DataFrame(
        {"image": rows["image"], "mask": rows["mask_id"], "x": x_all, "y": rows[response]}
    )
    means = frame.groupby(["image", "mask"]).mean()
    return means["x"].to_numpy(), means["y"].to_numpy()


def test_error_following_the_footprint_exactly_gives_slope_100_r2_1_and_edge() -> None:
    table = fit_table(metrics_table(_footprint_law), n_resamples=N)
    for family in ("circle", "rectangle", "strokes", ALL):
        row = _row(table, FOOTPRINT, family)
        # y = (5 + 100 x) * (1 + 0.5) at strength 0.5.
        assert row["slope"] == pytest.approx(150.0, rel=1e-9)
        assert row["intercept"] == pytest.approx(7.5, rel=1e-9)
        assert row["r2"] == pytest.approx(1.0, abs=1e-12)
        assert row["slope_low"] == pytest.approx(150.0, rel=1e-9)
        assert row["slope_high"] == pytest.approx(150.0, rel=1e-9)
    area = _row(table, AREA, ALL)
    x, y = _seed_means(metrics_table(_footprint_law), AREA)
    assert area["r2"] == pytest.approx(np.corrcoef(x, y)[0, 1] ** 2, rel=1e-9)
    assert area["r2"] < 0.05
    gain = _row(table, FOOTPRINT, ALL)
    assert gain["r2_minus_area"] == pytest.approx(1.0 - area["r2"], rel=1e-9)
    assert gain["r2_minus_area_low"] > 0
    assert set(table["verdict"]) == {VERDICT_EDGE}
    finding = table["finding"].iloc[0]
    expected = "excess over the VAE floor follows the latent footprint, not area: R² 1.00"
    assert finding.startswith(expected)
    area_r2 = f"{area['r2']:.2f} ({area['r2_low']:.2f}–{area['r2_high']:.2f})"
    assert f"against {area_r2} for area" in finding
    assert "over 4 images" in finding


def test_the_response_is_the_excess_not_mse_outside_which_the_floor_swamps() -> None:
    metrics = metrics_table(_footprint_law)
    table = fit_table(metrics, n_resamples=N)
    # The same points fitted on mse_outside: the per-image floor (600 to 2400) dwarfs
    # the excess (at most 1.5 (5 + 100 · 0.78) ≈ 125), so footprint explains little.
    x, y_mse = _seed_means(metrics, FOOTPRINT, "mse_outside")
    r2_mse = np.corrcoef(x, y_mse)[0, 1] ** 2
    assert r2_mse < 0.1
    assert _row(table, FOOTPRINT, ALL)["r2"] == pytest.approx(1.0, abs=1e-12)
    # A row without a round trip (NaN excess) is left out, not fitted as mse_outside.
    no_trip = metrics.assign(
        excess_over_floor=metrics["excess_over_floor"].where(metrics["image"] != "d")
    )
    fewer = fit_table(no_trip, n_resamples=N)
    pooled = _row(fewer, FOOTPRINT, ALL)
    assert (pooled["n_images"], pooled["n_points"], pooled["n_rows"]) == (3, 30, 60)
    assert pooled["slope"] == pytest.approx(150.0, rel=1e-9)
    with pytest.raises(InputError, match="no mask_shape_sweep rows with excess_over_floor"):
        fit_table(metrics.assign(excess_over_floor=np.nan), n_resamples=5)
    with pytest.raises(InputError, match="lacks column.*excess_over_floor"):
        fit_table(metrics.drop(columns="excess_over_floor"), n_resamples=5)


def test_error_following_area_exactly_gives_area() -> None:
    table = fit_table(metrics_table(_area_law, strengths=(0.0,)), n_resamples=N)
    for family in ("circle", "rectangle", "strokes", ALL):
        row = _row(table, AREA, family, 0.0)
        assert row["slope"] == pytest.approx(50.0, rel=1e-9)
        assert row["intercept"] == pytest.approx(7.0, rel=1e-9)
        assert row["r2"] == pytest.approx(1.0, abs=1e-12)
    for predictor in (EDGE, FOOTPRINT):
        row = _row(table, predictor, ALL, 0.0)
        assert row["r2_minus_area_high"] < 0
    assert set(table["verdict"]) == {VERDICT_AREA}
    expected = "excess over the VAE floor follows area, not edge: R² 1.00"
    assert table["finding"].iloc[0].startswith(expected)


def test_a_nine_channel_unet_has_no_footprint_line_and_decides_on_edge_length() -> None:
    # Every kept pixel's cell is repainted: footprint_share is 1 everywhere, no line.
    metrics = metrics_table(lambda a, e, s: 5.0 + 80.0 * e, nine_channel=True)
    table = fit_table(metrics, n_resamples=N)
    row = _row(table, FOOTPRINT, ALL)
    assert np.isnan([row["slope"], row["r2"], row["r2_minus_area"], row["r2_low"]]).all()
    assert row["reason"] == "fewer than 2 distinct x values (every point at x = 1)"
    edge = _row(table, EDGE, ALL)
    assert edge["slope"] == pytest.approx(80.0 * 1.5, rel=1e-9)
    assert edge["r2_minus_area_low"] > 0
    assert set(table["verdict"]) == {VERDICT_EDGE}
    expected = "excess over the VAE floor follows edge length per kept pixel, not area"
    assert table["finding"].iloc[0].startswith(expected)


def test_a_family_with_one_x_has_nan_and_a_reason() -> None:
    table = fit_table(metrics_table(_footprint_law), n_resamples=N)
    file_rows = table.loc[table["family"] == "file"]
    assert len(file_rows) == len(PREDICTORS)
    fitted = ["intercept", "slope", "r2"]
    values = file_rows[[f"{c}{s}" for c in fitted for s in ("", "_low", "_high")]]
    assert values.isna().all().all()
    area = file_rows.loc[file_rows["predictor"] == AREA].iloc[0]
    assert area["reason"] == "fewer than 2 distinct x values (every point at x = 0.25)"
    assert (area["n_rows"], area["n_points"], area["n_masks"]) == (8, 4, 1)
    assert (area["x_min"], area["x_max"]) == (0.25, 0.25)
    assert (table.loc[table["family"] != "file", "reason"] == "").all()


def test_intervals_are_ordered_and_match_the_reference_bootstrap() -> None:
    metrics = metrics_table(_footprint_law, images=("a", "b", "c", "d", "e"), noise=4.0)
    table = fit_table(metrics, n_resamples=N, seed=3)
    for name in ("intercept", "slope", "r2", "r2_minus_area"):
        ok = table[name].notna()
        assert (table.loc[ok, f"{name}_low"] <= table.loc[ok, f"{name}_high"]).all()
    for name in ("intercept", "slope"):
        ok = table[name].notna()
        low, high = table.loc[ok, f"{name}_low"], table.loc[ok, f"{name}_high"]
        assert ((low <= table.loc[ok, name]) & (table.loc[ok, name] <= high)).all()

    def r2_gain(sample: pd.DataFrame) -> float:
        # R²(footprint) − R²(area) on seed means per (image draw, mask), by np.corrcoef.
        r2 = {}
        for predictor in (AREA, FOOTPRINT):
            x, y = _seed_means(sample, predictor)
            r2[predictor] = np.corrcoef(x, y)[0, 1] ** 2
        return r2[FOOTPRINT] - r2[AREA]

    samples = bootstrap(metrics, r2_gain, n_resamples=N, seed=3)
    low, high = percentile_interval(samples)
    row = _row(table, FOOTPRINT, ALL)
    assert row["r2_minus_area"] == pytest.approx(r2_gain(metrics), rel=1e-9)
    assert row["r2_minus_area_low"] == pytest.approx(low, rel=1e-9)
    assert row["r2_minus_area_high"] == pytest.approx(high, rel=1e-9)
    assert row["resampled"] == "images, then seeds within each image"


def test_fits_are_per_strength_in_table_order_with_the_schemas_dtypes() -> None:
    table = fit_table(metrics_table(_footprint_law, strengths=(0.1, 0.9)), n_resamples=20)
    families = ["circle", "rectangle", "strokes", "file", ALL]
    assert len(table) == 2 * len(PREDICTORS) * len(families)
    assert list(table["strength"].unique()) == [0.1, 0.9]
    first = table.loc[table["strength"] == 0.1]
    assert list(first["predictor"]) == [p for p in PREDICTORS for _ in families]
    assert list(first["family"].iloc[: len(families)]) == families
    # Each strength has its own line: y = (5 + 100 x)(1 + s).
    assert _row(table, FOOTPRINT, ALL, 0.9)["slope"] == pytest.approx(190.0, rel=1e-9)
    assert _row(table, FOOTPRINT, ALL, 0.1)["slope"] == pytest.approx(110.0, rel=1e-9)
    schema = yaml.safe_load(SCHEMA.read_text())["columns"]
    assert tuple(c["name"] for c in schema) == COLUMNS == tuple(table.columns)
    assert {c["name"]: c["dtype"] for c in schema} == DTYPES
    assert {c: str(table[c].dtype) for c in COLUMNS} == DTYPES


def test_verdict_is_undecided_when_an_interval_contains_zero() -> None:
    r2 = {AREA: (0.5, 0.3, 0.7), EDGE: (0.55, 0.3, 0.8), FOOTPRINT: (0.6, 0.4, 0.8)}
    gains = {FOOTPRINT: (0.1, -0.05, 0.25), EDGE: (0.05, -0.1, 0.2)}
    judged, finding = verdict(r2, gains, 12, "images, then seeds within each image")
    assert judged == VERDICT_UNDECIDED
    assert finding == (
        "area and edge cannot be told apart: R² 0.50 (0.30–0.70) for area, 0.55 (0.30–0.80)"
        " for edge length per kept pixel, 0.60 (0.40–0.80) for the latent footprint; every"
        " R² difference's interval contains 0, 95 % intervals over 12 images"
    )
    # One edge predictor clearly better: edge, even if the other is worse than area.
    judged, _ = verdict(r2, {FOOTPRINT: (0.1, 0.02, 0.2), EDGE: (-0.3, -0.4, -0.2)}, 12, "x")
    assert judged == VERDICT_EDGE
    # Area only when every defined edge predictor is clearly worse.
    judged, _ = verdict(r2, {FOOTPRINT: (-0.1, -0.2, -0.02), EDGE: (-0.3, -0.4, -0.2)}, 12, "x")
    assert judged == VERDICT_AREA
    judged, _ = verdict(r2, {FOOTPRINT: (-0.1, -0.2, 0.02), EDGE: (-0.3, -0.4, -0.2)}, 12, "x")
    assert judged == VERDICT_UNDECIDED


def test_one_image_and_one_seed_has_no_interval_and_no_verdict() -> None:
    table = fit_table(metrics_table(_footprint_law, images=("a",), seeds=(0,)), n_resamples=N)
    assert (table["resampled"] == "").all()
    assert table["slope_low"].isna().all() and table["r2_minus_area_high"].isna().all()
    assert _row(table, FOOTPRINT, ALL)["slope"] == pytest.approx(150.0, rel=1e-9)
    assert set(table["verdict"]) == {VERDICT_UNDECIDED}
    assert "no interval, one image and one seed" in table["finding"].iloc[0]


def test_bad_inputs_name_what_is_wrong() -> None:
    metrics = metrics_table(_footprint_law)
    with pytest.raises(InputError, match="repeated \\(image, seed, mask_id\\).*'m1'"):
        fit_table(pd.concat([metrics, metrics.iloc[:1]]), n_resamples=5)
    with pytest.raises(InputError, match="no mask_shape_sweep rows"):
        fit_table(metrics.assign(experiment="strength_sweep"), n_resamples=5)
    with pytest.raises(InputError, match="lacks column.*perimeter_px"):
        fit_table(metrics.drop(columns="perimeter_px"), n_resamples=5)


def test_write_fits_records_its_parameters(tmp_path: Path) -> None:
    metrics = metrics_table(_footprint_law)
    metrics.to_parquet(tmp_path / "metrics.parquet")
    write_fits(tmp_path / "metrics.parquet", tmp_path / "fits.parquet", n_resamples=30, seed=2)
    written = read_table(tmp_path / "fits.parquet", "mask_shape")
    pd.testing.assert_frame_equal(written, fit_table(metrics, n_resamples=30, seed=2))
    record = read_parquet_record(tmp_path / "fits.parquet")
    assert record is not None
    assert (record["stage"], record["n_resamples"], record["bootstrap_seed"]) == (
        "mask_shape",
        30,
        2,
    )
    assert record["metrics"] == str(tmp_path / "metrics.parquet")
    with pytest.raises(InputError, match="no mask_shape_sweep rows"):
        metrics.assign(experiment="x").to_parquet(tmp_path / "other.parquet")
        write_fits(tmp_path / "other.parquet", tmp_path / "none.parquet", n_resamples=5)


def test_figure_draws_points_fits_floor_and_verdict(tmp_path: Path) -> None:
    metrics = metrics_table(_footprint_law, strengths=(0.1, 0.9))
    fits = fit_table(metrics, n_resamples=20)
    fig = mask_shape(metrics, fits, "m1", tmp_path / "shape.png")
    assert (tmp_path / "shape.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = read_png_record(tmp_path / "shape.png")
    assert record is not None and record["figure"] == "mask_shape"
    assert record["strengths"]["0.9"]["verdict"] == VERDICT_EDGE
    assert record["strengths"]["0.9"]["n_points"] == {
        "circle": 16,
        "rectangle": 8,
        "strokes": 12,
        "file": 4,
    }
    assert record["strengths"]["0.9"]["lines"][FOOTPRINT][ALL]["slope"] == pytest.approx(190.0)
    # The mean floor over the points: 10 masks on each of images a-d.
    assert record["strengths"]["0.1"]["floor_mse_outside_vae"] == pytest.approx(1500.0)
    assert len(fig.axes) == 2 * len(PREDICTORS)
    # Row 2, footprint panel: the circle family's line is intercept + slope · [x_min, x_max].
    circle = _row(fits, FOOTPRINT, "circle", 0.9)
    ax = fig.axes[2 * len(PREDICTORS) - 1]
    drawn = [line for line in ax.get_lines() if line.get_color() == "C0"]
    np.testing.assert_allclose(drawn[0].get_xdata(), [circle["x_min"], circle["x_max"]])
    np.testing.assert_allclose(
        drawn[0].get_ydata(),
        [9.5 + 190.0 * circle["x_min"], 9.5 + 190.0 * circle["x_max"]],
    )
    title = fig.get_suptitle()
    assert "strength 0.9: edge (excess over the VAE floor follows the latent footprint" in title
    assert "excess of outside-mask MSE over the VAE floor against mask shape" in title
    # y is the excess: the floor is the grey dashed line at 0, in every panel.
    for panel in fig.axes:
        floors = [line for line in panel.get_lines() if line.get_linestyle() == "--"]
        assert len(floors) == 1
        np.testing.assert_array_equal(floors[0].get_ydata(), [0.0, 0.0])
    assert fig.axes[0].get_ylabel().startswith("excess over the VAE floor")
    assert "(0–255)²" in fig.axes[0].get_ylabel()
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[-1] == "VAE floor (excess 0)"
    with pytest.raises(InputError, match="no mask_shape_sweep rows for model 'other'"):
        mask_shape(metrics, fits, "other", tmp_path / "none.png")
    with pytest.raises(InputError, match="mask_shape table has no rows for model 'm1'"):
        mask_shape(metrics, fits.iloc[:0], "m1", tmp_path / "none.png")
