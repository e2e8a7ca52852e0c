"""Merged pipeline calls: the UNet evaluations of calls at different strengths packed into
shared batches, on the real tiny pipelines (CPU)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from maskleak import merged_calls
from maskleak.batch_size import auto_batch_size, resolve_batch_size
from maskleak.errors import InputError
from maskleak.images import read_pixels
from maskleak.inpaint import Settings, Task, pipeline_calls, run_job
from maskleak.masks import circle_mask
from maskleak.models import RECORD_FILE, load_pipeline, resolve_dtype, sd15_scheduler

REPO = Path(__file__).resolve().parents[1]


def sweep(out: Path, scene: dict[str, str]) -> list[Task]:
    """A strength sweep (one inpainting per strength, schedules that start on PNDM's
    repeated timestep included) and a mask-size sweep at one strength."""
    strengths = [Task("s", 80.0, s, 0, scene["mask80"], str(out / f"s{s}.png")) for s in STRENGTHS]
    sizes = [
        Task("m", r, 0.5, seed, scene[f"mask{r:g}"], str(out / f"m{r:g}_{seed}.png"))
        for r in (40.0, 80.0)
        for seed in (0, 1, 2)
    ]
    return strengths + sizes


STRENGTHS = (1.0, 0.95, 0.9, 0.55, 0.5, 0.3, 0.1)
STEPS = 20


def run(model: Path, scene, out: Path, batch: int) -> tuple[dict, list[np.ndarray]]:
    tasks = sweep(out, scene)
    settings = Settings(steps=STEPS, batch_size=batch)
    summary = run_job(
        str(model), "tiny", scene["image"], "image", tasks, settings, str(out / "m.json")
    )
    return summary, [read_pixels(t.inpainted_path, "RGB") for t in tasks]


@pytest.mark.parametrize("channels", [4, 9])
def test_merged_calls_give_the_one_at_a_time_pixels(tiny_models, scene, tmp_path, channels):
    alone, pixels_alone = run(tiny_models[channels], scene, tmp_path / "alone", 1)
    merged, pixels_merged = run(tiny_models[channels], scene, tmp_path / "merged", 4)
    # The strength sweep's 0.5 and the mask-size sweep's radius 80 seed 0 are one
    # inpainting (same key): computed once, saved under both names. 13 tasks, 12 calls.
    assert "unet_evaluations" not in alone and alone["pipeline_calls"] == 12
    assert alone["listed"] == 13 and alone["computed"] == 13
    # 6 strength calls of 1 image; strength 0.5 holds 6 distinct inpaintings: 2 calls (4 + 2).
    assert merged["pipeline_calls"] == 8
    # Only the batch each UNet evaluation is part of differs: on the CPU in float32 at
    # most one 8-bit level (measured: 0 for most images).
    worst = max(
        int(np.abs(a.astype(int) - b).max())
        for a, b in zip(pixels_alone, pixels_merged, strict=True)
    )
    assert worst <= 1


def test_merging_packs_later_schedules_into_running_batches(tiny_models, scene, tmp_path):
    """Strength 1 runs 11 UNet evaluations at 10 PNDM steps, strength 0.5 the last 6 of
    them: merged at batch 2 that is 11 evaluations of 17 images instead of 17 calls."""
    out = tmp_path / "out"
    tasks = [Task("s", 80.0, s, 0, scene["mask80"], str(out / f"{s}.png")) for s in (1.0, 0.5)]
    summary = run_job(
        str(tiny_models[4]),
        "tiny",
        scene["image"],
        "image",
        tasks,
        Settings(steps=10, batch_size=2),
        str(out / "m.json"),
    )
    assert (summary["unet_evaluations"], summary["unet_images"]) == (11, 17)
    # Counted ahead, for the job's plan line, by the merger on a stand-in UNet.
    schedules = [merged_calls.schedule(sd15_scheduler(), 10, s) for s in (1.0, 0.5)]
    assert merged_calls.planned_evaluations([(t, 1) for t in schedules], 2) == 11
    # Classifier-free guidance evaluates each image twice: 2 rows fill a batch of 2.
    assert merged_calls.planned_evaluations([(t, 1) for t in schedules], 2, 2) == 17


def test_schedule_is_what_the_pipeline_calls_the_unet_at(tiny_models, scene):
    pipe = load_pipeline(tiny_models[4])
    seen: list[float] = []
    unet = pipe.unet

    def spy(sample, timestep, **kwargs):
        seen.append(float(timestep))
        return unet(sample, timestep, **kwargs)

    object.__setattr__(
        pipe,
        "unet",
        type(
            "Spy",
            (),
            {
                "__call__": lambda s, *a, **k: spy(*a, **k),
                "__getattr__": lambda s, n: getattr(unet, n),
            },
        )(),
    )
    for strength in (1.0, 0.9, 0.37):
        seen.clear()
        pipe(
            prompt="",
            image=Image.open(scene["image"]),
            mask_image=Image.open(scene["mask80"]),
            strength=strength,
            num_inference_steps=STEPS,
            guidance_scale=0.0,
            height=64,
            width=96,
        )
        assert seen == merged_calls.schedule(sd15_scheduler(), STEPS, strength)


def test_a_failing_call_fails_the_job_and_stops(tiny_models, tmp_path):
    """An image whose size is not a multiple of 8 fails inside every pipeline call; the
    merged job raises the pipeline's error instead of waiting for the UNet forever."""
    image = tmp_path / "odd.png"
    Image.fromarray(np.full((60, 90, 3), 128, np.uint8)).save(image)
    mask = tmp_path / "mask.png"
    circle_mask(90, 60, 80).save(mask)
    tasks = [Task("s", 80.0, s, 0, str(mask), str(tmp_path / f"{s}.png")) for s in (1.0, 0.5)]
    with pytest.raises(ValueError, match="divisible by 8"):
        run_job(
            str(tiny_models[4]),
            "tiny",
            str(image),
            "odd",
            tasks,
            Settings(steps=4, batch_size=2),
            str(tmp_path / "m.json"),
        )
    assert not list(tmp_path.glob("*.json"))


SCHEDULE = (3.0, 2.0, 1.0)


def walk(unet, timesteps) -> None:
    """What a one-image pipeline call does to its UNet, with stand-in tensors."""
    for t in timesteps:
        unet(
            torch.zeros(1, 1),
            torch.tensor(t),
            encoder_hidden_states=torch.zeros(1, 1),
            return_dict=False,
        )


def test_live_image_cap_starts_calls_in_waves():
    """With room for 2 images of calls at a time, 3 one-image calls of one schedule run
    as 2 then 1: evaluations of 2 images, then of 1."""
    sizes: list[int] = []

    def unet(sample, timestep, **kwargs):
        sizes.append(int(sample.shape[0]))
        return (sample,)

    def call(proxy):
        walk(proxy, SCHEDULE)

    seen: list[int] = []
    merger = merged_calls.UNetMerger(
        unet, max_batch=4, max_live_images=2, on_evaluation=seen.append
    )
    merger.run([merged_calls.Call(SCHEDULE, 1, call) for _ in range(3)])
    assert sizes == [2, 2, 2, 1, 1, 1]
    assert seen == [1, 2, 3, 4, 5, 6]  # the progress hook, after each evaluation


def test_auto_batch_size_from_gpu_memory():
    weights = 2_130_000_000  # SD 1.5 in float16
    study = 640 * 416
    assert auto_batch_size(80 * 2**30, weights, study, 2) == 16
    # A 16 GB T4: 0.6 * 15.6e9 - weights leaves 7.23e9 bytes, 545 MB per image.
    assert auto_batch_size(15_600_000_000, weights, study, 2) == 13
    assert auto_batch_size(15_600_000_000, weights, 1024 * 1024, 2) == 3
    assert auto_batch_size(4 * 2**30, weights, 1024 * 1024, 4) == 1


def test_batch_size_auto_is_1_on_cpu_and_bad_values_name_the_key():
    assert resolve_batch_size("auto", "cpu", None, 100) == 1
    assert resolve_batch_size(6, "cuda", None, 100) == 6
    for bad in (0, "8", 2.5, True):
        with pytest.raises(InputError, match="inpaint.batch_size"):
            resolve_batch_size(bad, "cpu", None, 100)


def test_auto_dtype_keeps_tiny_models_in_float32(tiny_models, tmp_path):
    assert json.loads((tiny_models[4] / RECORD_FILE).read_text())["kind"] == "tiny"
    assert resolve_dtype("auto", "cuda", tiny_models[4]) == torch.float32
    assert resolve_dtype("auto", "cuda", tmp_path) == torch.float16  # no record: a checkpoint
    assert resolve_dtype("auto", "cpu", tmp_path) == torch.float32
    assert resolve_dtype("float16", "cuda", tiny_models[4]) == torch.float16


def test_projection_packs_like_the_real_job(tiny_models, scene, tmp_path):
    """bench/projection.py counts a job's merged UNet evaluations with the real merger on
    a stand-in UNet: the same count a real run_job makes."""
    sys.path.insert(0, str(REPO / "bench"))
    import projection

    merged, _ = run(tiny_models[4], scene, tmp_path / "merged", 4)
    by_strength: dict[float, list[Task]] = {}
    distinct = {(t.radius_pct, t.strength, t.seed): t for t in sweep(tmp_path / "x", scene)}
    for task in distinct.values():  # the job computes an inpainting two tasks share once
        by_strength.setdefault(task.strength, []).append(task)
    calls = [
        (merged_calls.schedule(sd15_scheduler(), STEPS, strength), len(chunk))
        for strength, chunk in pipeline_calls(by_strength, 4)
    ]
    packed = projection.packing(calls, 4)
    assert len(packed) == merged["unet_evaluations"]
    assert sum(sum(m.values()) for m in packed) == merged["unet_images"]


def test_an_interrupt_releases_every_waiting_call():
    """Ctrl-C in the coordinating thread while calls wait for the UNet: run() raises
    KeyboardInterrupt and returns, its threads ended, instead of waiting forever."""
    import faulthandler
    import signal
    import threading

    main = threading.main_thread().ident
    before = threading.active_count()

    def unet(sample, timestep, **kwargs):
        return (sample,)

    def call(proxy):
        signal.pthread_kill(main, signal.SIGINT)
        walk(proxy, SCHEDULE)

    merger = merged_calls.UNetMerger(unet, max_batch=2)
    faulthandler.dump_traceback_later(60, exit=True)  # a hang fails the run, not stalls it
    try:
        with pytest.raises(KeyboardInterrupt):
            merger.run([merged_calls.Call(SCHEDULE, 1, call) for _ in range(2)])
    finally:
        faulthandler.cancel_dump_traceback_later()
    assert threading.active_count() == before
