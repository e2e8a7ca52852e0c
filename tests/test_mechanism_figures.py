"""The "Why it leaks" figures, drawn from small metrics and profile tables whose values are
known (tests/mechanism_tables.py): each renders a PNG with its record, shows the values
computed here by hand, and refuses a table without a column it needs, naming it; and
their report captions render from the plan."""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jinja2
import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.figure import Figure
from PIL import Image
from scipy import stats

from maskleak.config import Plan
from maskleak.errors import InputError
from maskleak.figures.attribution import attribution
from maskleak.figures.colour_drift import colour_drift
from maskleak.figures.distance_profile import distance_profile
from maskleak.figures.mechanism_common import bin_centre, bin_label
from maskleak.figures.passes import passes
from maskleak.figures.paste_back import paste_back
from maskleak.figures.texture_deciles import texture_deciles
from maskleak.provenance import read_png_record
from maskleak.schema import validate_config
from maskleak.why import captions

sys.path.insert(0, str(Path(__file__).parent))
from mechanism_tables import metrics_table, profile_table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MODEL = "tiny4"


@pytest.fixture(scope="module")
def metrics() -> pd.DataFrame:
    sweep = metrics_table()
    sizes = metrics_table(
        variants={"baseline": {}},
        experiment="mask_size_sweep",
        radii=(20.0, 50.0, 80.0),
        strengths=(0.1, 0.9),
    )
    return pd.concat([sweep, sizes], ignore_index=True)


@pytest.fixture(scope="module")
def profile(metrics: pd.DataFrame) -> pd.DataFrame:
    return profile_table(metrics.loc[metrics["experiment"] == "mechanism_sweep"])


Draw = Callable[[pd.DataFrame, pd.DataFrame, Path], Figure]

#: Figure name -> how to draw it from (metrics, profile), and a column it cannot do
#: without, with the table that must have it.
FIGURES: dict[str, tuple[Draw, str, str]] = {
    "attribution": (
        lambda m, p, out: attribution(m, MODEL, out),
        "metrics",
        "mse_outside_part_footprint",
    ),
    "distance_profile": (lambda m, p, out: distance_profile(p, MODEL, out), "profile", "mse_vae"),
    "texture_deciles": (
        lambda m, p, out: texture_deciles(p, m, MODEL, out),
        "metrics",
        "texture_spearman",
    ),
    "passes": (lambda m, p, out: passes(m, MODEL, out), "metrics", "mse_outside_vae"),
    "paste_back": (lambda m, p, out: paste_back(m, MODEL, out), "metrics", "seam_step_excess"),
    "colour_drift": (lambda m, p, out: colour_drift(m, MODEL, out), "metrics", "delta_e_outside"),
}


def _image_mean(rows: pd.DataFrame, column: str) -> float:
    """Each image's mean over its rows, then the mean over images."""
    return float(rows.groupby("image")[column].mean().mean())


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_each_figure_renders_a_png_with_its_record(
    name: str, metrics: pd.DataFrame, profile: pd.DataFrame, tmp_path: Path
) -> None:
    draw = FIGURES[name][0]
    out = tmp_path / f"{name}.png"
    draw(metrics, profile, out)
    with Image.open(out) as img:
        assert img.format == "PNG"
        width, height = img.size
    assert width >= 600 and height >= 400
    record = read_png_record(out)
    assert record is not None and record["figure"] == name and record["model"] == MODEL
    again = tmp_path / f"{name}_again.png"
    draw(metrics, profile, again)
    assert again.read_bytes() == out.read_bytes()


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_each_figure_names_a_missing_column(
    name: str, metrics: pd.DataFrame, profile: pd.DataFrame, tmp_path: Path
) -> None:
    draw, table, column = FIGURES[name]
    tables = {"metrics": metrics, "profile": profile}
    tables[table] = tables[table].drop(columns=column)
    with pytest.raises(InputError, match=rf"{table} table lacks column\(s\) \['{column}'\]"):
        draw(tables["metrics"], tables["profile"], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_a_model_without_mechanism_rows_is_refused(metrics: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no rows for experiment 'mechanism_sweep', model 'nope'"):
        attribution(metrics, "nope", tmp_path / "x.png")


def test_attribution_stacks_the_parts_computed_by_hand(
    metrics: pd.DataFrame, tmp_path: Path
) -> None:
    fig = attribution(metrics, MODEL, tmp_path / "a.png")
    record = read_png_record(tmp_path / "a.png")
    assert record is not None
    sweep = metrics.loc[(metrics["experiment"] == "mechanism_sweep") & (metrics["pass"] == 1)]
    base = sweep.loc[(sweep["variant"] == "baseline") & (sweep["strength"] == 0.25)]
    floor = _image_mean(base, "mse_outside_part_vae")
    footprint = _image_mean(base, "mse_outside_part_footprint")
    whole = _image_mean(base, "mse_outside")
    bar = record["variants"]["baseline"]["0.25"]
    assert bar["vae_floor"]["mean"] == pytest.approx(floor)
    assert bar["latent_footprint"]["level"]["mean"] == pytest.approx(floor + footprint)
    assert bar["beyond_footprint"]["level"]["mean"] == pytest.approx(whole)
    assert bar["mse_outside"]["mean"] == pytest.approx(whole)
    # Hard paste-back: the floor up from 0, the negative parts down to minus it, the
    # whole at exactly 0.
    hard = record["variants"]["paste_hard"]["0.75"]
    assert hard["mse_outside"]["mean"] == 0.0
    assert hard["beyond_footprint"]["level"]["mean"] == pytest.approx(-hard["vae_floor"]["mean"])
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles[:2] == ["baseline", "mask_cover (latent_mask=cover)"]
    assert "final_paste_on (no change here)" in titles


def test_distance_profile_plots_bin_centres_and_leaves_out_empty_bins(
    metrics: pd.DataFrame, profile: pd.DataFrame, tmp_path: Path
) -> None:
    fig = distance_profile(profile, MODEL, tmp_path / "d.png")
    ax = fig.axes[0]  # strength 0.25
    assert ax.get_title() == "strength 0.25" and ax.get_xscale() == "log"
    baseline = ax.get_lines()[0]
    xs = baseline.get_xdata()
    np.testing.assert_allclose(
        xs, [2, math.sqrt(32), math.sqrt(128), math.sqrt(512), math.sqrt(2048), math.sqrt(8192)]
    )
    rows = metrics.loc[
        (metrics["experiment"] == "mechanism_sweep")
        & (metrics["variant"] == "baseline")
        & (metrics["pass"] == 1)
        & (metrics["strength"] == 0.25)
    ]
    level = _image_mean(rows, "mse_outside")
    np.testing.assert_allclose(baseline.get_ydata(), [level / (b + 1) for b in range(6)])
    assert [t.get_text() for t in ax.get_xticklabels()][-1] == "> 128"
    assert bin_centre(128.0, math.inf) == 256.0 and bin_centre(0.0, 4.0) == 2.0
    assert bin_label(0.0, 4.0) == "0–4"


def test_texture_deciles_give_each_images_spearman(
    metrics: pd.DataFrame, profile: pd.DataFrame, tmp_path: Path
) -> None:
    fig = texture_deciles(profile, metrics, MODEL, tmp_path / "t.png")
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:3] == ["im0: ρ = 0.5", "im1: ρ = 0.6", "im2: ρ = 0.7"]
    im0 = ax.get_lines()[0]
    assert list(im0.get_xdata()) == list(range(1, 11))
    rows = metrics.loc[
        (metrics["experiment"] == "mechanism_sweep")
        & (metrics["variant"] == "baseline")
        & (metrics["pass"] == 1)
        & (metrics["strength"] == 0.25)
        & (metrics["image"] == "im0")
    ]
    level = float(rows["mse_outside"].mean())
    np.testing.assert_allclose(im0.get_ydata(), [level * d / 5 for d in range(1, 11)])


def test_passes_needs_a_variant_with_several_passes(metrics: pd.DataFrame, tmp_path: Path) -> None:
    fig = passes(metrics, MODEL, tmp_path / "p.png")
    assert [ax.get_title() for ax in fig.axes][0] == "variant passes_3"
    line = fig.axes[0].get_lines()[0]  # strength 0.25
    assert list(line.get_xdata()) == [1.0, 2.0, 3.0]
    rows = metrics.loc[(metrics["variant"] == "passes_3") & (metrics["strength"] == 0.25)]
    expected = [_image_mean(rows.loc[rows["pass"] == k], "mse_outside") for k in (1, 2, 3)]
    np.testing.assert_allclose(line.get_ydata(), expected)
    single = metrics.loc[metrics["variant"] != "passes_3"]
    with pytest.raises(InputError, match="no variant of model 'tiny4' with several passes"):
        passes(single, MODEL, tmp_path / "none.png")


def test_paste_back_gain_and_seam_cost_by_hand(metrics: pd.DataFrame, tmp_path: Path) -> None:
    paste_back(metrics, MODEL, tmp_path / "pb.png")
    record = read_png_record(tmp_path / "pb.png")
    assert record is not None
    hard = record["variants"]["paste_hard"]
    assert hard["label"] == "paste_hard: hard"
    assert record["variants"]["paste_soft"]["label"] == "paste_soft: soft, blur 4 px"
    base = metrics.loc[
        (metrics["experiment"] == "mechanism_sweep")
        & (metrics["variant"] == "baseline")
        & (metrics["strength"] == 0.75)
    ]
    # Hard paste-back removes everything: its gain is the baseline's whole error.
    assert hard["gain"]["mean"][1] == pytest.approx(_image_mean(base, "mse_outside"))
    # Its seam cost: hard paste-back adds 6 + the image index (0, 1, 2) to the baseline's
    # seam_step_excess: 7 on average at each strength, with a t-interval over the three
    # images' 6, 7, 8 (mean 7, sd 1): 7 ± t(0.975, 2) / sqrt(3).
    assert hard["seam_cost"]["mean"] == pytest.approx([7.0, 7.0], abs=1e-12)
    assert hard["seam_cost"]["n"] == [3, 3]
    half = stats.t.ppf(0.975, 2) / math.sqrt(3)
    assert hard["seam_cost"]["low"] == pytest.approx([7.0 - half] * 2, rel=1e-9)
    assert hard["seam_cost"]["high"] == pytest.approx([7.0 + half] * 2, rel=1e-9)
    # Soft paste-back: 1.5 sharper for every image (a zero-width interval), although its
    # error inside the edge fell (mse_seam_inside 1 lower than the baseline's).
    soft = record["variants"]["paste_soft"]["seam_cost"]
    for key in ("mean", "low", "high"):
        assert soft[key] == pytest.approx([1.5, 1.5], abs=1e-12), key
    assert len(record["variants"]) == 2
    no_paste = metrics.loc[~metrics["variant"].isin(["paste_hard", "paste_soft"])]
    with pytest.raises(InputError, match="no paste-back variant of model 'tiny4'"):
        paste_back(no_paste, MODEL, tmp_path / "none.png")


def test_colour_drift_reads_both_sweeps_when_there_are_both(
    metrics: pd.DataFrame, tmp_path: Path
) -> None:
    colour_drift(metrics, MODEL, tmp_path / "c.png")
    record = read_png_record(tmp_path / "c.png")
    assert record is not None
    assert record["experiments"] == ["mask_size_sweep", "mechanism_sweep"]
    curve = record["curves"]["mask_size_sweep/0.9/delta_e_outside"]
    areas = [math.pi * (r / 200) ** 2 for r in (20.0, 50.0, 80.0)]
    np.testing.assert_allclose(curve["area_frac"], areas)
    np.testing.assert_allclose(curve["mean"], [a * 1.9 for a in areas])
    point = record["curves"]["mechanism_sweep/0.25/shift_r_outside"]
    assert point["mean"] == [pytest.approx(0.125)]
    colour_drift(metrics.loc[metrics["experiment"] == "mechanism_sweep"], MODEL, tmp_path / "1.png")
    only = read_png_record(tmp_path / "1.png")
    assert only is not None and only["experiments"] == ["mechanism_sweep"]


# ------------------------------------------------------------------ captions


def _config() -> dict[str, Any]:
    config = yaml.safe_load((REPO / ".test/config.yaml").read_text())
    validate_config(config)
    return config


def _render(name: str, caption: dict[str, Any], **extra: Any) -> str:
    """A report caption as Snakemake renders it (Jinja, trim_blocks and lstrip_blocks,
    strict), then docutils, which must not warn."""
    from docutils.core import publish_parts

    snakemake = SimpleNamespace(
        params=SimpleNamespace(caption=caption), wildcards=SimpleNamespace(model=MODEL)
    )
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    template = (REPO / f"workflow/report/{name}.rst").read_text()
    rst = env.from_string(template).render(snakemake=snakemake, files=extra.get("files", []))
    return publish_parts(rst, writer="html", settings_overrides={"halt_level": 2})["body"]


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figure_captions_render_from_the_plan(name: str) -> None:
    plan = Plan(_config(), "test")
    body = _render(name, captions.figure(plan, MODEL))
    text = " ".join(re.sub(r"<[^>]+>", " ", body).split())
    assert not re.search(r"[{}\[\]]|': ", text), text  # no Python reprs
    assert "strengths 0.5, 1" in text and "tiny4" in text
    if name in ("attribution", "distance_profile"):
        assert "mask_cover (latent_mask=cover)" in text
        assert "final_paste_on (nothing: the pipeline as it ships)" in text
    if name == "paste_back":
        assert "paste_soft (paste_back=soft, paste_blur_px=4)" in text and "8 px" in text
    if name == "colour_drift":
        assert "the mask-size sweep's (lines with circles: radii 30, 60 %" in text


def test_why_caption_links_the_mechanism_figures() -> None:
    plan = Plan(_config(), "test")
    paths = [p for _, p in captions.figure_paths(plan)["tiny4"]]
    files = [SimpleNamespace(path=Path(p)) for p in [*paths, "results/test/figures/x.png"]]
    body = _render("why", captions.page(plan), files=files)
    assert body.count("showResultInfo") == len(paths) == len(captions.FIGURES)
    assert "tiny4/why/attribution" in body and "figures/x" not in body
    assert "results/test/why.parquet" in body


def test_colour_drift_caption_says_when_the_mask_size_sweep_does_not_run_the_model() -> None:
    config = _config()
    config["experiments"]["mask_size_sweep"]["models"] = ["tiny9"]
    plan = Plan(config, "test")
    text = " ".join(_render("colour_drift", captions.figure(plan, MODEL)).split())
    assert "the mask-size sweep does not run this model" in text
    assert "lines with circles" not in text
