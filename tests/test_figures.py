"""The figures, drawn from real tables: PNGs, inpaint manifests, and the metrics and trends
tables that maskleak.metrics and maskleak.trends compute from them; no mocks."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jinja2
import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.text import Text
from matplotlib.transforms import Bbox
from PIL import Image
from scipy import ndimage, stats

from maskleak.config import Plan
from maskleak.errors import InputError
from maskleak.figures import captions, common, heatmaps
from maskleak.figures.area_curves import area_curves
from maskleak.figures.model_comparison import model_comparison
from maskleak.figures.radius_gallery import radius_gallery
from maskleak.figures.strength_grid import strength_grid
from maskleak.figures.strength_trend import strength_trend
from maskleak.figures.worst_case import worst_case
from maskleak.landscapes import generate_landscape
from maskleak.masks import circle_mask, inpaint_region
from maskleak.metrics import metrics_table
from maskleak.provenance import META_KEY, read_table
from maskleak.trends import STUDY_PUBLISHED_FIT, fit_trends
from test_workflow import small_config

MODEL = "sd15-test"
OTHER_MODEL = "sd-inpaint-test"
IMAGES = ["Landscape_10", "Landscape_2", "Landscape_0"]  # natural order: 0, 2, 10
STRENGTHS = [0.0, 0.25, 0.5, 0.75, 1.0]
AREA_STRENGTHS = [0.1, 0.5, 0.9]
RADII = [20.0, 35.0, 50.0, 65.0, 80.0]
SEEDS = [0, 1]
STEPS = 20
BAND_PX = 4


@dataclass(frozen=True)
class Study:
    """What one synthetic study ran: its images (name -> (width, height)), sweeps, models."""

    images: dict[str, tuple[int, int]]
    strengths: list[float]
    area_strengths: list[float]
    radii: list[float]
    seeds: list[int]
    models: tuple[str, ...] = (MODEL, OTHER_MODEL)


FULL = Study({name: (40, 32) for name in IMAGES}, STRENGTHS, AREA_STRENGTHS, RADII, SEEDS)
ONE_IMAGE = Study({"Landscape_2": (40, 32)}, STRENGTHS, AREA_STRENGTHS, RADII, SEEDS, (MODEL,))
SQUARE = Study(
    {"Landscape_0": (32, 32), "Landscape_2": (32, 32)}, STRENGTHS, [0.5], [30.0, 60.0], [0]
)
#: 3 seeds per setting (the default config's number): the confidence bands over seeds.
THREE_SEEDS = Study(
    {"Landscape_2": (40, 32), "Landscape_10": (40, 32)},
    STRENGTHS,
    [0.1, 0.9],
    [30.0, 55.0, 80.0],
    [0, 1, 2],
    (MODEL,),
)
#: A strength sweep of 2 strengths and a mask-size sweep of 1 radius: too few for fits.
FEW = Study({"Landscape_0": (40, 32), "Landscape_2": (40, 32)}, [0.0, 1.0], [0.5], [50.0], [0])


def _save_png(pixels: np.ndarray, rel: str) -> str:
    Path(rel).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(rel)
    return rel


def _inpainted(
    original: np.ndarray, region: np.ndarray, strength: float, seed: int, model: str
) -> np.ndarray:
    """Noise that grows with strength, three times as strong within BAND_PX of the
    mask (the edge band); the other model's noise is four times ours."""
    rng = np.random.default_rng(int(strength * 1000) * 10 + seed + (7 if model == MODEL else 0))
    scale = (1.0 + 20.0 * strength) * (4.0 if model == OTHER_MODEL else 1.0)
    band = ndimage.binary_dilation(region, iterations=BAND_PX) & ~region
    sd = np.where(band, 3.0 * scale, scale)[..., None]
    noise = rng.normal(0.0, 1.0, size=original.shape) * sd
    out = np.clip(original.astype(np.float64) + noise, 0, 255).astype(np.uint8)
    out[region] = rng.integers(0, 256, size=(int(region.sum()), 3), dtype=np.uint8)
    return out


def _write_study(study: Study) -> tuple[pd.DataFrame, pd.DataFrame]:
    """PNGs and inpaint manifests in the cwd, then the metrics table maskleak computes
    from them and the trends fitted to it. Landscape_0 is a procedural landscape with a
    region map (the flat / textured split); the others are noise."""
    manifests, region_maps = [], {}
    for k, (image, (w, h)) in enumerate(study.images.items()):
        if image == "Landscape_0":
            original, labels = generate_landscape(3, w, h)
            region_maps[image] = _save_png(labels, f"regions/{image}.png")
        else:
            original = np.random.default_rng(100 + k).integers(0, 256, (h, w, 3), dtype=np.uint8)
        image_path = _save_png(original, f"images/{image}.png")
        runs = [("strength_sweep", 80.0, s, seed) for s in study.strengths for seed in study.seeds]
        runs += [
            ("mask_size_sweep", r, s, seed)
            for r in study.radii
            for s in study.area_strengths
            for seed in study.seeds
        ]
        for model in study.models:
            entries = []
            for experiment, radius, strength, seed in runs:
                mask = circle_mask(w, h, radius)
                mask_path = f"masks/{image}/r{radius:g}.png"
                if not Path(mask_path).exists():
                    _save_png(np.asarray(mask), mask_path)
                out = f"inpainted/{model}/{image}/r{radius:g}_s{strength:g}_seed{seed}.png"
                region = inpaint_region(mask)
                _save_png(_inpainted(original, region, strength, seed, model), out)
                steps_run = int(STEPS * strength)
                entries.append(
                    {
                        "experiment": experiment,
                        "radius_pct": radius,
                        "strength": strength,
                        "seed": seed,
                        "steps_run": steps_run,
                        "mode": "vae_roundtrip" if steps_run == 0 else "denoise",
                        "mask_path": mask_path,
                        "inpainted_path": out,
                    }
                )
            manifest = {
                "model": model,
                "image": image,
                "image_path": image_path,
                "steps": STEPS,
                "inpaintings": entries,
            }
            path = Path(f"inpainted/{model}/{image}/manifest.json")
            path.write_text(json.dumps(manifest))
            manifests.append(str(path))
    metrics = metrics_table(manifests, band_px=BAND_PX, region_maps=region_maps)
    return metrics, fit_trends(metrics)


Data = tuple[Path, pd.DataFrame, pd.DataFrame]


def _build(tmp_path_factory: pytest.TempPathFactory, study: Study) -> Data:
    root = tmp_path_factory.mktemp("study")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        metrics, trends = _write_study(study)
    return root, metrics, trends


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Data:
    return _build(tmp_path_factory, FULL)


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Data]:
    """The small studies whose figures must still fit on their canvas."""
    return {
        "one_image": _build(tmp_path_factory, ONE_IMAGE),
        "square": _build(tmp_path_factory, SQUARE),
        "few": _build(tmp_path_factory, FEW),
        "three_seeds": _build(tmp_path_factory, THREE_SEEDS),
    }


@pytest.fixture
def data(dataset: Data, monkeypatch: pytest.MonkeyPatch) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fresh copies of the tables, with the cwd at the dataset (PNG paths are relative)."""
    root, metrics, trends = dataset
    monkeypatch.chdir(root)
    return metrics.copy(), trends.copy()


def _record(path: Path) -> dict[str, Any]:
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.format == "PNG"
        text = img.text  # type: ignore[attr-defined]
    assert "Software" not in text
    return json.loads(text[META_KEY])


Render = Callable[[pd.DataFrame, pd.DataFrame, Path], Figure]


def _gallery(m: pd.DataFrame, t: pd.DataFrame, p: Path) -> Figure:
    image = "Landscape_2"
    return radius_gallery(m, MODEL, image, 0.5, sorted(set(m["radius_pct"]))[:3], p)


RENDERERS: dict[str, Render] = {
    "strength_grid": lambda m, t, p: strength_grid(m, MODEL, p),
    "strength_trend": lambda m, t, p: strength_trend(m, t, MODEL, p),
    "worst_case": lambda m, t, p: worst_case(m, MODEL, "Landscape_2", p),
    "area_curves": lambda m, t, p: area_curves(m, t, MODEL, p),
    "radius_gallery": _gallery,
    "model_comparison": lambda m, t, p: model_comparison(m, p),
}


class Rendered:
    """Each figure rendered twice (to check the bytes match), once per module."""

    def __init__(self, dataset: Data, out: Path) -> None:
        self.dataset = dataset
        self.out = out
        self.done: dict[str, tuple[Path, Path]] = {}

    def __call__(self, name: str) -> tuple[Path, Path]:
        if name not in self.done:
            root, metrics, trends = self.dataset
            pair = (self.out / f"{name}_a.png", self.out / f"{name}_b.png")
            with pytest.MonkeyPatch.context() as mp:
                mp.chdir(root)
                for path in pair:
                    RENDERERS[name](metrics.copy(), trends.copy(), path)
            self.done[name] = pair
        return self.done[name]


@pytest.fixture(scope="module")
def rendered(dataset: Data, tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    return Rendered(dataset, tmp_path_factory.mktemp("figures"))


def _render(data: Data, name: str, out: Path) -> Figure:
    root, metrics, trends = data
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        return RENDERERS[name](metrics.copy(), trends.copy(), out)


# --------------------------------------------------------------- what a figure shows


def _text_boxes(fig: Figure) -> dict[str, Bbox]:
    """Display boxes of every text the saved figure draws, as it was saved (150 dpi):
    titles, labels, legends, and the tick labels each axis draws."""
    fig.set_dpi(common.DPI)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    tick_labels = {
        id(label)
        for ax in fig.axes
        for axis in (ax.xaxis, ax.yaxis)
        for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]
        for label in (tick.label1, tick.label2)
    }
    boxes: dict[str, Bbox] = {}
    for artist in fig.findobj(lambda a: isinstance(a, Text | Legend)):
        hidden = artist.axes is not None and not artist.axes.get_visible()
        if id(artist) in tick_labels or not artist.get_visible() or hidden:
            continue
        if isinstance(artist, Text) and not artist.get_text().strip():
            continue
        name = artist.get_text() if isinstance(artist, Text) else "legend"
        boxes[f"{name!r} #{len(boxes)}"] = artist.get_window_extent(renderer)
    for i, ax in enumerate(a for a in fig.axes if a.get_visible()):
        for axis in (ax.xaxis, ax.yaxis):
            box = axis.get_tightbbox(renderer)
            if box is not None:
                boxes[f"axis of axes {i}"] = box
    return boxes


def _outside_canvas(fig: Figure) -> list[str]:
    boxes = _text_boxes(fig)
    assert boxes
    canvas = fig.bbox
    tol = 0.5  # px
    return [
        name
        for name, b in boxes.items()
        if b.x0 < canvas.x0 - tol
        or b.y0 < canvas.y0 - tol
        or b.x1 > canvas.x1 + tol
        or b.y1 > canvas.y1 + tol
    ]


def _legend_texts(fig: Figure) -> list[str]:
    legends = [*fig.legends, *(sf_leg for sf in fig.subfigs for sf_leg in sf.legends)]
    legends += [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    return [t.get_text() for leg in legends for t in leg.get_texts()]


def _seed_means(sel: pd.DataFrame, column: str, x: str) -> pd.DataFrame:
    """Mean over seeds per image and x, computed here without maskleak."""
    return sel.groupby(["image", x], as_index=False)[column].mean()


def _t_band(values: Any) -> tuple[float, float]:
    """95 % Student-t interval of the mean of ``values``, computed here with scipy's
    own interval function (not maskleak's formula)."""
    values = np.asarray(values, dtype=float)
    sem = stats.sem(values)
    low, high = stats.t.interval(0.95, values.size - 1, loc=values.mean(), scale=sem)
    return float(low), float(high)


# --------------------------------------------------------------------------- tests


def test_squared_error_map_exact_values_without_uint8_wrap() -> None:
    a = np.zeros((2, 2, 3), dtype=np.uint8)
    b = np.zeros((2, 2, 3), dtype=np.uint8)
    a[0, 0] = (16, 16, 16)  # uint8 arithmetic would give 16*16 = 256 -> 0
    b[0, 1] = (255, 0, 0)  # b > a: uint8 a - b would wrap to 1
    a[1, 0] = (10, 20, 30)
    b[1, 0] = (13, 16, 30)
    a_before = a.copy()
    err = heatmaps.squared_error_map(a, b)
    assert err.dtype == np.float64
    assert err.shape == (2, 2)
    expected = np.array([[256.0, 65025.0 / 3], [(9.0 + 16.0) / 3, 0.0]])
    np.testing.assert_array_equal(err, expected)
    np.testing.assert_array_equal(a, a_before)
    # Grey images: just the squared difference.
    grey = heatmaps.squared_error_map(np.array([[0, 200]], np.uint8), np.array([[16, 0]], np.uint8))
    np.testing.assert_array_equal(grey, [[256.0, 40000.0]])


def test_squared_error_map_rejects_shape_mismatch() -> None:
    with pytest.raises(InputError, match="shapes differ"):
        heatmaps.squared_error_map(np.zeros((2, 2, 3)), np.zeros((2, 3, 3)))


def test_the_study_tables_are_what_maskleak_computes(data: tuple[pd.DataFrame, pd.DataFrame]):
    metrics, trends = data
    assert len(metrics) == 2 * 3 * (5 * 2 + 5 * 3 * 2)
    # The synthetic inpaintings leak more at higher strength, next to the mask edge,
    # and far more for the other model: what the figures' assertions rely on.
    ours = metrics[(metrics["model"] == MODEL) & (metrics["experiment"] == "strength_sweep")]
    by_strength = ours.groupby("strength")["mse_outside"].mean()
    assert by_strength.is_monotonic_increasing
    assert (ours["mse_outside_band"] > ours["mse_outside_far"]).all()
    assert metrics.loc[metrics["image"] == "Landscape_0", "mse_outside_flat"].notna().all()
    assert (trends["reason"] == "").all() and trends["c1"].notna().all()


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_figure_is_a_deterministic_png_with_its_record(name: str, rendered: Rendered) -> None:
    first, second = rendered(name)
    with Image.open(first) as img:
        width, height = img.size
    assert 500 <= width <= 4000 and 300 <= height <= 4000
    record = _record(first)
    assert record["figure"] == name
    assert MODEL in (record["models"] if name == "model_comparison" else [record["model"]])
    assert "versions" in record
    assert first.read_bytes() == second.read_bytes()
    # Written atomically: no temporary siblings left behind.
    assert not [p.name for p in first.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("study", ["full", "one_image", "square", "few", "three_seeds"])
@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_every_text_lies_on_the_saved_canvas(
    name: str, study: str, dataset: Data, studies: dict[str, Data], tmp_path: Path
) -> None:
    """Titles, legends, labels and panel titles are not cut off, also with one image,
    square images, or sweeps too short for fits."""
    out = tmp_path / f"{name}.png"
    fig = _render(dataset if study == "full" else studies[study], name, out)
    assert _outside_canvas(fig) == []
    with Image.open(out) as img:  # the saved canvas is the one checked
        assert img.size == (int(fig.bbox.width), int(fig.bbox.height))


def test_strength_grid_record(rendered: Rendered) -> None:
    record = _record(rendered("strength_grid")[0])
    assert record["images"] == ["Landscape_0", "Landscape_2", "Landscape_10"]
    assert record["seeds"] == SEEDS
    assert record["steps"] == [STEPS]
    assert record["strengths"] == STRENGTHS
    assert record["n_rows"] == len(IMAGES) * len(STRENGTHS) * len(SEEDS)
    assert record["vae_roundtrip_strengths"] == {image: [0.0] for image in IMAGES}


def test_strength_trend_draws_the_mean_fits_and_points(
    data: tuple[pd.DataFrame, pd.DataFrame], rendered: Rendered, tmp_path: Path
) -> None:
    metrics, trends = data
    record = _record(rendered("strength_trend")[0])
    assert record["fits_missing"] == {}
    sweep = metrics[(metrics["model"] == MODEL) & (metrics["experiment"] == "strength_sweep")]
    for metric in ("mse_outside", "mse_outside_thesis"):
        want = trends.loc[
            (trends["model"] == MODEL) & (trends["scope"] == "mean") & (trends["metric"] == metric)
        ].iloc[0]
        fit = record["fits"][metric]
        assert (fit["c2"], fit["c1"], fit["c0"], fit["r2"]) == (
            want["c2"],
            want["c1"],
            want["c0"],
            want["r2"],
        )
        assert fit["equation"] == want["equation"] and fit["n_points"] == len(STRENGTHS)
        # The bootstrap intervals of the coefficients, as trends has them.
        bounds = ["c2_lo", "c2_hi", "c1_lo", "c1_hi", "c0_lo", "c0_hi", "n_resamples"]
        assert [fit[k] for k in bounds] == want[bounds].tolist()
        assert fit["n_resamples"] == 1000 and fit["c2_lo"] < fit["c2"] < fit["c2_hi"]
        # The points: mean over images of each image's seed mean, and the 95 % t-band
        # over the 3 images' seed means.
        per_image = _seed_means(sweep, metric, "strength").groupby("strength")[metric]
        points = record["points"][metric]
        assert points["strength"] == STRENGTHS
        assert points["mean"] == pytest.approx(per_image.mean().tolist(), rel=1e-12)
        band = [_t_band(v) for _, v in per_image]
        assert points["low"] == pytest.approx([b[0] for b in band], rel=1e-9)
        assert points["high"] == pytest.approx([b[1] for b in band], rel=1e-9)
        assert points["n"] == [len(IMAGES)] * len(STRENGTHS)
    assert record["band"] == "95 % CI (t) over 3 images"
    assert record["published_fit"]["equation"] == "y = 9.694x² − 4.105x + 40.000"
    assert (
        record["published_fit"]["c2"],
        record["published_fit"]["c1"],
        record["published_fit"]["c0"],
    ) == STUDY_PUBLISHED_FIT
    # Without its trends row the figure cannot say what the fit is: say which is missing.
    no_row = trends.loc[trends["metric"] != "mse_outside_thesis"]
    with pytest.raises(InputError, match="mse_outside_thesis"):
        strength_trend(metrics, no_row, MODEL, tmp_path / "trend2.png")
    assert not (tmp_path / "trend2.png").exists()


def test_strength_trend_draws_the_studys_published_fit_and_the_intervals(
    dataset: Data, tmp_path: Path
) -> None:
    root, metrics, trends = dataset
    fig = _render(dataset, "strength_trend", tmp_path / "t.png")
    true_panel, wrapped_panel = (sf.axes[0] for sf in fig.subfigs)
    published = [
        line
        for ax in (true_panel, wrapped_panel)
        for line in ax.get_lines()
        if str(line.get_label()).startswith("study's published fit")
    ]
    assert len(published) == 1 and published[0].axes is wrapped_panel
    line = published[0]
    assert line.get_label() == (
        "study's published fit (SD 1.5, 640×416, 200 steps): y = 9.694x² − 4.105x + 40.000"
    )
    assert line.get_linestyle() == "--"
    xs = np.asarray(line.get_xdata(), dtype=float)
    assert (xs.min(), xs.max()) == (0.0, 1.0)
    np.testing.assert_allclose(line.get_ydata(), 9.694 * xs**2 - 4.105 * xs + 40, rtol=1e-12)
    # Each panel's legend gives the bootstrap interval of each coefficient of its fit.
    legends = [" ".join(t.get_text() for t in sf.legends[0].get_texts()) for sf in fig.subfigs]
    for legend, metric in zip(legends, ("mse_outside", "mse_outside_thesis"), strict=True):
        row = trends[
            (trends["model"] == MODEL) & (trends["scope"] == "mean") & (trends["metric"] == metric)
        ].iloc[0]
        parts = [
            f"{c} [{row[c + '_lo']:.4g}, {row[c + '_hi']:.4g}]".replace("-", "−")
            for c in ("c2", "c1", "c0")
        ]
        want = f"95 % CI: {', '.join(parts)} (1000 bootstrap resamples of 3 images × 2 seeds)"
        assert want in legend.replace("\n", " ")
    assert "published" not in legends[0]


def test_bands_over_seeds_and_images(studies: dict[str, Data], tmp_path: Path) -> None:
    """With 3 seeds: the per-image figures shade the 95 % t-interval over the seeds, the
    image-averaging ones the t-interval over the images' seed means (scipy computes them
    here); with 1 seed nothing is shaded and the legend says so."""
    root, metrics, trends = studies["three_seeds"]
    sweep = metrics[(metrics["experiment"] == "strength_sweep") & (metrics["model"] == MODEL)]
    _render(studies["three_seeds"], "strength_grid", tmp_path / "grid.png")
    record = _record(tmp_path / "grid.png")
    assert record["band"] == "95 % CI (t) over 3 seeds"
    for image in ("Landscape_2", "Landscape_10"):
        for column in ("mse_outside", "mse_outside_thesis"):
            mine = sweep[sweep["image"] == image]
            band = [_t_band(v[column]) for _, v in mine.groupby("strength")]
            got = record["bands"][image][column]
            assert got["low"] == pytest.approx([b[0] for b in band], rel=1e-9)
            assert got["high"] == pytest.approx([b[1] for b in band], rel=1e-9)

    _render(studies["three_seeds"], "model_comparison", tmp_path / "models.png")
    summary = _record(tmp_path / "models.png")["per_model"][MODEL]
    per_image = _seed_means(sweep, "mse_outside", "strength").groupby("strength")["mse_outside"]
    band = [_t_band(v) for _, v in per_image]
    assert summary["band"] == "95 % CI (t) over 2 images"
    assert summary["mean_over_images"]["low"] == pytest.approx([b[0] for b in band], rel=1e-9)
    assert summary["mean_over_images"]["high"] == pytest.approx([b[1] for b in band], rel=1e-9)

    area = metrics[(metrics["experiment"] == "mask_size_sweep") & (metrics["model"] == MODEL)]
    _render(studies["three_seeds"], "area_curves", tmp_path / "area.png")
    bands = _record(tmp_path / "area.png")["bands"]
    assert len(bands) == 2 * 2 * 2  # metrics x images x strengths
    got = next(
        b
        for b in bands
        if (b["metric"], b["image"], b["strength"]) == ("mse_whitedisc_thesis", "Landscape_10", 0.9)
    )
    mine = area[(area["image"] == "Landscape_10") & (area["strength"] == 0.9)]
    band = [_t_band(v["mse_whitedisc_thesis"]) for _, v in mine.groupby("radius_pct")]
    assert got["low"] == pytest.approx([b[0] for b in band], rel=1e-9)
    assert got["x"] == pytest.approx(mine.groupby("radius_pct")["area_frac_thesis"].mean().tolist())

    # One seed (and in model_comparison and strength_trend: 2 images still give a band).
    fig = _render(studies["square"], "strength_grid", tmp_path / "one.png")
    assert _record(tmp_path / "one.png")["band"] == "no band: only 1 seed"
    assert "no band: only 1 seed" in _legend_texts(fig)
    assert not any(ax.collections for ax in fig.axes)
    fig = _render(studies["one_image"], "strength_trend", tmp_path / "trend.png")
    assert "mean over 1 image (no band: only 1 image)" in _legend_texts(fig)
    assert not any(ax.collections for ax in fig.axes)


def _data_points(fig: Figure) -> np.ndarray:
    """Display coordinates of every point drawn in the figure's axes (markers, error
    bars, fit curves)."""
    fig.set_dpi(common.DPI)
    fig.canvas.draw()
    points = []
    for ax in fig.axes:
        for line in ax.get_lines():
            xy = line.get_xydata()
            if len(xy):
                points.append(ax.transData.transform(xy))
        for collection in ax.collections:
            for path in collection.get_paths():
                points.append(ax.transData.transform(path.vertices))
    return np.concatenate(points)


@pytest.mark.parametrize("study", ["full", "few"])
def test_strength_trend_legends_leave_the_points_free(
    study: str, dataset: Data, studies: dict[str, Data], tmp_path: Path
) -> None:
    fig = _render(
        dataset if study == "full" else studies[study], "strength_trend", tmp_path / "t.png"
    )
    points = _data_points(fig)
    legends = [leg for sf in fig.subfigs for leg in sf.legends]
    assert len(legends) == 2
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    for legend in legends:
        box = legend.get_window_extent(renderer)
        inside = (
            (points[:, 0] >= box.x0)
            & (points[:, 0] <= box.x1)
            & (points[:, 1] >= box.y0)
            & (points[:, 1] <= box.y1)
        )
        assert not inside.any(), points[inside]


def test_too_short_sweeps_are_drawn_without_fits(studies: dict[str, Data], tmp_path: Path):
    """2 strengths, 1 radius: trends has each fit as a row without coefficients, with the
    reason, and the figures draw the points and say that there is no fit."""
    root, metrics, trends = studies["few"]
    mean = trends[(trends["scope"] == "mean") & (trends["model"] == MODEL)]
    assert len(mean) == 2 and mean[["c2", "c1", "c0", "r2"]].isna().all().all()
    assert set(mean["reason"]) == {
        f"only 2 distinct strength values with a finite {m}; a degree-2 fit needs 3"
        for m in ("mse_outside", "mse_outside_thesis")
    }
    assert (mean["n_points"] == 2).all() and (mean["equation"] == "").all()
    assert (mean["x_min"] == 0.0).all() and (mean["x_max"] == 1.0).all()
    area = trends[trends["experiment"] == "mask_size_sweep"]
    assert len(area) == 2 * 2 * 3  # models x images x metrics
    assert area["c1"].isna().all() and area["reason"].str.startswith("only 1 distinct").all()

    fig = _render(studies["few"], "strength_trend", tmp_path / "trend.png")
    record = _record(tmp_path / "trend.png")
    assert record["fits"] == {}
    assert record["fits_missing"] == dict(zip(mean["metric"], mean["reason"], strict=True))
    assert record["points"]["mse_outside"]["strength"] == [0.0, 1.0]
    title = fig.get_suptitle()
    assert "no fit: only 2 strengths, a degree-2 fit needs 3" in title.replace("\n", " ")
    legend = " ".join(_legend_texts(fig)).replace("\n", " ")
    assert legend.count("no degree-2 fit: only 2 distinct strength values") == 2

    fig = _render(studies["few"], "area_curves", tmp_path / "area.png")
    record = _record(tmp_path / "area.png")
    assert record["fits"] == [] and len(record["fits_missing"]) == 2 * 2  # images x metrics
    assert record["fits_missing"][0]["reason"].startswith("only 1 distinct area_frac value")
    study_reasons = [m["reason"] for m in record["fits_missing"][2:]]
    assert all(r.startswith("only 1 distinct area_frac_thesis value") for r in study_reasons)
    assert any(t.startswith("no linear fit: only 1") for t in _legend_texts(fig))


def test_worst_case_shows_the_three_highest_thesis_mse_at_the_lowest_seed(
    data: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    metrics, _ = data
    strength_sweep = metrics["experiment"] == "strength_sweep"
    ours = metrics["model"] == MODEL
    # Higher values in another model / image / experiment / seed must not be picked.
    metrics.loc[~ours, "mse_outside_thesis"] = 500.0
    metrics.loc[ours & (metrics["image"] == "Landscape_0"), "mse_outside_thesis"] = 400.0
    metrics.loc[ours & ~strength_sweep, "mse_outside_thesis"] = 300.0
    sweep = ours & strength_sweep & (metrics["image"] == "Landscape_2")
    metrics.loc[sweep & (metrics["seed"] == 1), "mse_outside_thesis"] = 200.0
    seed0 = sweep & (metrics["seed"] == 0)
    # Ranked by the study's wrapped number, not by mse_outside (which grows with strength
    # here); 0.25 and 0.75 tie: the lower strength first.
    for strength, value in {0.0: 5.0, 0.25: 7.0, 0.5: 9.0, 0.75: 7.0, 1.0: 1.0}.items():
        metrics.loc[seed0 & (metrics["strength"] == strength), "mse_outside_thesis"] = value
    out = tmp_path / "worst.png"
    fig = worst_case(metrics, MODEL, "Landscape_2", out)
    record = _record(out)
    assert record["ranked_by"] == "mse_outside_thesis"
    assert record["strengths"] == [0.5, 0.25, 0.75]
    assert record["seeds"] == [0, 0, 0]
    assert record["mse_outside_thesis"] == [9.0, 7.0, 7.0]
    paths = [f"inpainted/sd15-test/Landscape_2/r80_s{s:g}_seed0.png" for s in (0.5, 0.25, 0.75)]
    assert record["inpainted_paths"] == paths
    rows = [metrics[seed0 & (metrics["inpainted_path"] == p)].iloc[0] for p in paths]
    assert record["mse_outside"] == [row["mse_outside"] for row in rows]
    assert (record["steps_run"], record["modes"]) == ([10, 5, 15], ["denoise"] * 3)

    # The squared-error colour scale: one for all rows, from the pixels outside the mask.
    errors, outsides = [], []
    with Image.open(record["image_path"]) as a:
        original = np.asarray(a)
    for path, mask_path in zip(paths, record["mask_paths"], strict=True):
        with Image.open(path) as b, Image.open(mask_path) as m:
            inpainted, outside = np.asarray(b), np.asarray(m) == 0
        errors.append(heatmaps.squared_error_map(original, inpainted)[outside])
        outsides.append(outside)
        # The fourth panel of each row draws the study's heatmap of that row.
        study = heatmaps.study_heatmap(original, inpainted, ~outside)
        panel = fig.axes[4 * len(outsides) - 1]
        np.testing.assert_array_equal(panel.get_images()[1].get_array(), study)
        assert "study's heatmap" in panel.get_title() and "min–max" in panel.get_title()
        assert "true squared error" in fig.axes[4 * len(outsides) - 2].get_title()
    want_vmax = np.percentile(np.concatenate(errors), heatmaps.HEATMAP_PERCENTILE)
    assert record["heatmap_vmax"] == pytest.approx(want_vmax, rel=1e-12)
    title = fig.get_suptitle()
    assert "not squared error, min–max normalised per map" in title
    assert "not comparable across rows or images" in title

    # A strength whose seed 0 is missing is shown at its lowest seed (1, ranked 200).
    no_seed0 = metrics.loc[~(seed0 & (metrics["strength"] == 0.25))]
    worst_case(no_seed0, MODEL, "Landscape_2", out)
    record = _record(out)
    assert (record["strengths"], record["seeds"]) == ([0.25, 0.5, 0.75], [1, 0, 0])
    assert record["inpainted_paths"][0].endswith("Landscape_2/r80_s0.25_seed1.png")

    # Two strengths: two rows.
    two = metrics.loc[~(sweep & metrics["strength"].isin([0.5, 0.75, 1.0]))]
    fig = worst_case(two, MODEL, "Landscape_2", out)
    record = _record(out)
    assert record["strengths"] == [0.25, 0.0] and record["seeds"] == [0, 0]
    assert len([ax for ax in fig.axes if ax.get_images()]) == 2 * 4
    assert "the 2 strengths with the highest thesis" in fig.get_suptitle()


def test_radius_gallery_picks_nearest_strength_radii_and_lowest_seed(
    data: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    metrics, _ = data
    # Drop seed 0 at radius 35 so the lowest seed there is 1.
    drop = (
        (metrics["experiment"] == "mask_size_sweep")
        & (metrics["radius_pct"] == 35.0)
        & (metrics["seed"] == 0)
    )
    metrics = metrics.loc[~drop]
    out = tmp_path / "gallery.png"
    # 21 -> 20, 42.5 (tie 35/50) -> 35, 30 -> 35 (duplicate, dropped), 44 -> 50, 68 -> 65,
    # 79 -> 80
    fig = radius_gallery(metrics, MODEL, "Landscape_2", 0.62, [21, 42.5, 30, 44, 68, 79], out)
    record = _record(out)
    assert record["strength_requested"] == 0.62
    assert record["strength"] == 0.5
    assert record["radii_requested"] == [21.0, 42.5, 30.0, 44.0, 68.0, 79.0]
    assert record["radii"] == [20.0, 35.0, 50.0, 65.0, 80.0]
    assert record["nearest_available"] is True
    assert record["seeds"] == [0, 1, 0, 0, 0]
    assert record["inpainted_paths"][1].endswith("Landscape_2/r35_s0.5_seed1.png")
    at = metrics[(metrics["model"] == MODEL) & (metrics["image"] == "Landscape_2")]
    at = at[(at["experiment"] == "mask_size_sweep") & (at["strength"] == 0.5)]
    want = [
        at[(at["radius_pct"] == r) & (at["seed"] == s)]["mse_outside"].iloc[0]
        for r, s in zip(record["radii"], record["seeds"], strict=True)
    ]
    assert record["mse_outside"] == want
    title = fig.get_suptitle().replace("\n", " ")
    assert "strength 0.5 (nearest available to 0.62)" in title
    assert "radii 20, 35, 50, 65, 80 % (nearest available to 21, 42.5, 30, 44, 68, 79 %)" in title
    with Image.open(out) as img:
        assert img.size[1] > img.size[0]  # five rows of two panels: taller than wide

    # Values the sweep has: drawn as asked, and the title does not say "nearest".
    fig = radius_gallery(metrics, MODEL, "Landscape_2", 0.9, [65, 20], out)
    record = _record(out)
    assert (record["strength"], record["radii"], record["nearest_available"]) == (
        0.9,
        [65.0, 20.0],
        False,
    )
    assert "nearest" not in fig.get_suptitle()
    assert "strength 0.9, radii 65, 20 %" in fig.get_suptitle().replace("\n", " ")
    with pytest.raises(InputError, match="radius"):
        radius_gallery(metrics, MODEL, "Landscape_2", 0.5, [], tmp_path / "g2.png")


def test_area_curves_draws_each_fit_and_lists_missing_ones(
    data: tuple[pd.DataFrame, pd.DataFrame], rendered: Rendered, tmp_path: Path
) -> None:
    metrics, trends = data
    record = _record(rendered("area_curves")[0])
    assert record["images"] == ["Landscape_0", "Landscape_2", "Landscape_10"]
    assert record["strengths"] == AREA_STRENGTHS
    assert record["radii"] == RADII
    # Two grids: true MSE and the study's white-disc number.
    assert len(record["fits"]) == 2 * len(IMAGES) * len(AREA_STRENGTHS)
    assert record["fits_missing"] == []
    for metric, x in (("mse_outside", "area_frac"), ("mse_whitedisc_thesis", "area_frac_thesis")):
        fit = next(
            f
            for f in record["fits"]
            if (f["metric"], f["image"], f["strength"]) == (metric, "Landscape_2", 0.5)
        )
        want = trends[
            (trends["model"] == MODEL)
            & (trends["image"] == "Landscape_2")
            & (trends["strength"] == 0.5)
            & (trends["metric"] == metric)
        ].iloc[0]
        assert want["x"] == x
        assert (fit["c1"], fit["c0"], fit["equation"]) == (want["c1"], want["c0"], want["equation"])
    fewer = trends.loc[~((trends["image"] == "Landscape_10") & (trends["strength"] == 0.9))]
    out = tmp_path / "area.png"
    fig = area_curves(metrics, fewer, MODEL, out)
    assert _record(out)["fits_missing"] == [
        {"metric": m, "image": "Landscape_10", "strength": 0.9, "reason": "not in the trends table"}
        for m in ("mse_outside", "mse_whitedisc_thesis")
    ]
    assert "2 linear fit(s) missing: not in the trends table" in _legend_texts(fig)


def test_area_curves_put_the_studys_number_on_its_own_axis(
    data: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    """The study's panel (mse_whitedisc_thesis) is drawn against pi r^2 / (w h), computed
    here from the radius; the true-MSE panel against the counted area_frac."""
    metrics, trends = data
    fig = area_curves(metrics, trends, MODEL, tmp_path / "area.png")
    first = fig.subfigs[0].axes[0]  # Landscape_0 in the true-MSE grid
    study = fig.subfigs[1].axes[0]  # Landscape_0 in the study's grid
    assert first.get_title() == study.get_title() == "Landscape_0"
    assert "π r² / (w·h)" in study.get_xlabel() and "π r²" not in first.get_xlabel()
    rows = metrics[
        (metrics["model"] == MODEL)
        & (metrics["experiment"] == "mask_size_sweep")
        & (metrics["image"] == "Landscape_0")
        & (metrics["strength"] == AREA_STRENGTHS[0])
    ]
    w, h = 40, 32
    radius = np.floor(np.array(RADII) / 100 * min(w, h) / 2)
    analytic = np.pi * radius**2 / (w * h)
    counted = rows.groupby("radius_pct")["area_frac"].mean().to_numpy()
    assert not np.allclose(analytic, counted)  # the two axes differ on this image
    curve = study.get_lines()[0]  # first strength's mean curve
    np.testing.assert_allclose(curve.get_xdata(), analytic, rtol=1e-12)
    white = rows.groupby("radius_pct")["mse_whitedisc_thesis"].mean().to_numpy()
    np.testing.assert_allclose(curve.get_ydata(), white, rtol=1e-12)
    np.testing.assert_allclose(first.get_lines()[0].get_xdata(), counted, rtol=1e-12)


def test_model_comparison_has_every_model(
    data: tuple[pd.DataFrame, pd.DataFrame], rendered: Rendered
) -> None:
    metrics, _ = data
    record = _record(rendered("model_comparison")[0])
    assert record["models"] == sorted([MODEL, OTHER_MODEL])
    assert record["band_px"] == [BAND_PX]
    sweep = metrics[metrics["experiment"] == "strength_sweep"]
    for model in (MODEL, OTHER_MODEL):
        summary = record["per_model"][model]
        rows = sweep[sweep["model"] == model]
        for column in ("mse_outside", "mse_outside_band", "mse_outside_far"):
            assert summary[f"mean_{column}"] == rows[column].mean()
        assert summary["images"] == len(IMAGES) and summary["steps"] == [STEPS]
        assert summary["content_images"] == ["Landscape_0"]
        land = rows[rows["image"] == "Landscape_0"]
        assert summary["mean_mse_outside_flat"] == land["mse_outside_flat"].mean()
    ours, other = record["per_model"][MODEL], record["per_model"][OTHER_MODEL]
    assert ours["mean_mse_outside"] < other["mean_mse_outside"]
    assert ours["mean_mse_outside_band"] > ours["mean_mse_outside_far"]


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_empty_selection_is_an_input_error(
    name: str, data: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    metrics, trends = data
    if name == "model_comparison":
        metrics = metrics.loc[metrics["experiment"] != "strength_sweep"]
        expect = ["strength_sweep"]
    else:
        metrics = metrics.loc[metrics["model"] != MODEL]
        experiment = "mask_size_sweep" if name in ("area_curves", "radius_gallery") else "strength"
        expect = [MODEL, experiment]
    out = tmp_path / "empty.png"
    with pytest.raises(InputError) as caught:
        RENDERERS[name](metrics, trends, out)
    assert all(word in str(caught.value) for word in expect), str(caught.value)
    assert not out.exists()


def test_unknown_image_is_an_input_error(data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    metrics, _ = data
    with pytest.raises(InputError, match="Landscape_99"):
        worst_case(metrics, MODEL, "Landscape_99", "x.png")


@pytest.mark.parametrize("name", ["worst_case", "radius_gallery"])
@pytest.mark.parametrize("column", ["image_path", "mask_path", "inpainted_path"])
def test_missing_png_is_an_input_error_and_leaves_no_file(
    name: str, column: str, data: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    metrics, trends = data
    metrics[column] = metrics[column].str.replace(".png", "_gone.png", regex=False)
    out_dir = tmp_path / "figs"
    out_dir.mkdir()
    out = out_dir / "fig.png"
    with pytest.raises(InputError, match=r"_gone\.png not found"):
        RENDERERS[name](metrics, trends, out)
    assert list(out_dir.iterdir()) == []


def test_size_mismatch_is_an_input_error(
    data: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    metrics, _ = data
    small = np.zeros((16, 20, 3), dtype=np.uint8)
    metrics = metrics.assign(inpainted_path=_save_png(small, "small.png"))
    with pytest.raises(InputError, match="small.png"):
        worst_case(metrics, MODEL, "Landscape_2", tmp_path / "w.png")
    assert not (tmp_path / "w.png").exists()


@pytest.mark.parametrize("name", ["metrics", "trends"])
def test_unreadable_table_is_an_input_error(name: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=f"{name} table .*nope.parquet not found"):
        read_table(tmp_path / "nope.parquet", name)
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match="bad.parquet is not readable Parquet"):
        read_table(tmp_path / "bad.parquet", name)


# ------------------------------------------------------------------ report captions

REPO = Path(__file__).resolve().parents[1]
SMALL_CONFIG = small_config()
THESIS_CONFIG = yaml.safe_load((REPO / "config/thesis.yaml").read_text())


def test_values_are_written_as_a_person_writes_them() -> None:
    assert captions.values_text([20, 40, 60, 80], "k", "%") == "20, 40, 60, 80 %"
    assert (
        captions.values_text({"start": 0, "stop": 1, "num": 6}, "k") == "0, 0.2, 0.4, 0.6, 0.8, 1"
    )
    assert (
        captions.values_text({"start": 0.0, "stop": 1.0, "num": 100}, "k")
        == "0–1 in 100 evenly spaced values"
    )
    assert (
        captions.values_text({"start": 20, "stop": 80, "num": 50}, "k", "%")
        == "20–80 % in 50 evenly spaced values"
    )
    uneven = [0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 1.0]
    assert captions.values_text(uneven, "k") == "9 values from 0–1"
    assert captions.values_text([1 / 3], "k") == "0.3333"


def test_captions_of_the_small_config() -> None:
    plan = Plan(SMALL_CONFIG, "test")
    sweep = captions.strength_sweep(plan)
    assert sweep["strengths"] == "strengths 0, 0.5, 1"
    assert sweep["radii"] == "radius 80 %"
    assert (sweep["seeds"], sweep["over_seeds"], sweep["steps"]) == (
        "seeds 0, 1",
        "mean over seeds 0, 1",
        3,
    )
    assert sweep["fit"] is True
    assert (sweep["n_images"], sweep["n_seeds"]) == (2, 2)
    assert sweep["seed_band"] == (
        "Shaded: the 95 % confidence band of the mean over the 2 seeds"
        " (Student t, 1 degree of freedom)."
    )
    assert sweep["image_band"] == (
        "Shaded: the 95 % confidence band of the mean over the 2 images"
        " (Student t over each image's mean over its seeds, 1 degree of freedom)."
    )
    assert sweep["fit_interval"] == (
        "each coefficient's 95 % bootstrap interval (1000 resamples of the images and,"
        " within each drawn image, its seeds, each refitted as the fit itself)"
    )
    assert sweep["published_fit"] == "9.694x² − 4.105x + 40.000"
    assert (sweep["metrics"], sweep["trends"]) == (
        "results/test/metrics.parquet",
        "results/test/trends.parquet",
    )
    area = captions.mask_size_sweep(plan)
    assert (area["strengths"], area["radii"], area["fit"]) == (
        "strength 0.5",
        "radii 30, 60 %, and 1 other mask (rect-50x50)",
        True,
    )
    gallery = captions.radius_gallery(plan)
    assert (gallery["strength"], gallery["wanted_radii"]) == ("strength 0.5", "radii 30, 60 %")
    assert not gallery["nearest_strength"] and not gallery["nearest_radii"]
    comparison = captions.model_comparison(plan)
    assert (comparison["models"], comparison["band_px"]) == (
        "tiny9, tiny4, tiny4_study, blockmean4",
        8,
    )
    assert comparison["procedural"] is True

    short = yaml.safe_load(yaml.safe_dump(SMALL_CONFIG))
    short["experiments"]["strength_sweep"]["strengths"] = [0.0, 1.0]
    short["experiments"]["mask_size_sweep"]["radius_pct"] = [30]
    plan = Plan(short, "short")
    assert captions.strength_sweep(plan)["fit"] is False
    assert captions.mask_size_sweep(plan)["fit"] is False
    assert captions.radius_gallery(plan)["nearest_radii"] is True  # 60 % is not run


def test_captions_of_the_thesis_config() -> None:
    plan = Plan(THESIS_CONFIG, "thesis")
    sweep = captions.strength_sweep(plan)
    # The study's np.round(np.linspace(0, 1, 100), 2): no longer evenly spaced, and said so.
    assert sweep["strengths"] == "strengths 0–1 in 100 evenly spaced values rounded to 2 decimals"
    assert sweep["metrics"] == "results/thesis/metrics.parquet"
    area = captions.mask_size_sweep(plan)
    assert area["radii"] == "radii 20–80 % in 50 evenly spaced values rounded to 2 decimals"
    assert area["strengths"] == "strengths 0.1, 0.5, 0.9"
    # Fig 4.11's radii 20, 32, 44, 68 % are not among linspace(20, 80, 50) (but 20 is).
    gallery = captions.radius_gallery(plan)
    assert gallery["nearest_radii"] is True and gallery["nearest_strength"] is False


def _caption(name: str, config: dict[str, Any], run: str, **wildcards: str) -> str:
    """A report caption rendered as Snakemake renders it: the template with the rule's
    params (from maskleak.figures.captions), wildcards and config."""
    plan = Plan(config, run)
    params = {
        "strength_grid": captions.strength_sweep,
        "strength_trend": captions.strength_sweep,
        "worst_case": captions.strength_sweep,
        "area_curves": captions.mask_size_sweep,
        "radius_gallery": captions.radius_gallery,
        "model_comparison": captions.model_comparison,
    }[name](plan)
    snakemake = SimpleNamespace(
        params=SimpleNamespace(caption=params),
        wildcards=SimpleNamespace(**wildcards),
        config=config,
    )
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    template = (REPO / f"workflow/report/{name}.rst").read_text()
    return " ".join(env.from_string(template).render(snakemake=snakemake).split())


@pytest.mark.parametrize("name", sorted(RENDERERS))
@pytest.mark.parametrize("which", ["small", "thesis"])
def test_captions_fit_their_data(name: str, which: str) -> None:
    config, run = (SMALL_CONFIG, "test") if which == "small" else (THESIS_CONFIG, "thesis")
    text = _caption(name, config, run, model="tiny9", image="land")
    assert not re.search(r"[{}\[\]]|'start'|': ", text), text  # no Python reprs
    assert f"results/{run}/" in text and "results/metrics" not in text
    if name in ("strength_grid", "area_curves", "radius_gallery"):
        assert "of half the shorter side" in text and "r = floor(p/100 · min(w, h)/2)" in text
    if name == "radius_gallery":
        assert ("nearest available" in text) == (which == "thesis")
    if which == "thesis" and name == "strength_grid":
        assert "strengths 0–1 in 100 evenly spaced values rounded to 2 decimals" in text
        assert "mask radius 80 % of half the shorter side" in text


def test_captions_say_when_there_is_no_fit() -> None:
    short = yaml.safe_load(yaml.safe_dump(SMALL_CONFIG))
    short["experiments"]["strength_sweep"]["strengths"] = [0.0, 1.0]
    short["experiments"]["mask_size_sweep"]["radius_pct"] = [30]
    text = _caption("strength_trend", short, "short", model="tiny9")
    assert "No fit is drawn: the sweep has only 2 strengths, and a 2nd-degree fit needs 3" in (
        text.replace("**", "")
    )
    assert "Red:" not in text
    assert "No linear fit is drawn" in _caption("area_curves", short, "short", model="tiny9")
    assert "No fit" not in _caption("strength_trend", SMALL_CONFIG, "test", model="tiny9")


# ------------------------------------------------------------------ a real workflow run


@pytest.mark.slow
def test_a_strength_sweep_of_two_strengths_runs_to_the_end(tmp_path: Path) -> None:
    """.test/config.yaml with strengths [0.0, 1.0]: every rule runs, the trend figure is
    drawn without a fit and says why, and so does its report caption."""
    for name in ("Snakefile", "workflow"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name)
        else:
            shutil.copy(source, tmp_path / name)
    config = yaml.safe_load(yaml.safe_dump(SMALL_CONFIG))
    config["experiments"]["strength_sweep"]["strengths"] = [0.0, 1.0]
    (tmp_path / "two-strengths.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}

    def snakemake(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "snakemake", "--configfile", "two-strengths.yaml"]
        return subprocess.run(
            [*command, "--cores", "2", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )

    run = snakemake()
    assert run.returncode == 0, run.stderr[-4000:]
    results = tmp_path / "results/two-strengths"
    trends = pd.read_parquet(results / "trends.parquet")
    mean = trends[(trends["scope"] == "mean") & (trends["experiment"] == "strength_sweep")]
    models = list(config["models"])  # tiny9, tiny4, tiny4_study
    assert len(mean) == len(models) * 2 and mean["c2"].isna().all()
    assert mean["reason"].str.contains("a degree-2 fit needs 3").all()
    for model in models:
        record = _record(results / f"figures/{model}/strength_trend.png")
        assert record["fits"] == {} and set(record["fits_missing"]) == {
            "mse_outside",
            "mse_outside_thesis",
        }

    report = snakemake("--report", "report.html")
    assert report.returncode == 0, report.stderr[-4000:]
    html = re.sub(r"<[^>]+>", "", (tmp_path / "report.html").read_text())
    assert html.count("No fit is drawn: the sweep has only 2 strengths") == len(models)
    assert "results/two-strengths/trends.parquet" in html


def test_captions_say_what_the_band_is() -> None:
    config = yaml.safe_load(yaml.safe_dump(SMALL_CONFIG))
    config["experiments"]["strength_sweep"]["seeds"] = [0, 1, 2]
    text = _caption("strength_grid", config, "seeds", model="tiny9")
    assert "strengths 0, 0.5, 1, mean over seeds 0, 1, 2, 3 inference steps" in text
    band = "Shaded: the 95 % confidence band of the mean over the 3 seeds (Student t, 2 degrees"
    assert band in text
    # The small config's mask-size sweep has one seed: no band, and the caption says so.
    area = _caption("area_curves", config, "seeds", model="tiny9")
    assert "No confidence band is drawn: each setting ran one seed." in area
    assert "Shaded" not in area and "bootstrap" not in area
    # Averages over images: the band is over the images, with their number.
    trend = _caption("strength_trend", config, "seeds", model="tiny9")
    assert "Mean outside-mask MSE over the 2 images" in trend
    assert "confidence band of the mean over the 2 images (Student t over each image's" in trend
    assert "1000 resamples of the images and, within each drawn image, its seeds" in trend
    assert "±1" not in trend and "std" not in trend
    comparison = _caption("model_comparison", config, "seeds")
    assert "confidence band of the mean over the 2 images" in comparison
    # One image: nothing to shade, and the fit's interval is over the seeds alone.
    one = yaml.safe_load(yaml.safe_dump(config))
    one["images"] = {"land": one["images"]["land"]}
    one["figures"]["worst_case_images"] = ["land"]
    trend = _caption("strength_trend", one, "one", model="tiny9")
    assert "No confidence band is drawn: the run has one image." in trend
    assert "(1000 resamples of the seeds, each refitted as the fit itself)" in trend


def test_captions_of_the_published_fit() -> None:
    """Fig 4.3's caption names the study's published fit and what it was measured on,
    also where this run has too few strengths for its own fit."""
    for config in (SMALL_CONFIG, THESIS_CONFIG):
        text = _caption("strength_trend", config, "run", model="tiny9")
        assert "the study's published fit, y = 9.694x² − 4.105x + 40.000" in text
        assert "SD 1.5 at 640×416 px and 200 steps" in text
        assert "a reference, not an expectation" in text
    thesis = _caption("strength_trend", THESIS_CONFIG, "thesis", model="tiny9")
    assert "over the 20 images" in thesis and "(1000 resamples of the images," in thesis
