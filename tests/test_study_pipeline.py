"""The study's pipeline (maskleak.study_pipeline) against the real thing: diffusers 0.11.1's
StableDiffusionInpaintPipelineLegacy, run in its own virtual environment
(tests/study_venv.sh) on the same model folder, images, masks, strengths and seeds."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from maskleak.errors import InputError
from maskleak.landscapes import generate_landscape
from maskleak.masks import circle_mask
from maskleak.models import load_pipeline
from maskleak.study_pipeline import study_inpaint

REPO = Path(__file__).resolve().parents[1]
STUDY_PYTHON = Path(os.environ.get("MASKLEAK_STUDY_PYTHON", REPO / ".venv-study/bin/python"))
STEPS = 10


@pytest.fixture(scope="module")
def study_python() -> Path:
    """The side environment's interpreter. CI builds it (tests/study_venv.sh) and sets
    MASKLEAK_REQUIRE_STUDY_VENV=1, which turns a missing one into a failure."""
    if not STUDY_PYTHON.exists():
        if os.environ.get("MASKLEAK_REQUIRE_STUDY_VENV") == "1":
            pytest.fail(f"{STUDY_PYTHON} missing: run tests/study_venv.sh")
        pytest.skip(f"{STUDY_PYTHON} missing: run tests/study_venv.sh")
    return STUDY_PYTHON


def outside_mse(result: np.ndarray, original: np.ndarray, mask: np.ndarray) -> float:
    keep = mask == 0
    return float(((result.astype(float) - original.astype(float)) ** 2)[keep].mean())


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """Two images (a landscape, a photograph), masks at two radii; PNG files."""
    from skimage import data

    folder = tmp_path_factory.mktemp("study-scenes")
    landscape, _ = generate_landscape(1, 192, 128)
    photo = np.asarray(Image.fromarray(data.astronaut()).resize((128, 128), Image.BICUBIC))
    scenes = []
    for name, pixels in (("landscape", landscape), ("astronaut", photo)):
        path = folder / f"{name}.png"
        Image.fromarray(pixels).save(path)
        for radius in (40, 80):
            mask_path = folder / f"{name}_r{radius}.png"
            circle_mask(pixels.shape[1], pixels.shape[0], radius).save(mask_path)
            scenes.append({"image": str(path), "mask": str(mask_path)})
    return scenes


def test_matches_real_diffusers_0_11_1(study_python, scenes, tiny_models, tmp_path):
    jobs = []
    for i, scene in enumerate(scenes):
        for strength in (0.0, 0.35, 1.0):
            for seed in (0, 7):
                out = f"{i}_s{strength}_seed{seed}.png"
                jobs.append(
                    {**scene, "strength": strength, "seed": seed, "steps": STEPS, "out": out}
                )
    jobs_file = tmp_path / "jobs.json"
    jobs_file.write_text(json.dumps(jobs))
    reference = tmp_path / "reference"
    run = subprocess.run(
        [
            str(study_python),
            str(REPO / "tests/study_reference.py"),
            "--model",
            str(tiny_models[4]),
            "--jobs",
            str(jobs_file),
            "--out",
            str(reference),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]

    pipe = load_pipeline(tiny_models[4])
    worst_level, worst_rel = 0, 0.0
    for job in jobs:
        image = Image.open(job["image"]).convert("RGB")
        mask = Image.open(job["mask"]).convert("L")
        generator = torch.Generator("cpu").manual_seed(job["seed"])
        ours, _ = study_inpaint(pipe, image, mask, job["strength"], STEPS, generator)
        theirs = np.asarray(Image.open(reference / job["out"]).convert("RGB"))
        ours_px = np.asarray(ours)
        assert ours_px.shape == theirs.shape
        worst_level = max(worst_level, int(np.abs(ours_px.astype(int) - theirs).max()))
        original, keep = np.asarray(image), np.asarray(mask)
        a, b = outside_mse(ours_px, original, keep), outside_mse(theirs, original, keep)
        worst_rel = max(worst_rel, abs(a - b) / b)
    assert worst_level <= 1, f"largest pixel difference {worst_level} levels"
    assert worst_rel <= 0.001, f"largest outside-MSE difference {worst_rel:.2%}"


def test_strength_0_still_runs_one_unet_step(tiny_models, scenes):
    """PNDM has steps + 1 timesteps and 0.11.1 takes them from t_start on."""
    pipe = load_pipeline(tiny_models[4])
    image = Image.open(scenes[0]["image"]).convert("RGB")
    mask = Image.open(scenes[0]["mask"]).convert("L")
    runs = {
        s: study_inpaint(pipe, image, mask, s, STEPS, torch.Generator("cpu").manual_seed(0))[1]
        for s in (0.0, 0.5, 1.0)
    }
    assert runs == {0.0: 1, 0.5: 6, 1.0: 11}


def test_a_9_channel_model_is_refused_with_the_reason(tiny_models, scenes):
    pipe = load_pipeline(tiny_models[9])
    image = Image.open(scenes[0]["image"]).convert("RGB")
    mask = Image.open(scenes[0]["mask"]).convert("L")
    with pytest.raises(InputError, match="4-channel UNet.*9 channels"):
        study_inpaint(pipe, image, mask, 0.5, STEPS, torch.Generator("cpu").manual_seed(0))
