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
from maskleak.inpaint import Settings, Task, run_job
from maskleak.landscapes import generate_landscape
from maskleak.masks import circle_mask
from maskleak.models import load_pipeline
from maskleak.study_pipeline import steps_run, study_inpaint

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
            scenes.append(
                {"name": name, "image": str(path), "mask": str(mask_path), "radius": radius}
            )
    return scenes


STRENGTHS = (0.0, 0.35, 1.0)
SEEDS = (0, 7)


def test_the_workflow_s_study_pipeline_matches_real_diffusers_0_11_1(
    study_python, scenes, tiny_models, tmp_path
):
    """The inpaint job's own code path (run_job with pipeline "study", as the workflow runs
    it) against diffusers 0.11.1's StableDiffusionInpaintPipelineLegacy on the same model
    folder: 2 images x 2 masks x 3 strengths (0, 0.35, 1) x 2 seeds = 24 inpaintings."""
    jobs, tasks_by_image = [], {}
    for scene in scenes:
        for strength in STRENGTHS:
            for seed in SEEDS:
                out = f"{scene['name']}_r{scene['radius']}_s{strength}_seed{seed}.png"
                jobs.append(
                    {**scene, "strength": strength, "seed": seed, "steps": STEPS, "out": out}
                )
                tasks_by_image.setdefault(scene["image"], []).append(
                    Task(
                        experiment="strength_sweep",
                        radius_pct=scene["radius"],
                        strength=strength,
                        seed=seed,
                        mask_path=scene["mask"],
                        inpainted_path=str(tmp_path / "ours" / out),
                    )
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

    settings = Settings(steps=STEPS, pipeline="study")
    for image_path, tasks in tasks_by_image.items():
        summary = run_job(
            str(tiny_models[4]),
            "tiny4_study",
            image_path,
            "scene",
            tasks,
            settings,
            str(tmp_path / f"{Path(image_path).stem}.json"),
        )
        assert summary["computed"] == len(tasks)
    manifest = json.loads((tmp_path / "landscape.json").read_text())
    assert manifest["pipeline"] == "study"
    # PNDM's extra timestep: strength 0 runs one UNet step, strength 1 steps + 1.
    assert {e["strength"]: e["steps_run"] for e in manifest["inpaintings"]} == {
        0.0: 1,
        0.35: 4,
        1.0: STEPS + 1,
    }
    assert {e["mode"] for e in manifest["inpaintings"]} == {"denoise"}

    worst_level, worst_rel = 0, 0.0
    for job in jobs:
        ours_px = np.asarray(Image.open(tmp_path / "ours" / job["out"]).convert("RGB"))
        theirs = np.asarray(Image.open(reference / job["out"]).convert("RGB"))
        assert ours_px.shape == theirs.shape
        worst_level = max(worst_level, int(np.abs(ours_px.astype(int) - theirs).max()))
        original = np.asarray(Image.open(job["image"]).convert("RGB"))
        keep = np.asarray(Image.open(job["mask"]).convert("L"))
        a, b = outside_mse(ours_px, original, keep), outside_mse(theirs, original, keep)
        worst_rel = max(worst_rel, abs(a - b) / b)
    print(  # the README quotes this line
        f"study pipeline vs diffusers 0.11.1 over {len(jobs)} inpaintings: largest pixel "
        f"difference {worst_level} level(s), largest outside-MSE difference {worst_rel:.4%}"
    )
    assert worst_level <= 1, f"largest pixel difference {worst_level} levels"
    assert worst_rel <= 0.001, f"largest outside-MSE difference {worst_rel:.2%}"


def test_a_batch_gives_each_inpainting_what_a_call_of_its_own_gives(tiny_models, scenes):
    """One generator per inpainting: batching two masks and seeds changes nothing."""
    pipe = load_pipeline(tiny_models[4])
    image = Image.open(scenes[0]["image"]).convert("RGB")
    masks = [Image.open(scenes[i]["mask"]).convert("L") for i in (0, 1)]

    def generators(seeds):
        return [torch.Generator("cpu").manual_seed(s) for s in seeds]

    batch, _ = study_inpaint(pipe, image, masks, 0.5, STEPS, generators([3, 4]))
    alone = [
        study_inpaint(pipe, image, [m], 0.5, STEPS, generators([s]))[0][0]
        for m, s in zip(masks, [3, 4], strict=True)
    ]
    for b, a in zip(batch, alone, strict=True):
        assert np.abs(np.asarray(b, dtype=int) - np.asarray(a, dtype=int)).max() <= 1
    assert np.asarray(batch[0]).tobytes() != np.asarray(batch[1]).tobytes()


def test_strength_0_still_runs_one_unet_step(tiny_models, scenes):
    """PNDM has steps + 1 timesteps and 0.11.1 takes them from t_start on."""
    pipe = load_pipeline(tiny_models[4])
    image = Image.open(scenes[0]["image"]).convert("RGB")
    mask = Image.open(scenes[0]["mask"]).convert("L")
    generator = torch.Generator("cpu").manual_seed(0)
    runs = {
        s: study_inpaint(pipe, image, [mask], s, STEPS, [generator])[1] for s in (0.0, 0.5, 1.0)
    }
    assert runs == {0.0: 1, 0.5: 6, 1.0: 11}
    assert {s: steps_run(pipe.scheduler, STEPS, s) for s in (0.0, 0.5, 1.0)} == runs


def test_a_9_channel_model_is_refused_with_the_reason(tiny_models, scenes, tmp_path):
    pipe = load_pipeline(tiny_models[9])
    image = Image.open(scenes[0]["image"]).convert("RGB")
    mask = Image.open(scenes[0]["mask"]).convert("L")
    with pytest.raises(InputError, match="4-channel UNet.*9 channels"):
        study_inpaint(pipe, image, [mask], 0.5, STEPS, [torch.Generator("cpu").manual_seed(0)])
    task = Task("strength_sweep", 40, 0.5, 0, scenes[0]["mask"], str(tmp_path / "out.png"))
    with pytest.raises(
        InputError, match=r"models\.tiny9\.pipeline: the study pipeline needs a 4-ch"
    ):
        run_job(
            str(tiny_models[9]),
            "tiny9",
            scenes[0]["image"],
            "scene",
            [task],
            Settings(steps=STEPS, pipeline="study"),
            str(tmp_path / "manifest.json"),
        )
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "manifest.json").exists()


def test_merged_study_calls_give_what_calls_alone_give(tiny_models, scenes, tmp_path):
    """With a batch size above 1 the study's calls of different strengths share UNet
    evaluations (maskleak.merged_calls) on their own schedules (PNDM's extra step)."""
    scene = scenes[0]
    outputs = {}
    for batch_size in (1, 4):
        tasks = [
            Task(
                "strength_sweep",
                scene["radius"],
                strength,
                seed,
                scene["mask"],
                str(tmp_path / f"b{batch_size}" / f"s{strength}_seed{seed}.png"),
            )
            for strength in (0.0, 0.3, 0.6, 1.0)
            for seed in (0, 1)
        ]
        summary = run_job(
            str(tiny_models[4]),
            "tiny4_study",
            scene["image"],
            "scene",
            tasks,
            Settings(steps=STEPS, pipeline="study", batch_size=batch_size),
            str(tmp_path / f"b{batch_size}.json"),
        )
        outputs[batch_size] = [np.asarray(Image.open(t.inpainted_path), dtype=int) for t in tasks]
        if batch_size > 1:
            # 1 + 4 + 7 + 11 steps per seed, run alone 46 evaluations; merged far fewer.
            assert 0 < summary["unet_evaluations"] < 46
    for alone, merged in zip(outputs[1], outputs[4], strict=True):
        assert np.abs(alone - merged).max() <= 1
