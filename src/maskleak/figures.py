"""The thesis' figures (4.2-4.11) and one beyond it, drawn from the metrics and trends
tables.

Every figure is written atomically as a PNG at 150 dpi with a ``maskleak`` text chunk
holding its parameters, what it picked (rows, strengths, radii, fits) and the package
versions. Matplotlib is used through :class:`matplotlib.figure.Figure` and the Agg
canvas only (no pyplot global state), and the PNG carries no "Software" or date entry,
so rerunning a figure gives byte-identical files.

Units: all MSE values are per element (mean over pixels and RGB channels) of 8-bit
pixel levels, i.e. (8-bit level)².
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from maskleak.errors import InputError
from maskleak.images import read_pixels
from maskleak.masks import inpaint_region
from maskleak.provenance import META_KEY, atomic_path, canonical_json, versions
from maskleak.trends import per_image_mean

__all__ = [
    "area_curves",
    "model_comparison",
    "radius_gallery",
    "squared_error_map",
    "strength_grid",
    "strength_trend",
    "worst_case",
]

DPI = 150
STRENGTH_SWEEP = "strength_sweep"
MASK_SIZE_SWEEP = "mask_size_sweep"

# Axis labels (with units) shared by the figures.
STRENGTH_LABEL = "strength (fraction of schedule)"
AREA_LABEL = "disc area / image area"
MSE_LABEL = "outside-mask MSE ((8-bit level)²)"
THESIS_MSE_LABEL = "thesis uint8 MSE ((8-bit level)², wraps mod 256)"
SQERR_LABEL = "squared error, mean over RGB ((8-bit level)²)"

#: Percentile of the outside-mask squared errors at which heatmap colour scales end
#: (a few extreme pixels would otherwise wash out the rest).
HEATMAP_PERCENTILE = 99.5

_HEATMAP_CMAP = colormaps["magma"].with_extremes(bad="0.82")
_OUTLINE_COLOUR = "cyan"


# --------------------------------------------------------------------------- helpers


def squared_error_map(original: np.ndarray, inpainted: np.ndarray) -> np.ndarray:
    """Per-pixel squared error, float64 (H, W): the mean over channels of ``(a - b)²``.

    Computed in float64, so a difference of 16 counts as 256 (the thesis' uint8
    arithmetic wrapped it to 0). Accepts (H, W) or (H, W, C) arrays of equal shape."""
    a = np.asarray(original)
    b = np.asarray(inpainted)
    if a.shape != b.shape:
        raise InputError(f"image shapes differ: original {a.shape} vs inpainted {b.shape}")
    if a.ndim not in (2, 3):
        raise InputError(f"expected an (H, W) or (H, W, C) image, got shape {a.shape}")
    diff = a.astype(np.float64) - b.astype(np.float64)
    sq = diff * diff
    return sq.mean(axis=2) if sq.ndim == 3 else sq


def _natural_key(name: str) -> list[Any]:
    """Sort key that puts ``Landscape_2`` before ``Landscape_10``."""
    return [int(tok) if tok.isdigit() else tok for tok in re.split(r"(\d+)", str(name))]


def _sorted_names(values: Any) -> list[str]:
    return sorted((str(v) for v in pd.unique(values)), key=_natural_key)


def _jsonable(obj: Any) -> Any:
    """Plain-Python copy of ``obj`` for canonical_json (numpy scalars, NaN -> None)."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


def _require_columns(table: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"{name} table lacks column(s) {missing}")


def _select(
    metrics: pd.DataFrame,
    experiment: str,
    model: str | None,
    columns: Sequence[str],
    image: str | None = None,
) -> pd.DataFrame:
    """Rows of ``metrics`` for one experiment (and model, image); InputError if none."""
    _require_columns(metrics, ["experiment", "model", *columns], "metrics")
    keep = metrics["experiment"] == experiment
    what = f"experiment {experiment!r}"
    if model is not None:
        keep &= metrics["model"] == model
        what += f", model {model!r}"
    if image is not None:
        _require_columns(metrics, ["image"], "metrics")
        keep &= metrics["image"].astype(str) == str(image)
        what += f", image {image!r}"
    sel = metrics.loc[keep]
    if sel.empty:
        raise InputError(f"metrics has no rows for {what}")
    return sel.reset_index(drop=True)


def _steps_text(sel: pd.DataFrame) -> str:
    steps = sorted(int(s) for s in pd.unique(sel["steps"]))
    return "/".join(str(s) for s in steps) + " steps"


def _seeds(sel: pd.DataFrame) -> list[int]:
    return sorted(int(s) for s in pd.unique(sel["seed"]))


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike[str], record: Mapping[str, Any]) -> None:
    """Write ``fig`` atomically as a deterministic PNG with ``record`` + versions."""
    text = canonical_json(_jsonable({**record, "versions": versions()}))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None, META_KEY: text})


def _load_rgb(path: str) -> np.ndarray:
    return read_pixels(path, "RGB")


def _load_mask(path: str) -> np.ndarray:
    return inpaint_region(read_pixels(path, "L", "mask"))


def _load_triplet(row: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(original RGB, inpainted RGB, inpaint-region bool) for one metrics row."""
    original = _load_rgb(str(row["image_path"]))
    inpainted = _load_rgb(str(row["inpainted_path"]))
    region = _load_mask(str(row["mask_path"]))
    if original.shape != inpainted.shape:
        raise InputError(
            f"size mismatch: {row['image_path']!r} is {original.shape[1]}x{original.shape[0]}"
            f" but {row['inpainted_path']!r} is {inpainted.shape[1]}x{inpainted.shape[0]}"
        )
    if region.shape != original.shape[:2]:
        raise InputError(
            f"size mismatch: mask {row['mask_path']!r} is {region.shape[1]}x{region.shape[0]}"
            f" but {row['image_path']!r} is {original.shape[1]}x{original.shape[0]}"
        )
    return original, inpainted, region


def _heat_vmax(errors: Sequence[np.ndarray], regions: Sequence[np.ndarray]) -> float:
    """Top of a heatmap colour scale: a high percentile of the outside-mask errors."""
    outside = np.concatenate([e[~r] for e, r in zip(errors, regions, strict=True)])
    if outside.size == 0:
        return 1.0
    vmax = float(np.percentile(outside, HEATMAP_PERCENTILE))
    if vmax <= 0:
        vmax = float(outside.max())
    return vmax if vmax > 0 else 1.0


def _draw_heatmap(ax: Axes, error: np.ndarray, region: np.ndarray, vmax: float) -> Any:
    """Squared-error heatmap outside the mask (inside shown grey), mask outline on top."""
    shown = np.ma.masked_array(error, mask=region)
    im = ax.imshow(shown, cmap=_HEATMAP_CMAP, vmin=0.0, vmax=vmax, interpolation="nearest")
    if region.any() and not region.all():
        ax.contour(region.astype(np.float64), levels=[0.5], colors=_OUTLINE_COLOUR, linewidths=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def _show_image(ax: Axes, pixels: np.ndarray, title: str) -> None:
    ax.imshow(pixels, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def _trend(
    trends: pd.DataFrame,
    *,
    experiment: str,
    model: str,
    scope: str,
    x: str,
    metric: str,
    degree: int,
    image: str = "",
    strength: float | None = None,
) -> pd.Series | None:
    """The one trends row matching the key, or None; InputError if several match."""
    _require_columns(
        trends,
        ["experiment", "model", "scope", "image", "strength", "metric", "x", "degree"],
        "trends",
    )
    keep = (
        (trends["experiment"] == experiment)
        & (trends["model"] == model)
        & (trends["scope"] == scope)
        & (trends["x"] == x)
        & (trends["metric"] == metric)
        & (trends["degree"] == degree)
        & (trends["image"].fillna("").astype(str) == str(image))
    )
    if strength is not None:
        keep &= np.isclose(trends["strength"].astype(float), strength, rtol=0.0, atol=1e-9)
    found = trends.loc[keep]
    if len(found) > 1:
        raise InputError(
            f"trends has {len(found)} rows for experiment {experiment!r}, model {model!r},"
            f" scope {scope!r}, image {image!r}, strength {strength!r}, metric {metric!r},"
            f" x {x!r}, degree {degree}; expected one"
        )
    return None if found.empty else found.iloc[0]


def _trend_curve(fit: pd.Series, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    xs = np.linspace(float(fit["x_min"]), float(fit["x_max"]), n)
    c2 = float(fit["c2"]) if pd.notna(fit["c2"]) else 0.0
    return xs, (c2 * xs + float(fit["c1"])) * xs + float(fit["c0"])


def _fit_record(fit: pd.Series) -> dict[str, Any]:
    keys = ("degree", "c2", "c1", "c0", "r2", "n_points", "x_min", "x_max", "equation")
    return {k: fit[k] for k in keys if k in fit.index}


def _grid_shape(n: int, max_cols: int = 5) -> tuple[int, int]:
    ncols = max(1, min(max_cols, n))
    return math.ceil(n / ncols), ncols


def _grid_axes(fig: Figure, n: int, **kwargs: Any) -> tuple[list[Axes], int, int]:
    """``n`` visible panels on a grid (<= 5 columns); unused cells are hidden."""
    nrows, ncols = _grid_shape(n)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, **kwargs)).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return list(axes[:n]), nrows, ncols


def _label_outer(axes: list[Axes], nrows: int, ncols: int, xlabel: str, ylabel: str) -> None:
    """Axis labels on the left column and on the lowest visible panel of each column."""
    n = len(axes)
    for i, ax in enumerate(axes):
        if i % ncols == 0:
            ax.set_ylabel(ylabel, fontsize=7)
        if i + ncols >= n:
            ax.set_xlabel(xlabel, fontsize=7)
            ax.tick_params(labelbottom=True)
        ax.tick_params(labelsize=7)


def _legend_cols(handles: Sequence[Any], panel_cols: int) -> int:
    """Legend columns for a figure legend under a grid of ``panel_cols`` panels."""
    return max(1, min(len(handles), 2 if panel_cols < 4 else len(handles)))


def _across_images(sel: pd.DataFrame, x: str, column: str) -> pd.DataFrame:
    """Mean over seeds per image, then mean, std (ddof 1; 0 for one image) and count
    across images, indexed by ``x``."""
    per_image = per_image_mean(sel, column, x)
    grouped = per_image.groupby(x, sort=True)[column]
    out = pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=1), "n": grouped.count()})
    out["std"] = out["std"].fillna(0.0)
    return out


# --------------------------------------------------------------------------- figures

_SWEEP_COLUMNS = ["image", "strength", "seed", "steps"]


def strength_grid(metrics: pd.DataFrame, model: str, path: str | os.PathLike[str]) -> None:
    """Thesis Fig 4.2: one panel per image, outside-mask MSE against strength.

    Solid: true MSE (``mse_outside``); dashed: the thesis' uint8 MSE
    (``mse_outside_thesis``); both the mean over seeds, with the min-max range over seeds
    shaded when there is more than one. Strengths run as a plain VAE round trip
    (0 denoising steps) are marked."""
    cols = [*_SWEEP_COLUMNS, "mode", "mse_outside", "mse_outside_thesis"]
    sel = _select(metrics, STRENGTH_SWEEP, model, cols)
    images = _sorted_names(sel["image"])
    seeds = _seeds(sel)
    multi_seed = len(seeds) > 1
    nrows, ncols = _grid_shape(len(images))
    fig = _new_figure(2.7 * ncols + 0.4, 2.1 * nrows + 1.2)
    axes, nrows, ncols = _grid_axes(fig, len(images), sharex=True, sharey=True)
    vae_strengths: dict[str, list[float]] = {}
    for ax, image in zip(axes, images, strict=True):
        rows = sel.loc[sel["image"].astype(str) == image]
        by = rows.groupby("strength", sort=True)
        mean = by[["mse_outside", "mse_outside_thesis"]].mean()
        xs = mean.index.to_numpy(dtype=np.float64)
        if multi_seed:
            lo = by["mse_outside"].min().to_numpy()
            hi = by["mse_outside"].max().to_numpy()
            ax.fill_between(xs, lo, hi, color="C0", alpha=0.2, linewidth=0)
            lo_t = by["mse_outside_thesis"].min().to_numpy()
            hi_t = by["mse_outside_thesis"].max().to_numpy()
            ax.fill_between(xs, lo_t, hi_t, color="C1", alpha=0.15, linewidth=0)
        ax.plot(xs, mean["mse_outside"], "-", color="C0", linewidth=1.2)
        ax.plot(xs, mean["mse_outside_thesis"], "--", color="C1", linewidth=1.0)
        vae = by["mode"].agg(lambda m: bool((m == "vae_roundtrip").any()))
        vae_x = vae.index[vae.to_numpy(dtype=bool)]
        if len(vae_x):
            vm = mean.loc[vae_x]
            for column in ("mse_outside", "mse_outside_thesis"):
                ax.plot(vae_x, vm[column], "D", mfc="none", mec="black", ms=4, mew=0.9)
        vae_strengths[image] = [float(s) for s in vae_x]
        ax.set_title(image, fontsize=8)
        ax.grid(True, linewidth=0.3, alpha=0.5)
    _label_outer(axes, nrows, ncols, STRENGTH_LABEL, MSE_LABEL)
    handles: list[Any] = [
        Line2D([], [], color="C0", linestyle="-", label="true MSE (mse_outside)"),
        Line2D([], [], color="C1", linestyle="--", label="thesis uint8 MSE (mse_outside_thesis)"),
    ]
    if multi_seed:
        handles.append(Patch(color="C0", alpha=0.2, label=f"min–max over {len(seeds)} seeds"))
    if any(vae_strengths.values()):
        handles.append(
            Line2D(
                [],
                [],
                linestyle="none",
                marker="D",
                mfc="none",
                mec="black",
                label="0 denoising steps: VAE round trip",
            )
        )
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=_legend_cols(handles, ncols),
        fontsize=8,
    )
    seed_text = f"mean over {len(seeds)} seeds" if multi_seed else f"seed {seeds[0]}"
    fig.suptitle(
        f"{model}: outside-mask MSE vs strength per image ({_steps_text(sel)}, {seed_text})",
        fontsize=10,
    )
    _save(
        fig,
        path,
        {
            "figure": "strength_grid",
            "thesis_figure": "4.2",
            "experiment": STRENGTH_SWEEP,
            "model": model,
            "images": images,
            "seeds": seeds,
            "steps": sorted(int(s) for s in pd.unique(sel["steps"])),
            "n_rows": len(sel),
            "vae_roundtrip_strengths": vae_strengths,
        },
    )


def strength_trend(
    metrics: pd.DataFrame, trends: pd.DataFrame, model: str, path: str | os.PathLike[str]
) -> None:
    """Thesis Fig 4.3: mean over images (and seeds) against strength, ±1 std across
    images, with the degree-2 fit from ``trends``; true MSE and thesis uint8 MSE."""
    panels = (
        ("mse_outside", MSE_LABEL, "true MSE"),
        ("mse_outside_thesis", THESIS_MSE_LABEL, "thesis uint8 MSE"),
    )
    cols = [*_SWEEP_COLUMNS, *(p[0] for p in panels)]
    sel = _select(metrics, STRENGTH_SWEEP, model, cols)
    fits: dict[str, Any] = {}
    for metric, _, _ in panels:
        fit = _trend(
            trends,
            experiment=STRENGTH_SWEEP,
            model=model,
            scope="mean",
            x="strength",
            metric=metric,
            degree=2,
        )
        if fit is None:
            raise InputError(
                f"trends has no degree-2 fit for experiment {STRENGTH_SWEEP!r},"
                f" model {model!r}, scope 'mean', x 'strength', metric {metric!r}"
            )
        fits[metric] = fit
    images = _sorted_names(sel["image"])
    fig = _new_figure(11.0, 4.4)
    axes = fig.subplots(1, 2)
    for ax, (metric, ylabel, name) in zip(axes, panels, strict=True):
        stats = _across_images(sel, "strength", metric)
        ax.errorbar(
            stats.index.to_numpy(dtype=np.float64),
            stats["mean"],
            yerr=stats["std"],
            fmt="o",
            ms=3,
            color="C0",
            ecolor="0.6",
            elinewidth=0.8,
            capsize=1.5,
            label=f"mean over {len(images)} images, ±1 std across images",
        )
        fit = fits[metric]
        xs, ys = _trend_curve(fit)
        ax.plot(
            xs,
            ys,
            "-",
            color="C3",
            linewidth=1.5,
            label=f"fit: {fit['equation']}  (R² = {float(fit['r2']):.3f})",
        )
        ax.set_xlabel(STRENGTH_LABEL)
        ax.set_ylabel(ylabel)
        ax.set_title(name, fontsize=10)
        ax.grid(True, linewidth=0.3, alpha=0.5)
        ax.legend(fontsize=8, loc="upper left")
    seeds = _seeds(sel)
    fig.suptitle(
        f"{model}: mean outside-mask MSE vs strength ({_steps_text(sel)},"
        f" {len(images)} images, {len(seeds)} seed(s))",
        fontsize=11,
    )
    _save(
        fig,
        path,
        {
            "figure": "strength_trend",
            "thesis_figure": "4.3",
            "experiment": STRENGTH_SWEEP,
            "model": model,
            "images": images,
            "seeds": seeds,
            "steps": sorted(int(s) for s in pd.unique(sel["steps"])),
            "fits": {m: _fit_record(f) for m, f in fits.items()},
        },
    )


def worst_case(metrics: pd.DataFrame, model: str, image: str, path: str | os.PathLike[str]) -> None:
    """Thesis Figs 4.4-4.9: the strength-sweep inpainting of ``image`` with the highest
    ``mse_outside`` (ties: lowest strength, then lowest seed): original, inpainted, and
    the per-pixel squared-error heatmap with the mask outline."""
    cols = [
        *_SWEEP_COLUMNS,
        "steps_run",
        "mode",
        "mse_outside",
        "mse_outside_thesis",
        "image_path",
        "mask_path",
        "inpainted_path",
    ]
    sel = _select(metrics, STRENGTH_SWEEP, model, cols, image=image)
    ranked = sel.sort_values(
        ["mse_outside", "strength", "seed"],
        ascending=[False, True, True],
        na_position="last",
        kind="mergesort",
    )
    row = ranked.iloc[0]
    original, inpainted, region = _load_triplet(row)
    error = squared_error_map(original, inpainted)
    vmax = _heat_vmax([error], [region])
    strength = float(row["strength"])
    h, w = region.shape
    fig = _new_figure(max(10.0, 3 * 3.6 * w / max(h, 1) * 0.9), 4.4)
    axes = fig.subplots(1, 3)
    _show_image(axes[0], original, f"original ({w}×{h} px)")
    _show_image(axes[1], inpainted, f"inpainted (strength {strength:.3f})")
    im = _draw_heatmap(axes[2], error, region, vmax)
    axes[2].set_title("squared error outside mask (inside: grey)", fontsize=9)
    cbar = fig.colorbar(im, ax=axes[2], shrink=0.85, extend="max")
    cbar.set_label(SQERR_LABEL, fontsize=8)
    cbar.ax.tick_params(labelsize=7)
    fig.suptitle(
        f"{model} · {image}: highest outside-mask MSE at strength {strength:.3f},"
        f" seed {int(row['seed'])}, {int(row['steps_run'])}/{int(row['steps'])} steps\n"
        f"mse_outside = {float(row['mse_outside']):.3f}, mse_outside_thesis ="
        f" {float(row['mse_outside_thesis']):.3f}  ((8-bit level)²);"
        f" colour scale ends at the {HEATMAP_PERCENTILE:g}th percentile outside",
        fontsize=10,
    )
    _save(
        fig,
        path,
        {
            "figure": "worst_case",
            "thesis_figure": "4.4-4.9",
            "experiment": STRENGTH_SWEEP,
            "model": model,
            "image": image,
            "strength": strength,
            "seed": int(row["seed"]),
            "steps": int(row["steps"]),
            "steps_run": int(row["steps_run"]),
            "mode": str(row["mode"]),
            "mse_outside": float(row["mse_outside"]),
            "mse_outside_thesis": float(row["mse_outside_thesis"]),
            "image_path": str(row["image_path"]),
            "mask_path": str(row["mask_path"]),
            "inpainted_path": str(row["inpainted_path"]),
            "heatmap_vmax": vmax,
            "heatmap_percentile": HEATMAP_PERCENTILE,
        },
    )


def area_curves(
    metrics: pd.DataFrame, trends: pd.DataFrame, model: str, path: str | os.PathLike[str]
) -> None:
    """Thesis Fig 4.10: per image, outside-mask MSE against disc area / image area, one
    curve per strength (mean over seeds), with the per-image linear fit from ``trends``
    as a thin dashed line (left out, and listed in the record, where trends has none)."""
    cols = [*_SWEEP_COLUMNS, "radius_pct", "area_frac", "mse_outside"]
    sel = _select(metrics, MASK_SIZE_SWEEP, model, cols)
    images = _sorted_names(sel["image"])
    strengths = sorted(float(s) for s in pd.unique(sel["strength"]))
    colours = {s: f"C{i % 10}" for i, s in enumerate(strengths)}
    nrows, ncols = _grid_shape(len(images))
    fig = _new_figure(2.7 * ncols + 0.4, 2.1 * nrows + 1.2)
    axes, nrows, ncols = _grid_axes(fig, len(images), sharex=True, sharey=True)
    drawn: list[dict[str, Any]] = []
    missing: list[dict[str, Any]] = []
    for ax, image in zip(axes, images, strict=True):
        rows = sel.loc[sel["image"].astype(str) == image]
        for s in strengths:
            at = rows.loc[rows["strength"] == s]
            if at.empty:
                continue
            curve = at.groupby("radius_pct", sort=True)[["area_frac", "mse_outside"]].mean()
            curve = curve.sort_values("area_frac", kind="mergesort")
            ax.plot(curve["area_frac"], curve["mse_outside"], "-", color=colours[s], lw=1.1)
            fit = _trend(
                trends,
                experiment=MASK_SIZE_SWEEP,
                model=model,
                scope="image",
                x="area_frac",
                metric="mse_outside",
                degree=1,
                image=image,
                strength=s,
            )
            if fit is None:
                missing.append({"image": image, "strength": s})
                continue
            xs, ys = _trend_curve(fit, n=2)
            ax.plot(xs, ys, "--", color=colours[s], lw=0.7)
            drawn.append({"image": image, "strength": s, **_fit_record(fit)})
        ax.set_title(image, fontsize=8)
        ax.grid(True, linewidth=0.3, alpha=0.5)
    _label_outer(axes, nrows, ncols, AREA_LABEL, MSE_LABEL)
    handles: list[Any] = [
        Line2D([], [], color=colours[s], lw=1.1, label=f"strength {s:g}") for s in strengths
    ]
    if drawn:
        handles.append(Line2D([], [], color="0.3", lw=0.7, ls="--", label="linear fit"))
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=_legend_cols(handles, ncols),
        fontsize=8,
    )
    seeds = _seeds(sel)
    fig.suptitle(
        f"{model}: outside-mask MSE vs disc area per image ({_steps_text(sel)},"
        f" {len(pd.unique(sel['radius_pct']))} radii, mean over {len(seeds)} seed(s))",
        fontsize=10,
    )
    _save(
        fig,
        path,
        {
            "figure": "area_curves",
            "thesis_figure": "4.10",
            "experiment": MASK_SIZE_SWEEP,
            "model": model,
            "images": images,
            "strengths": strengths,
            "seeds": seeds,
            "steps": sorted(int(s) for s in pd.unique(sel["steps"])),
            "fits": drawn,
            "fits_missing": missing,
        },
    )


def _nearest(available: Sequence[float], wanted: float) -> float:
    """The available value nearest to ``wanted``; ties go to the lower one."""
    values = np.sort(np.asarray(available, dtype=np.float64))
    return float(values[int(np.argmin(np.abs(values - float(wanted))))])


def radius_gallery(
    metrics: pd.DataFrame,
    model: str,
    image: str,
    strength: float,
    radii: Sequence[float],
    path: str | os.PathLike[str],
) -> None:
    """Thesis Fig 4.11: ``image`` inpainted at several mask radii, one row per radius:
    the inpainted image and its squared-error heatmap (one colour scale for all rows).

    Uses the mask-size-sweep strength nearest to ``strength`` and, for each requested
    radius percentage, the nearest available ``radius_pct`` (duplicates dropped, request
    order kept), at the lowest seed."""
    if len(radii) == 0:
        raise InputError("radius_gallery needs at least one radius percentage in radii")
    cols = [
        *_SWEEP_COLUMNS,
        "radius_pct",
        "area_frac",
        "mse_outside",
        "image_path",
        "mask_path",
        "inpainted_path",
    ]
    sel = _select(metrics, MASK_SIZE_SWEEP, model, cols, image=image)
    chosen_strength = _nearest(pd.unique(sel["strength"]), strength)
    at = sel.loc[sel["strength"] == chosen_strength]
    chosen_radii: list[float] = []
    for r in radii:
        near = _nearest(pd.unique(at["radius_pct"]), r)
        if near not in chosen_radii:
            chosen_radii.append(near)
    rows = []
    for r in chosen_radii:
        cands = at.loc[at["radius_pct"] == r].sort_values("seed", kind="mergesort")
        rows.append(cands.iloc[0])
    loaded = [_load_triplet(row) for row in rows]
    errors = [squared_error_map(o, i) for o, i, _ in loaded]
    regions = [reg for _, _, reg in loaded]
    vmax = _heat_vmax(errors, regions)
    h, w = regions[0].shape
    panel_h = 2.6
    panel_w = panel_h * w / max(h, 1)
    fig = _new_figure(2 * panel_w + 2.4, panel_h * len(rows) + 1.0)
    axes = fig.subplots(len(rows), 2, squeeze=False)
    im: Any = None
    for k, (row, (_, inpainted, region), error) in enumerate(
        zip(rows, loaded, errors, strict=True)
    ):
        ax_img, ax_err = axes[k]
        # Row label as the titles of both panels (a y-label would be clipped by the
        # fixed-aspect image axes under constrained layout).
        label = (
            f"radius {float(row['radius_pct']):.1f} % (area {float(row['area_frac']):.3f}),"
            f" mse_outside {float(row['mse_outside']):.2f}"
        )
        _show_image(ax_img, inpainted, f"inpainted: {label}")
        im = _draw_heatmap(ax_err, error, region, vmax)
        ax_err.set_title("squared error outside mask (inside: grey)", fontsize=9)
    cbar = fig.colorbar(im, ax=axes[:, 1].tolist(), shrink=0.9, extend="max")
    cbar.set_label(SQERR_LABEL, fontsize=8)
    cbar.ax.tick_params(labelsize=7)
    seeds = [int(row["seed"]) for row in rows]
    fig.suptitle(
        f"{model} · {image}: mask-size sweep at strength {chosen_strength:g}"
        f" ({_steps_text(sel)}, seed {'/'.join(str(s) for s in sorted(set(seeds)))})",
        fontsize=10,
    )
    _save(
        fig,
        path,
        {
            "figure": "radius_gallery",
            "thesis_figure": "4.11",
            "experiment": MASK_SIZE_SWEEP,
            "model": model,
            "image": image,
            "strength_requested": float(strength),
            "strength": chosen_strength,
            "radii_requested": [float(r) for r in radii],
            "radii": chosen_radii,
            "seeds": seeds,
            "steps": sorted(int(s) for s in pd.unique(sel["steps"])),
            "mse_outside": [float(row["mse_outside"]) for row in rows],
            "inpainted_paths": [str(row["inpainted_path"]) for row in rows],
            "heatmap_vmax": vmax,
            "heatmap_percentile": HEATMAP_PERCENTILE,
        },
    )


def model_comparison(metrics: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Beyond the thesis: mean outside-mask MSE against strength for every model; and
    the MSE in the band next to the mask edge (solid) against the rest of the outside
    (dashed), testing the thesis' hypothesis that the edge band changes most."""
    cols = [*_SWEEP_COLUMNS, "band_px", "mse_outside", "mse_outside_band", "mse_outside_far"]
    sel = _select(metrics, STRENGTH_SWEEP, None, cols)
    models = sorted(str(m) for m in pd.unique(sel["model"]))
    band_px = sorted(int(b) for b in pd.unique(sel["band_px"]))
    band_text = "/".join(str(b) for b in band_px)
    # Third panel only where ground-truth region maps exist (procedural landscapes).
    has_content = "mse_outside_flat" in sel and bool(sel["mse_outside_flat"].notna().any())
    fig = _new_figure(17.0 if has_content else 11.5, 4.6)
    axes = fig.subplots(1, 3 if has_content else 2)
    ax_all, ax_band = axes[0], axes[1]
    summary: dict[str, Any] = {}
    for i, model in enumerate(models):
        colour = f"C{i % 10}"
        rows = sel.loc[sel["model"] == model]
        stats = _across_images(rows, "strength", "mse_outside")
        xs = stats.index.to_numpy(dtype=np.float64)
        n_img = len(pd.unique(rows["image"]))
        ax_all.plot(
            xs,
            stats["mean"],
            "-",
            color=colour,
            lw=1.3,
            label=f"{model} ({n_img} images, {_steps_text(rows)})",
        )
        ax_all.fill_between(
            xs,
            stats["mean"] - stats["std"],
            stats["mean"] + stats["std"],
            color=colour,
            alpha=0.12,
            linewidth=0,
        )
        band = _across_images(rows, "strength", "mse_outside_band")
        far = _across_images(rows, "strength", "mse_outside_far")
        ax_band.plot(
            band.index.to_numpy(dtype=np.float64),
            band["mean"],
            "-",
            color=colour,
            lw=1.3,
            label=f"{model}: band ≤ {band_text} px",
        )
        ax_band.plot(
            far.index.to_numpy(dtype=np.float64),
            far["mean"],
            "--",
            color=colour,
            lw=1.1,
            label=f"{model}: farther out",
        )
        if has_content:
            _plot_content_split(axes[2], rows, colour, model, summary)
        summary[model] = {
            **summary.get(model, {}),
            "images": n_img,
            "steps": sorted(int(s) for s in pd.unique(rows["steps"])),
            "mean_mse_outside": float(rows["mse_outside"].mean()),
            "mean_mse_outside_band": float(rows["mse_outside_band"].mean()),
            "mean_mse_outside_far": float(rows["mse_outside_far"].mean()),
        }
    ax_all.set_title("mean over images and seeds (band: ±1 std across images)", fontsize=9)
    ax_band.set_title(f"edge band (≤ {band_text} px from the mask) vs farther out", fontsize=9)
    if has_content:
        axes[2].set_title(
            "flat (sky, water) vs textured (ridges, grass), procedural images", fontsize=9
        )
    for ax in axes:
        ax.set_xlabel(STRENGTH_LABEL)
        ax.set_ylabel(MSE_LABEL)
        ax.grid(True, linewidth=0.3, alpha=0.5)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(
        f"Outside-mask MSE by model, strength sweep ({', '.join(models)}; {_steps_text(sel)})",
        fontsize=10,
    )
    _save(
        fig,
        path,
        {
            "figure": "model_comparison",
            "experiment": STRENGTH_SWEEP,
            "models": models,
            "band_px": band_px,
            "per_model": summary,
        },
    )


def _plot_content_split(
    ax: Axes, rows: pd.DataFrame, colour: str, model: str, summary: dict[str, Any]
) -> None:
    """Outside error on flat vs textured ground truth, for images that have a region map:
    tests the thesis' observation that flat regions barely change."""
    known = rows.loc[rows["mse_outside_flat"].notna() | rows["mse_outside_textured"].notna()]
    for column, style, label in (
        ("mse_outside_flat", "-", "flat"),
        ("mse_outside_textured", "--", "textured"),
    ):
        stats = _across_images(known.loc[known[column].notna()], "strength", column)
        ax.plot(
            stats.index.to_numpy(dtype=np.float64),
            stats["mean"],
            style,
            color=colour,
            lw=1.3,
            label=f"{model}: {label}",
        )
    summary[model] = {
        "content_images": sorted(str(i) for i in pd.unique(known["image"])),
        "mean_mse_outside_flat": float(known["mse_outside_flat"].mean()),
        "mean_mse_outside_textured": float(known["mse_outside_textured"].mean()),
    }


def render(
    kind: str,
    metrics_path: str | os.PathLike[str],
    trends_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    wildcards: Mapping[str, str],
    options: Mapping[str, Any],
) -> None:
    """One figure rule's job: read the two tables, draw figure ``kind``."""
    metrics = pd.read_parquet(metrics_path)
    trends = pd.read_parquet(trends_path)
    model = wildcards.get("model", "")
    if kind == "strength_grid":
        strength_grid(metrics, model, out_path)
    elif kind == "strength_trend":
        strength_trend(metrics, trends, model, out_path)
    elif kind == "worst_case":
        worst_case(metrics, model, wildcards["image"], out_path)
    elif kind == "area_curves":
        area_curves(metrics, trends, model, out_path)
    elif kind == "radius_gallery":
        gallery = options["gallery"]
        radius_gallery(
            metrics, model, gallery["image"], gallery["strength"], gallery["radius_pct"], out_path
        )
    elif kind == "model_comparison":
        model_comparison(metrics, out_path)
    else:
        raise InputError(f"unknown figure kind {kind!r}")
