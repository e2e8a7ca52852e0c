"""Why it leaks (maskleak.why): attribution shares, variant effects and pass growth on
small metrics tables whose every value is known, their bootstrap intervals checked against
the project's reference bootstrap, the why table's schema, and the page."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from maskleak import mechanisms
from maskleak.bootstrap import bootstrap, percentile_interval
from maskleak.config import Plan
from maskleak.errors import InputError
from maskleak.provenance import read_parquet_record, read_table
from maskleak.schema import validate_config
from maskleak.why import captions, labels
from maskleak.why.analysis import why_table
from maskleak.why.columns import COLUMNS, DTYPES, PARTS
from maskleak.why.means import image_means
from maskleak.why.table import write_why
from maskleak.why.variants import changes

sys.path.insert(0, str(Path(__file__).parent))
from mechanism_tables import MECHANISMS, metrics_table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "why.columns.yaml"
N = 200  # bootstrap resamples: enough for intervals to be stable, fast


def _parts(values: dict[tuple[int, int], tuple[float, float, float]]):
    """A parts function from (image, seed) -> parts, the same for every variant."""
    return lambda image, seed, strength, variant, pass_: values[(image, seed)]


#: 2 images x 2 seeds with known parts (vae, footprint, beyond).
KNOWN = {
    (0, 0): (2.0, 1.0, 1.0),
    (0, 1): (2.0, 3.0, 3.0),
    (1, 0): (4.0, 4.0, 0.0),
    (1, 1): (4.0, 8.0, 2.0),
}


def _select(table: pd.DataFrame, **where) -> pd.DataFrame:
    keep = np.ones(len(table), dtype=bool)
    for key, value in where.items():
        if isinstance(value, float) and math.isnan(value):
            keep &= table[key].isna().to_numpy()
        else:
            keep &= (table[key] == value).to_numpy()
    return table.loc[keep]


def _one(table: pd.DataFrame, **where) -> pd.Series:
    rows = _select(table, **where)
    assert len(rows) == 1, rows
    return rows.iloc[0]


# ------------------------------------------------------------------ attribution


def test_shares_are_ratios_of_image_means_computed_by_hand() -> None:
    metrics = metrics_table(
        images=("a", "b"),
        seeds=(0, 1),
        strengths=(0.5,),
        variants={"baseline": {}},
        parts=_parts(KNOWN),
    )
    table = why_table(metrics, n_resamples=N)
    # Image a: vae 2, footprint (1+3)/2 = 2, beyond 2 (total 6); image b: 4, 6, 1 (11).
    # Over images: vae 3, footprint 4, beyond 1.5, total 8.5.
    expected = {"vae_floor": 3 / 8.5, "latent_footprint": 4 / 8.5, "beyond_footprint": 1.5 / 8.5}
    for strength in (0.5, math.nan):  # one strength: the pooled row is the same
        for part, share in expected.items():
            row = _one(table, analysis="attribution", strength=strength, part=part)
            assert row["value"] == pytest.approx(share, abs=1e-15)
            assert row["reference_mean"] == pytest.approx(8.5)
            assert row["compared_mean"] == pytest.approx(share * 8.5)
            assert row["ci_low"] <= row["value"] <= row["ci_high"]
            assert row["ci_low"] >= 0 and row["ci_high"] <= 1
            assert (row["n_images"], row["n_seeds"], row["n_rows"]) == (2, 2, 4)
            assert row["resampled"] == "images, then seeds within each image"
            assert row["unit"] == "fraction of mse_outside"
    shares = _select(table, analysis="attribution", strength=0.5)["value"]
    assert shares.sum() == pytest.approx(1.0, abs=1e-15)


def test_every_image_weighs_the_same_whatever_its_seeds() -> None:
    """Image a has 3 seeds, image b one: a mean over rows would weigh a three times."""
    known = {(0, 0): (1.0, 0.0, 0.0), (0, 1): (1.0, 0.0, 0.0), (0, 2): (1.0, 0.0, 0.0)}
    known[(1, 0)] = (1.0, 3.0, 0.0)
    metrics = metrics_table(
        images=("a", "b"),
        seeds=(0, 1, 2),
        strengths=(0.5,),
        variants={"baseline": {}},
        parts=lambda i, s, *_: known.get((i, s), (np.nan, np.nan, np.nan)),
    )
    metrics = metrics.dropna(subset=["mse_outside"])
    assert len(metrics) == 4
    table = why_table(metrics, n_resamples=N)
    # Image means: a total 1 (all floor), b total 4 (1 floor, 3 footprint); footprint
    # share (0 + 3) / (1 + 4) = 0.6, where a row mean would give 3 / 6 = 0.5.
    row = _one(table, analysis="attribution", strength=0.5, part="latent_footprint")
    assert row["value"] == pytest.approx(0.6, abs=1e-15)


def test_intervals_are_the_reference_bootstrap_of_the_same_statistic() -> None:
    """The vectorised resamples equal maskleak.bootstrap.bootstrap's, resample by
    resample, for the statistic computed the slow way (seeds, then images)."""
    metrics = metrics_table(images=("a", "b", "c"), seeds=(0, 1, 2), strengths=(0.25,))
    rows = metrics.loc[(metrics["variant"] == "baseline")].reset_index(drop=True)
    columns = ["mse_outside", *PARTS.values()]
    means = image_means(rows, columns, n_resamples=50, seed=3)

    def slow(sample: pd.DataFrame) -> np.ndarray:
        per_seed = sample.groupby(["image", "seed"])[columns].mean()
        return per_seed.groupby(level="image").mean().mean().to_numpy()

    reference = bootstrap(rows[["image", "seed", *columns]], slow, n_resamples=50, seed=3)
    np.testing.assert_allclose(means.samples, reference, rtol=1e-12)
    np.testing.assert_allclose(means.value, slow(rows), rtol=1e-12)
    share = means.samples[:, 2] / means.samples[:, 0]
    table = why_table(rows, n_resamples=50, seed=3)
    row = _one(table, analysis="attribution", strength=0.25, part="latent_footprint")
    low, high = percentile_interval(share)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high), abs=1e-15)


def test_one_image_one_seed_has_no_interval() -> None:
    metrics = metrics_table(images=("a",), seeds=(0,), strengths=(0.5,))
    table = why_table(metrics, n_resamples=N)
    assert len(table) and table["ci_low"].isna().all() and table["ci_high"].isna().all()
    assert (table["resampled"] == "").all()
    row = _one(table, analysis="attribution", strength=0.5, part="vae_floor", variant="baseline")
    assert row["value"] == pytest.approx(2.0 / (2.0 + 3.0 + 0.25))


# ------------------------------------------------------------------ variant effects


def test_hard_paste_back_removes_all_the_outside_error() -> None:
    metrics = metrics_table()
    table = why_table(metrics, n_resamples=N)
    base = metrics.loc[(metrics["variant"] == "baseline") & (metrics["strength"] == 0.75)]
    base_mean = base.groupby("image")["mse_outside"].mean().mean()
    change = _one(
        table, analysis="variant_effect", variant="paste_hard", strength=0.75, quantity="change"
    )
    relative = _one(
        table,
        analysis="variant_effect",
        variant="paste_hard",
        strength=0.75,
        quantity="relative_change",
    )
    assert change["value"] == pytest.approx(-base_mean, rel=1e-14)
    assert change["ci_high"] < 0
    assert (relative["value"], relative["ci_low"], relative["ci_high"]) == (-1.0, -1.0, -1.0)
    assert relative["unit"] == "fraction of reference_mean"
    assert change["compared_mean"] == 0.0 and change["changes"] == "paste_back=hard"
    # Its shares are undefined (nothing to split), not a division error.
    shares = _select(table, analysis="attribution", variant="paste_hard")
    assert len(shares) == 9 and shares["value"].isna().all()


def test_a_variant_that_changes_nothing_here_has_zero_effect() -> None:
    table = why_table(metrics_table(), n_resamples=N)
    rows = _select(table, analysis="variant_effect", variant="final_paste_on")
    assert len(rows) == 6 and (rows["value"] == 0).all()
    assert (rows["ci_low"] == 0).all() and (rows["ci_high"] == 0).all()
    assert (rows["changes"] == "").all()


def test_latent_mask_cover_effect_by_hand() -> None:
    """mask_cover multiplies the footprint part by 1.25: its change is 0.25 x the
    baseline's mean footprint part."""
    metrics = metrics_table()
    table = why_table(metrics, n_resamples=N)
    base = metrics.loc[metrics["variant"] == "baseline"]
    footprint = base.groupby("image")["mse_outside_part_footprint"].mean().mean()
    pooled = _one(
        table, analysis="variant_effect", variant="mask_cover", strength=math.nan, quantity="change"
    )
    assert pooled["value"] == pytest.approx(0.25 * footprint, rel=1e-12)
    assert pooled["ci_low"] > 0
    assert pooled["changes"] == "latent_mask=cover"
    assert pooled["n_rows"] == len(base)


def test_seam_cost_of_paste_back_by_hand() -> None:
    """The synthetic tables' seam_step_excess: the baseline's 0.5 x strength + 0.1 x seed;
    hard paste-back adds 6 + the image index (images 0, 1, 2: 7 on average), soft 1.5,
    the other variants nothing."""
    metrics = metrics_table()
    table = why_table(metrics, n_resamples=N)
    rows = _select(table, analysis="seam_cost")
    assert set(rows["quantity"]) == {"seam_step_change"} and set(rows["unit"]) == {"8-bit level"}
    # One row per variant and strength (2 strengths and pooled), no relative change.
    assert len(rows) == 5 * 3
    base = metrics.loc[(metrics["variant"] == "baseline") & (metrics["strength"] == 0.75)]
    base_mean = base.groupby("image")["seam_step_excess"].mean().mean()
    assert base_mean == pytest.approx(0.375 + 0.05)
    hard = _one(rows, variant="paste_hard", strength=0.75)
    assert hard["value"] == pytest.approx(7.0, rel=1e-12)
    assert hard["reference_mean"] == pytest.approx(base_mean, rel=1e-12)
    assert hard["compared_mean"] == pytest.approx(base_mean + 7.0, rel=1e-12)
    assert hard["changes"] == "paste_back=hard" and hard["pass"] == 1
    # The interval resamples the images' costs 6, 7, 8 (each image's seeds agree): a
    # resampled mean lies within [6, 8], and the interval holds the mean, off 0.
    assert 6.0 <= hard["ci_low"] < 7.0 < hard["ci_high"] <= 8.0
    assert (hard["n_images"], hard["n_seeds"], hard["n_rows"]) == (3, 2, 6)
    # Every image's soft cost is 1.5: the interval collapses onto it.
    soft = _one(rows, variant="paste_soft", strength=math.nan)
    assert (soft["value"], soft["ci_low"], soft["ci_high"]) == pytest.approx((1.5, 1.5, 1.5))
    for variant in ("mask_cover", "final_paste_on", "passes_3"):
        assert (_select(rows, variant=variant)["value"] == 0.0).all(), variant
    # A mask with no pixel pair across its edge has no seam measure: its pairs are left
    # out, and a variant with none at all has a NaN cost.
    missing = metrics.copy()
    missing.loc[missing["image"] == "im2", "seam_step_excess"] = math.nan
    hard = _one(
        _select(why_table(missing, n_resamples=N), analysis="seam_cost"),
        variant="paste_hard",
        strength=0.75,
    )
    assert hard["value"] == pytest.approx(6.5) and hard["n_images"] == 2
    missing["seam_step_excess"] = math.nan
    none = _select(why_table(missing, n_resamples=N), analysis="seam_cost")
    assert none["value"].isna().all() and (none["n_rows"] == 0).all()


def test_pass_growth_by_hand() -> None:
    """Pass k's footprint and beyond parts are k times pass 1's, the floor stays."""
    metrics = metrics_table()
    table = why_table(metrics, n_resamples=N)
    first = metrics.loc[(metrics["variant"] == "passes_3") & (metrics["pass"] == 1)]
    grown = first["mse_outside_part_footprint"] + first["mse_outside_part_beyond"]
    excess = grown.groupby(first["image"]).mean().mean()
    level = first.groupby("image")["mse_outside"].mean().mean()
    for k in (2, 3):
        change = _one(
            table,
            analysis="pass_growth",
            variant="passes_3",
            strength=math.nan,
            quantity="change",
            **{"pass": k},
        )
        relative = _one(
            table,
            analysis="pass_growth",
            variant="passes_3",
            strength=math.nan,
            quantity="relative_change",
            **{"pass": k},
        )
        assert change["value"] == pytest.approx((k - 1) * excess, rel=1e-12)
        assert relative["value"] == pytest.approx((k - 1) * excess / level, rel=1e-12)
        assert relative["ci_low"] <= relative["value"] <= relative["ci_high"]
    assert set(_select(table, analysis="pass_growth")["variant"]) == {"passes_3"}


def test_rows_are_in_the_documented_order() -> None:
    table = why_table(metrics_table(), n_resamples=20)
    analyses = table["analysis"].tolist()
    order = ["attribution", "variant_effect", "seam_cost", "pass_growth"]
    assert analyses == sorted(analyses, key=order.index) and set(analyses) == set(order)
    effect = _select(table, analysis="variant_effect")
    assert list(pd.unique(effect["variant"])) == [
        "mask_cover",
        "final_paste_on",
        "paste_hard",
        "paste_soft",
        "passes_3",
    ]
    one = _select(effect, variant="mask_cover")
    assert one["strength"].tolist()[::2] == [0.25, 0.75, pytest.approx(math.nan, nan_ok=True)]
    assert one["quantity"].tolist()[:2] == ["change", "relative_change"]


def test_repeated_pairs_are_refused() -> None:
    metrics = metrics_table(variants={"baseline": {}, "mask_cover": {"latent_mask": "cover"}})
    doubled = pd.concat([metrics, metrics.loc[metrics["variant"] == "mask_cover"]])
    with pytest.raises(InputError, match=r"repeated .* variant 'mask_cover'"):
        why_table(doubled, n_resamples=10)


def test_a_table_without_a_needed_column_is_refused() -> None:
    with pytest.raises(
        InputError, match=r"metrics table lacks column\(s\) \['mse_outside_part_beyond'\]"
    ):
        why_table(metrics_table().drop(columns="mse_outside_part_beyond"))


def test_no_mechanism_sweep_gives_an_empty_table() -> None:
    table = why_table(metrics_table(experiment="strength_sweep"), n_resamples=10)
    assert table.empty and tuple(table.columns) == COLUMNS


def test_changes_reads_the_mechanism_columns() -> None:
    metrics = metrics_table(
        variants={
            "baseline": {},
            "soft": {"paste_back": "soft", "paste_blur_px": 4.0},
            "paste_off": {"final_latent_paste": False},
        }
    )
    assert changes(metrics, "baseline") == ""
    assert changes(metrics, "soft") == "paste_back=soft, paste_blur_px=4"
    assert changes(metrics, "paste_off") == "final_latent_paste=off"
    with pytest.raises(InputError, match="no rows of variant 'nope'"):
        changes(metrics, "nope")


# ------------------------------------------------------------------ files


def test_schema_documents_every_column_in_order() -> None:
    schema = yaml.safe_load(SCHEMA.read_text())["columns"]
    table = why_table(metrics_table(), n_resamples=10)
    assert tuple(c["name"] for c in schema) == COLUMNS == tuple(table.columns)
    assert {c["name"]: c["dtype"] for c in schema} == DTYPES
    assert {c: str(table[c].dtype) for c in COLUMNS} == DTYPES
    assert labels.BASELINE == mechanisms.BASELINE
    assert set(MECHANISMS) == set(mechanisms.NAMES)


def test_write_why_writes_the_table_and_a_page_that_states_the_shares(tmp_path: Path) -> None:
    metrics = metrics_table(
        images=("a", "b"),
        seeds=(0, 1),
        strengths=(0.5,),
        variants={"baseline": {}, "paste_hard": {"paste_back": "hard"}},
        parts=_parts(KNOWN),
    )
    # Hard paste-back: the parts beyond the floor are the floor's negative.
    hard = metrics["variant"] == "paste_hard"
    metrics.loc[hard, "mse_outside_part_footprint"] = -metrics.loc[hard, "mse_outside_part_vae"]
    metrics.loc[hard, ["mse_outside_part_beyond", "mse_outside"]] = 0.0
    source = tmp_path / "metrics.parquet"
    metrics.to_parquet(source)
    out, page = tmp_path / "why.parquet", tmp_path / "why.html"
    figures = {"tiny4": [("outside error split", "results/x/figures/tiny4/why/attribution.png")]}
    write_why(source, out, page, figures=figures, n_resamples=N)
    table = read_table(out, "why")
    assert tuple(table.columns) == COLUMNS
    record = read_parquet_record(out)
    assert record is not None and record["n_resamples"] == N and record["metrics"] == str(source)
    text = page.read_text()
    # Footprint 4 / 8.5 = 47.1 %, floor 3 / 8.5 = 35.3 %, beyond 1.5 / 8.5 = 17.6 %,
    # largest first.
    assert "the latent footprint accounts for <b>47.1 %</b>" in text
    assert "the VAE floor for <b>35.3 %</b>" in text
    assert text.index("47.1 %") < text.index("35.3 %") < text.index("17.6 %")
    assert "The largest share is <b>the latent footprint</b>" in text
    assert "paste_hard (paste_back=hard)</b> changes the outside error" in text
    assert "−100 %" in text and "the interval excludes 0" in text
    # Beside the gain, its seam: hard adds 6 + the image index (images 0 and 1 here) to
    # the baseline's seam_step_excess 0.25 + 0.1 x seed (mean 0.3): +6.5, from 0.3 to 6.8;
    # resampled means of the two images' 6 and 7 lie in [6, 7], both ends drawn often.
    assert (
        "the step across it beyond the original's own (seam_step_excess) changes by"
        " <b>+6.50</b> 8-bit levels (95 % CI +6.00 to +7.00), from the baseline's 0.300 to"
        " 6.80: a seam; the interval excludes 0." in text
    )
    assert "<th>seam: seam_step_excess change (8-bit level)</th>" in text
    assert "results/x/figures/tiny4/why/attribution.png" in text
    assert "outside error split" in text
    write_why(source, tmp_path / "again.parquet", tmp_path / "again.html", figures, n_resamples=N)
    assert (tmp_path / "again.html").read_text() == text.replace("why.parquet", "again.parquet")


def test_write_why_names_the_metrics_file_it_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="metrics table .*none.parquet not found"):
        write_why(tmp_path / "none.parquet", tmp_path / "why.parquet")


# ------------------------------------------------------------------ the plan


def _plan(config: dict) -> Plan:
    validate_config(config)
    return Plan(config, "test")


def _small() -> dict:
    return yaml.safe_load((REPO / ".test/config.yaml").read_text())


def test_outputs_follow_the_mechanism_sweep() -> None:
    plan = _plan(_small())
    outputs = captions.outputs(plan)
    assert outputs[:2] == ["results/test/why.parquet", "results/test/why.html"]
    for model in ("tiny4", "tiny4_study"):
        for name in captions.FIGURES:
            assert f"results/test/figures/{model}/why/{name}.png" in outputs
    assert len(outputs) == 2 + 2 * len(captions.FIGURES)
    # Without paste-back and repeated passes, those two figures are not drawn.
    config = _small()
    config["experiments"]["mechanism_sweep"]["variants"] = ["baseline", "mask_cover"]
    names = captions.figure_names(_plan(config), "tiny4")
    assert names == ["attribution", "distance_profile", "texture_deciles", "colour_drift"]
    config.pop("variants")
    config["experiments"].pop("mechanism_sweep")
    assert captions.outputs(_plan(config)) == []


def test_figure_caption_values_describe_each_variant_in_its_pipeline() -> None:
    plan = _plan(_small())
    diffusers, study = captions.figure(plan, "tiny4"), captions.figure(plan, "tiny4_study")
    by_name = {v["name"]: v for v in diffusers["variants"]}
    assert by_name["final_paste_on"]["changes"] == ""  # today's pipeline already pastes
    assert {v["name"]: v["changes"] for v in study["variants"]}["final_paste_on"] == (
        "final_latent_paste=on"
    )
    assert by_name["passes_3"]["label"] == "passes_3 (passes=3)"
    assert diffusers["paste_variants"] == [
        "paste_hard (paste_back=hard)",
        "paste_soft (paste_back=soft, paste_blur_px=4)",
    ]
    assert diffusers["strengths"] == "strengths 0.5, 1" and diffusers["radii"] == "radius 80 %"
    assert diffusers["mask_size"] is True
    assert diffusers["mask_size_sweep"]["radii"] == "radii 30, 60 %, and 1 other mask (rect-50x50)"
