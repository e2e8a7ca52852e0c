"""snakemake train_tiny_models, for real: a few steps of every training rule on the small
config's images, twice from the same seed (bit-identical weights), and the trained layout
used as a model of kind ``trained``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from maskleak.provenance import read_parquet_record, sha256_file
from maskleak.trained_models import COMPONENTS
from maskleak.training.vae import block_mean, psnr
from test_workflow import SMALL, copy_workflow, results_dir, snakemake

pytestmark = pytest.mark.slow

#: A few steps of everything, on small crops: the rules' plumbing, not the models' quality.
TINY_TRAINING = {
    "seed": 3,
    "vae": {"steps": 4, "batch_size": 2, "crop_px": 32},
    "unet": {"steps": 4, "batch_size": 4, "crop_px": 32, "examples": 8},
}


def training_config() -> dict:
    return {**SMALL, "training": TINY_TRAINING}


def trained(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    workdir = copy_workflow(tmp_path_factory.mktemp(name))
    result = snakemake(workdir, training_config(), "train_tiny_models")
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return trained(tmp_path_factory, "train_a"), trained(tmp_path_factory, "train_b")


def layout(workdir: Path) -> Path:
    return results_dir(workdir, training_config()) / "training" / "models"


def weight_files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*.safetensors"))}


def test_every_component_is_written_with_its_record(runs: tuple[Path, Path]) -> None:
    root = layout(runs[0])
    assert sorted(p.name for p in root.iterdir()) == sorted(COMPONENTS)
    vae = json.loads((root / "vae" / "provenance.json").read_text())
    assert vae["seed"] == 3 and vae["settings"]["steps"] == 4
    assert vae["losses"]["steps"] == 4 and vae["init"] == "block_mean"
    assert vae["torch_threads"] == 2
    assert [i["kind"] for i in vae["data"]["images"]].count("skimage") == 11
    for channels in (4, 9):
        unet = json.loads((root / f"unet{channels}" / "provenance.json").read_text())
        assert unet["stage"] == f"train_unet{channels}"
        assert unet["settings"]["examples"] == 8 and unet["losses"]["steps"] == 4
        assert unet["config"]["in_channels"] == channels
        assert unet["torch_threads"] == 1
        # Each UNet ships the scheduler of the target it learned (the defaults).
        target = {4: "epsilon", 9: "v_prediction"}[channels]
        assert unet["settings"]["prediction_type"] == target
        scheduler = json.loads(
            (root / f"scheduler{channels}" / "scheduler_config.json").read_text()
        )
        assert scheduler["prediction_type"] == target
    history = pd.read_parquet(
        results_dir(runs[0], training_config()) / "training/history/vae.parquet"
    )
    assert list(history["step"]) == [1, 2, 3, 4]


def test_same_seed_gives_bit_identical_weights(runs: tuple[Path, Path]) -> None:
    first, second = (weight_files(layout(w)) for w in runs)
    assert len(first) == 4  # vae, unet4, unet9, text_encoder
    assert first == second


def test_quality_report_measures_the_run_images(runs: tuple[Path, Path]) -> None:
    folder = results_dir(runs[0], training_config()) / "training"
    summary = json.loads((folder / "quality.json").read_text())
    assert set(summary["held_out"]["nearest_training_image_mad"]) == set(SMALL["images"])
    assert summary["held_out"]["passes"] is True
    vae_rows = pd.read_parquet(folder / "vae_quality.parquet")
    images = results_dir(runs[0], training_config()) / "images"
    for row in vae_rows.itertuples():
        pixels = np.asarray(Image.open(images / f"{row.image}.png").convert("RGB"))[None]
        assert row.psnr_block_mean_db == psnr(block_mean(pixels), pixels)
    assert summary["vae"]["margin_db_mean"] == pytest.approx(vae_rows["margin_db"].mean())
    for channels in (4, 9):
        entry = summary["denoising"][f"unet{channels}"]
        assert entry["ratio"] == pytest.approx(entry["trained_mean"] / entry["untrained_mean"])
        assert summary["inpaint"][f"trained{channels}"]["unet_in_channels"] == channels
    inpaint = pd.read_parquet(folder / "inpaint_quality.parquet")
    assert set(inpaint["model"]) == {"trained4", "trained9"}
    assert read_parquet_record(folder / "denoising.parquet")["seed"] == 3


def test_retrained_layout_runs_as_a_trained_model(runs: tuple[Path, Path], tmp_path: Path) -> None:
    """The training output stands in for resources/trained: a model of kind trained with
    that path inpaints in a real run."""
    workdir = runs[1]
    config = {
        **SMALL,
        "run": "use-trained",
        "models": {
            "mine9": {"kind": "trained", "unet_in_channels": 9, "path": str(layout(workdir))}
        },
        "experiments": {"strength_sweep": {"radius_pct": [80], "strengths": [1.0], "seeds": [0]}},
        "figures": {},
    }
    result = snakemake(workdir, config)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = pd.read_parquet(results_dir(workdir, config) / "metrics.parquet")
    assert set(metrics["model"]) == {"mine9"} and len(metrics) == len(SMALL["images"])
