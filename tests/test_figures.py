"""The figures: real PNG inputs and outputs in a temporary directory, no mocks."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from maskleak import figures
from maskleak.errors import InputError
from maskleak.masks import area_frac, circle_mask, inpaint_region
from maskleak.provenance import META_KEY

MODEL = "sd15-test"
OTHER_MODEL = "sd-inpaint-test"
IMAGES = ["Landscape_10", "Landscape_2", "Landscape_0"]  # natural order: 0, 2, 10
W, H = 40, 32
STRENGTHS = [0.0, 0.25, 0.5, 0.75, 1.0]
AREA_STRENGTHS = [0.1, 0.5, 0.9]
RADII = [20.0, 35.0, 50.0, 65.0, 80.0]
SEEDS = [0, 1]
STEPS = 20


def _save_png(pixels: np.ndarray, rel: str) -> str:
    Path(rel).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(rel)
    return rel


def _original(k: int) -> np.ndarray:
    rng = np.random.default_rng(100 + k)
    return rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)


def _inpainted(original: np.ndarray, region: np.ndarray, strength: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(int(strength * 1000) * 10 + seed)
    noise = rng.normal(0.0, 1.0 + 20.0 * strength, size=original.shape)
    out = np.clip(original.astype(np.float64) + noise, 0, 255).astype(np.uint8)
    out[region] = rng.integers(0, 256, size=(int(region.sum()), 3), dtype=np.uint8)
    return out


def _row(
    experiment: str, model: str, image: str, k: int, radius: float, strength: float, seed: int
) -> dict[str, Any]:
    """One metrics row with its PNGs written (paths relative to the cwd)."""
    mask = circle_mask(W, H, radius)
    region = inpaint_region(mask)
    mask_path = f"masks/{image}_r{radius:g}.png"
    if not Path(mask_path).exists():
        _save_png(np.asarray(mask), mask_path)
    image_path = f"images/{image}.png"
    original = _original(k)
    if not Path(image_path).exists():
        _save_png(original, image_path)
    inpainted_path = f"inpainted/{model}/{experiment}/{image}_r{radius:g}_s{strength:g}_{seed}.png"
    _save_png(_inpainted(original, region, strength, seed), inpainted_path)
    steps_run = round(strength * STEPS)
    base = 5.0 + 3.0 * k + 40.0 * strength**2 + 0.5 * seed + 2.0 * radius / 100
    if model == OTHER_MODEL:  # far higher: picking it up would change every choice
        base += 1000.0
    return {
        "experiment": experiment,
        "model": model,
        "image": image,
        "radius_pct": float(radius),
        "area_frac": area_frac(mask),
        "strength": float(strength),
        "seed": seed,
        "steps": STEPS,
        "steps_run": steps_run,
        "mode": "vae_roundtrip" if steps_run == 0 else "denoise",
        "width": W,
        "height": H,
        "n_outside": int((~region).sum()),
        "n_inside": int(region.sum()),
        "n_outside_band": 100,
        "band_px": 4,
        "mse_outside": base,
        "mse_outside_thesis": base * 0.6,
        "psnr_outside": 30.0,
        "mae_outside": 2.0,
        "max_abs_outside": 40.0,
        "frac_changed_outside": 0.5,
        "mse_inside": 3000.0,
        "mse_whitedisc_thesis": base * 0.5,
        "mse_outside_band": base * 1.5,
        "mse_outside_far": base * 0.8,
        "image_path": image_path,
        "mask_path": mask_path,
        "inpainted_path": inpainted_path,
    }


def _equation(coefs: np.ndarray) -> str:
    if len(coefs) == 2:
        terms = [f"{coefs[0]:.3f}x", f"{coefs[1]:.3f}"]
    else:
        terms = [f"{coefs[0]:.3f}x²", f"{coefs[1]:.3f}x", f"{coefs[2]:.3f}"]
    return "y = " + " + ".join(terms)


def _fit_row(
    sel: pd.DataFrame, *, scope: str, image: str, strength: float, metric: str, x: str, deg: int
) -> dict[str, Any]:
    pts = sel.groupby(x)[metric].mean()
    xs = pts.index.to_numpy(dtype=float)
    coefs = np.polyfit(xs, pts.to_numpy(), deg)
    pred = np.polyval(coefs, xs)
    ss_res = float(((pts.to_numpy() - pred) ** 2).sum())
    ss_tot = float(((pts.to_numpy() - pts.mean()) ** 2).sum())
    return {
        "experiment": sel["experiment"].iloc[0],
        "model": sel["model"].iloc[0],
        "scope": scope,
        "image": image,
        "strength": strength,
        "metric": metric,
        "x": x,
        "degree": deg,
        "c2": float(coefs[0]) if deg == 2 else float("nan"),
        "c1": float(coefs[-2]),
        "c0": float(coefs[-1]),
        "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0,
        "n_points": len(xs),
        "x_min": float(xs.min()),
        "x_max": float(xs.max()),
        "equation": _equation(coefs),
    }


def _trends(metrics: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for _model, sel in metrics.groupby("model"):
        sweep = sel.loc[sel["experiment"] == "strength_sweep"]
        for metric in ("mse_outside", "mse_outside_thesis"):
            rows.append(
                _fit_row(
                    sweep,
                    scope="mean",
                    image="",
                    strength=float("nan"),
                    metric=metric,
                    x="strength",
                    deg=2,
                )
            )
        area = sel.loc[sel["experiment"] == "mask_size_sweep"]
        for (image, strength), part in area.groupby(["image", "strength"]):
            rows.append(
                _fit_row(
                    part,
                    scope="image",
                    image=str(image),
                    strength=float(strength),
                    metric="mse_outside",
                    x="area_frac",
                    deg=1,
                )
            )
    return pd.DataFrame(rows)


def _metrics(models: tuple[str, ...] = (MODEL, OTHER_MODEL)) -> pd.DataFrame:
    rows = []
    for model in models:
        for k, image in enumerate(IMAGES):
            for s in STRENGTHS:
                for seed in SEEDS:
                    rows.append(_row("strength_sweep", model, image, k, 80.0, s, seed))
            for r in RADII:
                for s in AREA_STRENGTHS:
                    for seed in SEEDS:
                        rows.append(_row("mask_size_sweep", model, image, k, r, s, seed))
    return pd.DataFrame(rows)


Data = tuple[Path, pd.DataFrame, pd.DataFrame]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Data:
    """Metrics and trends for two models with their PNGs, built once per module."""
    root = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        metrics = _metrics()
    return root, metrics, _trends(metrics)


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


Render = Callable[[pd.DataFrame, pd.DataFrame, Path], None]

RENDERERS: dict[str, Render] = {
    "strength_grid": lambda m, t, p: figures.strength_grid(m, MODEL, p),
    "strength_trend": lambda m, t, p: figures.strength_trend(m, t, MODEL, p),
    "worst_case": lambda m, t, p: figures.worst_case(m, MODEL, "Landscape_2", p),
    "area_curves": lambda m, t, p: figures.area_curves(m, t, MODEL, p),
    "radius_gallery": lambda m, t, p: figures.radius_gallery(
        m, MODEL, "Landscape_0", 0.5, [20, 44, 68], p
    ),
    "model_comparison": lambda m, t, p: figures.model_comparison(m, p),
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


# --------------------------------------------------------------------------- tests


def test_squared_error_map_exact_values_without_uint8_wrap() -> None:
    a = np.zeros((2, 2, 3), dtype=np.uint8)
    b = np.zeros((2, 2, 3), dtype=np.uint8)
    a[0, 0] = (16, 16, 16)  # uint8 arithmetic would give 16*16 = 256 -> 0
    b[0, 1] = (255, 0, 0)  # b > a: uint8 a - b would wrap to 1
    a[1, 0] = (10, 20, 30)
    b[1, 0] = (13, 16, 30)
    a_before = a.copy()
    err = figures.squared_error_map(a, b)
    assert err.dtype == np.float64
    assert err.shape == (2, 2)
    expected = np.array([[256.0, 65025.0 / 3], [(9.0 + 16.0) / 3, 0.0]])
    np.testing.assert_array_equal(err, expected)
    np.testing.assert_array_equal(a, a_before)
    # Grey images: just the squared difference.
    grey = figures.squared_error_map(np.array([[0, 200]], np.uint8), np.array([[16, 0]], np.uint8))
    np.testing.assert_array_equal(grey, [[256.0, 40000.0]])


def test_squared_error_map_rejects_shape_mismatch() -> None:
    with pytest.raises(InputError, match="shapes differ"):
        figures.squared_error_map(np.zeros((2, 2, 3)), np.zeros((2, 3, 3)))


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


def test_strength_grid_record(rendered: Rendered) -> None:
    record = _record(rendered("strength_grid")[0])
    assert record["images"] == ["Landscape_0", "Landscape_2", "Landscape_10"]
    assert record["seeds"] == SEEDS
    assert record["steps"] == [STEPS]
    assert record["vae_roundtrip_strengths"] == {image: [0.0] for image in IMAGES}


def test_strength_trend_uses_the_mean_fits(
    data: tuple[pd.DataFrame, pd.DataFrame], rendered: Rendered, tmp_path: Path
) -> None:
    metrics, trends = data
    fits = _record(rendered("strength_trend")[0])["fits"]
    want = trends.loc[
        (trends["model"] == MODEL)
        & (trends["scope"] == "mean")
        & (trends["metric"] == "mse_outside_thesis")
    ]
    assert fits["mse_outside_thesis"]["c2"] == pytest.approx(float(want["c2"].iloc[0]))
    assert fits["mse_outside_thesis"]["equation"] == want["equation"].iloc[0]
    # Without its fit the figure cannot be drawn: say which one is missing.
    no_fit = trends.loc[trends["metric"] != "mse_outside_thesis"]
    with pytest.raises(InputError, match="mse_outside_thesis"):
        figures.strength_trend(metrics, no_fit, MODEL, tmp_path / "trend2.png")
    assert not (tmp_path / "trend2.png").exists()


def test_worst_case_picks_highest_mse_then_lowest_strength_then_seed(
    data: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    metrics, _ = data
    metrics = metrics.copy()
    strength_sweep = metrics["experiment"] == "strength_sweep"
    ours = metrics["model"] == MODEL
    # Higher values in another model / image / experiment must not be picked.
    metrics.loc[~ours, "mse_outside"] = 5000.0
    metrics.loc[ours & (metrics["image"] == "Landscape_0"), "mse_outside"] = 500.0
    metrics.loc[ours & ~strength_sweep, "mse_outside"] = 600.0
    sweep = ours & strength_sweep & (metrics["image"] == "Landscape_2")
    metrics.loc[sweep, "mse_outside"] = 1.0
    tied = sweep & metrics["strength"].isin([0.5, 0.75])
    metrics.loc[tied, "mse_outside"] = 99.0  # four rows tie: (0.5, 0), (0.5, 1), (0.75, ...)
    out = tmp_path / "worst.png"
    figures.worst_case(metrics, MODEL, "Landscape_2", out)
    record = _record(out)
    assert (record["strength"], record["seed"], record["mse_outside"]) == (0.5, 0, 99.0)
    assert record["image"] == "Landscape_2"
    assert (
        record["inpainted_path"] == "inpainted/sd15-test/strength_sweep/Landscape_2_r80_s0.5_0.png"
    )

    # The heatmap's colour scale comes from the pixels outside the mask only.
    with Image.open(record["image_path"]) as a, Image.open(record["inpainted_path"]) as b:
        err = figures.squared_error_map(np.asarray(a), np.asarray(b))
    with Image.open(record["mask_path"]) as m:
        outside = np.asarray(m) == 0
    assert 0 < outside.sum() < outside.size
    want_vmax = np.percentile(err[outside], figures.HEATMAP_PERCENTILE)
    assert record["heatmap_vmax"] == pytest.approx(want_vmax)
    assert record["heatmap_vmax"] < np.percentile(err[~outside], 50)  # inside is far worse

    # Now seed 1 at strength 0.25 is the unique maximum.
    metrics.loc[sweep & (metrics["strength"] == 0.25) & (metrics["seed"] == 1), "mse_outside"] = 1e3
    figures.worst_case(metrics, MODEL, "Landscape_2", out)
    record = _record(out)
    assert (record["strength"], record["seed"]) == (0.25, 1)
    assert record["inpainted_path"].endswith("Landscape_2_r80_s0.25_1.png")


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
    figures.radius_gallery(metrics, MODEL, "Landscape_2", 0.62, [21, 42.5, 30, 44, 68, 79], out)
    record = _record(out)
    assert record["strength_requested"] == 0.62
    assert record["strength"] == 0.5
    assert record["radii_requested"] == [21.0, 42.5, 30.0, 44.0, 68.0, 79.0]
    assert record["radii"] == [20.0, 35.0, 50.0, 65.0, 80.0]
    assert record["seeds"] == [0, 1, 0, 0, 0]
    assert record["inpainted_paths"][1].endswith("Landscape_2_r35_s0.5_1.png")
    with Image.open(out) as img:
        assert img.size[1] > img.size[0]  # five rows of two panels: taller than wide
    with pytest.raises(InputError, match="radius"):
        figures.radius_gallery(metrics, MODEL, "Landscape_2", 0.5, [], tmp_path / "g2.png")


def test_area_curves_draws_each_fit_and_lists_missing_ones(
    data: tuple[pd.DataFrame, pd.DataFrame], rendered: Rendered, tmp_path: Path
) -> None:
    metrics, trends = data
    record = _record(rendered("area_curves")[0])
    assert record["images"] == ["Landscape_0", "Landscape_2", "Landscape_10"]
    assert record["strengths"] == AREA_STRENGTHS
    assert len(record["fits"]) == len(IMAGES) * len(AREA_STRENGTHS)
    assert record["fits_missing"] == []
    fewer = trends.loc[~((trends["image"] == "Landscape_10") & (trends["strength"] == 0.9))]
    out = tmp_path / "area.png"
    figures.area_curves(metrics, fewer, MODEL, out)
    assert _record(out)["fits_missing"] == [{"image": "Landscape_10", "strength": 0.9}]


def test_model_comparison_has_every_model(rendered: Rendered) -> None:
    record = _record(rendered("model_comparison")[0])
    assert record["models"] == sorted([MODEL, OTHER_MODEL])
    assert record["band_px"] == [4]
    ours, other = record["per_model"][MODEL], record["per_model"][OTHER_MODEL]
    assert ours["mean_mse_outside"] < 100 < 1000 < other["mean_mse_outside"]
    assert ours["mean_mse_outside_band"] > ours["mean_mse_outside_far"]
    assert ours["images"] == other["images"] == len(IMAGES)


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
        figures.worst_case(metrics, MODEL, "Landscape_99", "x.png")


@pytest.mark.parametrize("name", ["worst_case", "radius_gallery"])
@pytest.mark.parametrize("column", ["image_path", "mask_path", "inpainted_path"])
def test_missing_png_is_an_input_error_and_leaves_no_file(
    name: str, column: str, data: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    metrics, trends = data
    metrics = metrics.copy()
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
    small = np.zeros((H // 2, W // 2, 3), dtype=np.uint8)
    metrics = metrics.assign(inpainted_path=_save_png(small, "small.png"))
    with pytest.raises(InputError, match="small.png"):
        figures.worst_case(metrics, MODEL, "Landscape_2", tmp_path / "w.png")
    assert not (tmp_path / "w.png").exists()
