"""Real Snakemake runs of a small config: end to end, reruns, and bad input."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from maskleak.metrics import metrics_table

REPO = Path(__file__).resolve().parents[1]


def small_config() -> dict:
    """The small config the tests and CI run (what `.test/` is for in snakemake-workflows),
    with its user mask folder's path made absolute: the tests run it in other folders."""
    config = yaml.safe_load((REPO / ".test/config.yaml").read_text())
    for experiment in config["experiments"].values():
        for entry in experiment.get("masks", []):
            if "path" in entry:
                entry["path"] = str(REPO / entry["path"])
    return config


SMALL = small_config()
#: Tests write their config to this file in the work folder, so its run is named "test-config".
CONFIG_NAME = "test-config.yaml"


def results_dir(workdir: Path, config: dict) -> Path:
    """Where a run of ``config`` written by :func:`snakemake` puts its results."""
    return workdir / "results" / config.get("run", Path(CONFIG_NAME).stem)


def copy_workflow(dest: Path) -> Path:
    """A private copy of the workflow and library code, so tests may edit both: runs
    through :func:`snakemake` import the copy's ``src/maskleak``."""
    shutil.copy(REPO / "Snakefile", dest / "Snakefile")
    shutil.copytree(REPO / "workflow", dest / "workflow")
    shutil.copytree(REPO / "profiles", dest / "profiles")
    shutil.copytree(REPO / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__"))
    # The committed trained models ship with the workflow, as in a clone of it.
    shutil.copytree(REPO / "resources" / "trained", dest / "resources" / "trained")
    return dest


def snakemake(
    workdir: Path, config: dict, *args: str, timeout: int = 900, wrap: Sequence[str] = ()
):
    """Run Snakemake on ``config`` in ``workdir``; ``wrap`` prefixes the command (timeout)."""
    cfg = workdir / CONFIG_NAME
    cfg.write_text(yaml.safe_dump(config))
    cmd = [
        *wrap,
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(workdir / "Snakefile"),
        "-d",
        str(workdir),
    ]
    cmd += ["--configfile", str(cfg), "--cores", "2", *args]
    env = dict(os.environ)
    if (workdir / "src").is_dir():
        env["PYTHONPATH"] = os.pathsep.join(
            [str(workdir / "src"), *filter(None, [env.get("PYTHONPATH")])]
        )
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, cwd=workdir, env=env
    )


def planned_jobs(workdir: Path, config: dict) -> dict[str, int]:
    """Job counts per rule from a real dry run."""
    run = snakemake(workdir, config, "-n", "--quiet", "rules")
    assert run.returncode == 0, run.stderr
    counts: dict[str, int] = {}
    for line in (run.stdout + run.stderr).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("job", "total"):
            counts[parts[0]] = int(parts[1])
    return counts


#: What pairs a variant's row with its baseline's.
KEYS = ["model", "image", "radius_pct", "strength", "seed"]


def png_mtimes(workdir: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in (workdir / "results").rglob("inpainted/**/*.png")}


def finished_run(tmp_path_factory: pytest.TempPathFactory, name: str, config: dict) -> Path:
    """A workflow copy that has run ``config`` locally to the end."""
    workdir = copy_workflow(tmp_path_factory.mktemp(name))
    run = snakemake(workdir, config)
    assert run.returncode == 0, run.stderr[-4000:]
    return workdir


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return finished_run(tmp_path_factory, "wf", SMALL)


@pytest.mark.slow
def test_end_to_end_outputs(finished: Path, monkeypatch: pytest.MonkeyPatch):
    results = results_dir(finished, SMALL)
    metrics = pd.read_parquet(results / "metrics.parquet")
    # The strength sweep: 4 models (the trained three and the block-mean control) x 2
    # images x 3 strengths x 2 seeds = 48; the mask-size sweep: 3 models x 2 images x 3
    # masks (2 radii, a box) x 1 strength x 1 seed = 18,
    # and the mechanism sweep: 2 models x 2 images x 2 strengths x 2 seeds x 9 PNGs (7
    # variants, passes_3 with 3 passes) = 144; the mask-shape sweep: 3 models x 2 images x
    # 5 masks (r60, a box, 2 stroke masks, the user's) = 30.
    assert len(metrics) == 48 + 18 + 144 + 30
    # Merged from one table per inpaint job, it is exactly what one pass over every
    # manifest gives.
    monkeypatch.chdir(finished)  # manifests list paths relative to the working folder
    at_once = metrics_table(
        sorted(str(p.relative_to(finished)) for p in results.glob("inpainted/*/*/manifest.json")),
        band_px=8,
        region_maps={"land": str((results / "regions/land.png").relative_to(finished))},
    )
    pd.testing.assert_frame_equal(metrics, at_once, check_exact=True)
    assert set(metrics["experiment"]) == {
        "strength_sweep",
        "mask_size_sweep",
        "mechanism_sweep",
        "mask_shape_sweep",
    }
    # The user's masks (.test/masks, matched to images by name) ran end to end: their rows
    # measure exactly the pixels the files mark (grey >= 128), binarised into the mask PNG.
    hand = metrics[metrics["mask_id"] == "file-hand"]
    assert len(hand) == 6 and set(hand["mask_kind"]) == {"file"}
    for image, rows in hand.groupby("image"):
        user = np.asarray(Image.open(REPO / ".test/masks" / f"{image}.png").convert("L")) >= 128
        drawn = np.asarray(Image.open(finished / rows["mask_path"].iloc[0])) == 255
        assert np.array_equal(drawn, user)
        assert (rows["area_frac"] == user.mean()).all()
        assert (rows["n_outside"] == (~user).sum()).all()
        assert rows["radius_pct"].isna().all() and rows["radius_px"].isna().all()
        assert rows["mse_whitedisc_thesis"].isna().all()
    # astronaut's L shape: one piece; like any staircase-free polygon without holes, its
    # crack length is its bounding box's, 2 (36 + 43) = 158.
    assert set(hand.loc[hand["image"] == "astronaut", "perimeter_px"]) == {158}
    assert set(hand.loc[hand["image"] == "land", "n_components"]) == {2}
    shape = metrics[metrics["experiment"] == "mask_shape_sweep"]
    assert set(shape["mask_kind"]) == {"circle", "rectangle", "strokes", "file"}
    fits = pd.read_parquet(results / "mask_shape.parquet")
    assert set(fits["model"]) == {"tiny4", "tiny4_study", "tiny9"}
    assert set(fits["family"]) == {"circle", "rectangle", "strokes", "file", "all"}
    mechanism = metrics[metrics["experiment"] == "mechanism_sweep"]
    # Hard paste-back: diffusers' apply_overlay puts the original's pixels back outside
    # the mask, exactly: outside error 0, every outside pixel unchanged.
    hard = mechanism[mechanism["paste_back"] == "hard"]
    assert len(hard) == 16 and (hard["mse_outside"] == 0).all()
    assert (hard["frac_changed_outside"] == 0).all() and (hard["max_abs_outside"] == 0).all()
    # ... and its inside is the baseline's: paste-back variants share one pipeline result.
    base = mechanism[mechanism["variant"] == "baseline"]
    paired = hard.merge(base, on=KEYS, suffixes=("", "_base"), validate="one_to_one")
    assert len(paired) == 16 and (paired["mse_inside"] == paired["mse_inside_base"]).all()
    # ... which leaves a seam: the edge is sharper than the original's own step there.
    assert (paired["seam_step_excess"] > paired["seam_step_excess_base"]).all()
    # The three parts of the outside error add up to it.
    parts = mechanism[[f"mse_outside_part_{p}" for p in ("vae", "footprint", "beyond")]]
    assert np.allclose(parts.sum(axis=1), mechanism["mse_outside"], rtol=1e-12, atol=1e-9)
    # A variant that changes nothing for a pipeline shares its baseline PNGs.
    study = mechanism[mechanism["model"] == "tiny4_study"]
    off = study[study["variant"] == "final_paste_off"]
    same = study[study["variant"] == "baseline"]
    assert sorted(off["inpainted_path"]) == sorted(same["inpainted_path"])
    assert set(mechanism[mechanism["variant"] == "passes_3"]["pass"]) == {1, 2, 3}
    # The distance and texture profile: 7 distance bins and 10 texture deciles per PNG at
    # most (bins without pixels are rows with n_pixels 0).
    profile = pd.read_parquet(results / "profile.parquet")
    assert set(profile["kind"]) == {"distance", "texture"}
    why = pd.read_parquet(results / "why.parquet")
    assert set(why["model"]) == {"tiny4", "tiny4_study"}
    assert (results / "why.html").stat().st_size > 1000
    # tiny4 and tiny4_study share weights; the study's pipeline runs a step at strength 0.
    assert metrics.groupby("model")["pipeline"].agg(set).to_dict() == {
        "tiny9": {"diffusers"},
        "tiny4": {"diffusers"},
        "tiny4_study": {"study"},
        "blockmean4": {"diffusers"},
    }
    zero = metrics[metrics["strength"] == 0.0]
    today = zero[zero["pipeline"] == "diffusers"]
    assert (today["steps_run"] == 0).all() and (today["mode"] == "vae_roundtrip").all()
    study = zero[zero["pipeline"] == "study"]
    assert (
        len(study) == 4 and (study["steps_run"] == 1).all() and (study["mode"] == "denoise").all()
    )
    # Today's pipeline at strength 0 is the VAE floor itself (both the posterior mode).
    assert (today["mse_outside"] == today["mse_outside_vae"]).all()
    # The study's is not: its one step leaves noise on the kept latents. With a trained
    # (inexact) VAE that noise can land a seed a little below the posterior mode's error
    # (2082 against 2085 on land), so the test is "differs", not "exceeds".
    assert (study["mse_outside"] != study["mse_outside_vae"]).all()
    assert len(list(results.glob("inpainted/*/*/vae_roundtrip.png"))) == 8
    for column in ("image_path", "mask_path", "inpainted_path"):
        assert all((finished / p).is_file() for p in metrics[column])
    # astronaut 512x512 -> 64x64; land 160x96 -> x0.4 = 64x38.4 -> floored to 64x32.
    sizes = metrics.groupby("image")[["width", "height"]].agg(set)
    assert sizes.loc["astronaut"].tolist() == [{64}, {64}]
    assert sizes.loc["land"].tolist() == [{64}, {32}]
    # Ground truth for flat vs textured exists only for the procedural image; its region
    # map labels every pixel, so the two parts add up to the whole outside.
    land = metrics[metrics["image"] == "land"]
    assert (land["n_outside_flat"] + land["n_outside_textured"] == land["n_outside"]).all()
    assert land["mse_outside_flat"].notna().all()
    astronaut = metrics[metrics["image"] == "astronaut"]
    assert astronaut["mse_outside_flat"].isna().all() and (astronaut["n_outside_flat"] == 0).all()
    trends = pd.read_parquet(results_dir(finished, SMALL) / "trends.parquet")
    assert {"strength", "area_frac", "area_frac_thesis"} <= set(trends["x"])
    # Two seeds: the mean fits have bootstrap intervals around their coefficients.
    means = trends[(trends["scope"] == "mean") & (trends["experiment"] == "strength_sweep")]
    assert (means["c1_lo"] <= means["c1"]).all() and (means["c1"] <= means["c1_hi"]).all()
    # A verdict on each of the study's 8 claims, per model and metric definition.
    claims = pd.read_parquet(results / "claims.parquet")
    assert len(claims) == 8 * 4 * 2
    assert set(claims["claim"]) == set(range(1, 9))
    assert set(claims["verdict"]) <= {"holds", "does not hold", "inconclusive", "not testable here"}
    assert (results / "claims.html").stat().st_size > 1000
    for figure in (
        "model_comparison.png",
        "tiny9/strength_grid.png",
        "tiny4/strength_trend.png",
        "tiny9/worst_case/land.png",
        "tiny4/area_curves.png",
        "tiny9/radius_gallery.png",
        "tiny4_study/strength_trend.png",
        "tiny4_study/worst_case/land.png",
        "blockmean4/worst_case/land.png",
        *(f"{model}/mask_shape.png" for model in ("tiny4", "tiny4_study", "tiny9")),
        *(
            f"{model}/why/{name}.png"
            for model in ("tiny4", "tiny4_study")
            for name in (
                "attribution",
                "distance_profile",
                "texture_deciles",
                "passes",
                "paste_back",
                "colour_drift",
            )
        ),
    ):
        assert (results_dir(finished, SMALL) / "figures" / figure).stat().st_size > 1000


@pytest.mark.slow
def test_second_run_does_nothing(finished: Path):
    assert planned_jobs(finished, SMALL) == {}


@pytest.mark.slow
def test_report_is_self_contained(finished: Path):
    run = snakemake(finished, SMALL, "--report", str(finished / "report.zip"))
    assert run.returncode == 0, run.stderr[-3000:]
    assert (finished / "report.zip").stat().st_size > 10_000
    with zipfile.ZipFile(finished / "report.zip") as report:
        names = report.namelist()
        pages = b"".join(report.read(n) for n in names if n.endswith(".html"))
    # The verdict page is in the report, under the category listed first.
    assert any(name.endswith("claims.html") for name in names)
    # Every caption and the description rendered cleanly (docutils marks errors inline),
    # and the description names this run's folder.
    assert b"System Message" not in pages
    folder = results_dir(finished, SMALL).relative_to(finished).as_posix()
    text = re.sub(rb"<[^>]*>", b"", pages)  # docutils may wrap a path in <span>s
    assert f"This run's results are in {folder}/:".encode() in text


@pytest.mark.slow
def test_growing_the_sweep_computes_only_new_inpaintings(finished: Path):
    before = png_mtimes(finished)
    grown = yaml.safe_load(yaml.safe_dump(SMALL))
    grown["experiments"]["strength_sweep"]["strengths"].append(0.75)
    grown["experiments"]["strength_sweep"]["seeds"].append(5)
    run = snakemake(finished, grown)
    assert run.returncode == 0, run.stderr[-3000:]
    after = png_mtimes(finished)
    # Old inpaintings untouched; new ones: 4 models x 2 images x (the new strength x 3
    # seeds + 3 old strengths x the new seed) = 48.
    assert all(after[p] == t for p, t in before.items())
    assert len(set(after) - set(before)) == 48
    metrics = pd.read_parquet(results_dir(finished, SMALL) / "metrics.parquet")
    assert len(metrics) == 48 + 18 + 144 + 30 + 48

    # Adding a variant computes only its own inpaintings: inner latent mask on the two
    # 4-channel models x 2 images x 2 strengths x 2 seeds = 16 new PNGs.
    before = png_mtimes(finished)
    grown["variants"]["mask_inner"] = {"latent_mask": "inner"}
    grown["experiments"]["mechanism_sweep"]["variants"].append("mask_inner")
    run = snakemake(finished, grown)
    assert run.returncode == 0, run.stderr[-3000:]
    after = png_mtimes(finished)
    assert all(after[p] == t for p, t in before.items())
    new = sorted(set(after) - set(before))
    assert len(new) == 16 and all("~latent_mask-inner" in p.name for p in new)

    # Adding an image computes inpaintings and metrics for that image only (one job per
    # model); the other images' metrics tables stay as they are.
    more = yaml.safe_load(yaml.safe_dump(grown))
    more["images"]["coffee"] = {"kind": "skimage", "name": "coffee"}
    jobs = planned_jobs(finished, more)
    assert jobs["inpaint"] == 4 and jobs["download_image"] == 1 and jobs["metrics_image"] == 4
    parts = results_dir(finished, SMALL) / "metrics"
    before = {p: p.stat().st_mtime_ns for p in parts.rglob("*.parquet")}
    run = snakemake(finished, more)
    assert run.returncode == 0, run.stderr[-3000:]
    after = {p: p.stat().st_mtime_ns for p in parts.rglob("*.parquet")}
    assert {p: after[p] for p in before} == before
    assert sorted(p.relative_to(parts).as_posix() for p in set(after) - set(before)) == [
        "blockmean4/coffee.parquet",
        "tiny4/coffee.parquet",
        "tiny4_study/coffee.parquet",
        "tiny9/coffee.parquet",
    ]

    # Editing the metrics script reruns metrics and what follows, never an inpainting.
    script = finished / "workflow/scripts/metrics.py"
    script.write_text(script.read_text() + "# edited\n")
    jobs = planned_jobs(finished, grown)
    assert jobs.get("metrics") == 1 and "inpaint" not in jobs


@pytest.mark.slow
def test_corrupt_image_fails_clearly_and_leaves_nothing(tmp_path: Path):
    workdir = copy_workflow(tmp_path)
    bad = workdir / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    config = yaml.safe_load(yaml.safe_dump(SMALL))
    config["images"] = {"broken": {"kind": "file", "path": str(bad)}}
    config["experiments"].pop("mask_shape_sweep")  # its mask folder has no mask for broken
    config["figures"] = {}
    run = snakemake(workdir, config, "--until", "download_image")
    assert run.returncode != 0
    assert "maskleak: error:" in run.stderr and "broken.png" in run.stderr
    assert not list((workdir / "resources/images").glob("*.png"))


@pytest.mark.slow
def test_wrong_size_user_mask_fails_naming_both_files_and_leaves_nothing(tmp_path: Path):
    workdir = copy_workflow(tmp_path)
    user = workdir / "big_mask.png"
    Image.new("L", (160, 96), 255).save(user)  # the image's size before downsampling
    config = yaml.safe_load(yaml.safe_dump(SMALL))
    config["images"] = {"land": SMALL["images"]["land"]}
    config["models"] = {"tiny4": SMALL["models"]["tiny4"]}
    config["experiments"] = {
        "mask_shape_sweep": {
            "radius_pct": [60],
            "masks": [{"kind": "file", "path": str(user)}],
            "strengths": [0.5],
            "seeds": [0],
        }
    }
    config["variants"], config["figures"] = {}, {}
    run = snakemake(workdir, config)
    assert run.returncode != 0
    image = "results/test-config/images/land.png"
    assert (
        f"config key experiments.mask_shape_sweep.masks[0]: user mask {user} is 160x96 px; "
        f"set resize to resize it (nearest), or give a mask of 64x32 px like its image "
        f"(image {image})"
    ) in run.stderr
    results = results_dir(workdir, config)
    assert not list(results.rglob("masks/**/*.png"))
    assert not (results / "inpainted").exists()
