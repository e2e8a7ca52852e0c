"""Run many inpaintings of one model on one image in one process, reusing finished ones.

Snakemake deletes a job's declared outputs before it reruns the job, so the PNGs are not
declared outputs: each carries a key (a hash of everything it depends on) in its PNG
record, and a rerun recomputes only the PNGs whose key is missing or different. The
job's declared output is a manifest listing every inpainting it stands for.

With a batch size above 1 (the default on CUDA) every pipeline call of a job runs at once
and the calls share UNet evaluations across strengths (:mod:`maskleak.merged_calls`)."""

from __future__ import annotations

import functools
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from maskleak import gpus, merged_calls, models, pipeline_choice, progress, study_pipeline
from maskleak.batch_size import resolve_batch_size
from maskleak.errors import InputError
from maskleak.images import read_pixels
from maskleak.masks import check_mask
from maskleak.pipeline_choice import Settings
from maskleak.provenance import (
    canonical_json,
    pixel_sha256,
    read_png_record,
    save_png,
    sha256_bytes,
    write_json,
)

log = logging.getLogger("maskleak.inpaint")

InpaintPipeline = models.InpaintPipeline

#: Bumped when the way an inpainting is produced changes, so old PNGs are not reused.
ALGORITHM = "maskleak-inpaint-1"

T = TypeVar("T")

MODE_DENOISE = "denoise"
#: Strengths too small for one denoising step: the image only passes through the VAE.
MODE_VAE_ROUNDTRIP = "vae_roundtrip"
#: Every job's VAE round trip of its image (posterior mode), beside its manifest: the floor
#: the metrics measure each inpainting's outside error against.
VAE_ROUNDTRIP_NAME = "vae_roundtrip.png"


@dataclass(frozen=True)
class Task:
    experiment: str
    radius_pct: float
    strength: float
    seed: int
    mask_path: str
    inpainted_path: str


def inpaint_key(common: Mapping[str, Any], mask_sha: str, strength: float, seed: int) -> str:
    """Hash of everything one inpainting depends on (model weights, settings, device,
    image and mask pixels, strength, seed), but not of batch composition or file names."""
    record = {**common, "mask_sha256": mask_sha, "strength": strength, "seed": seed}
    return sha256_bytes(canonical_json(record).encode())


def run_job(
    model_dir: str,
    model_name: str,
    image_path: str,
    image_name: str,
    tasks: Sequence[Task],
    settings: Settings,
    manifest_path: str,
    device: str = "auto",
    threads: int | None = None,
) -> dict[str, Any]:
    """Make every inpainting in ``tasks`` exist with the right key, then write the manifest.

    Returns counts and timings; the model is loaded only if something must be computed."""
    started = time.perf_counter()
    models.check_model_folder(model_dir)
    if threads:
        import torch

        torch.set_num_threads(threads)
    device = models.resolve_device(device)
    dtype = str(models.resolve_dtype(settings.dtype, device, model_dir)).removeprefix("torch.")
    pipeline_choice.check_pipeline(settings, model_dir, model_name)
    image_pixels = read_pixels(image_path, "RGB")
    image = Image.fromarray(image_pixels)
    common = {
        "algorithm": ALGORITHM,
        "model_fingerprint": models.model_fingerprint(model_dir),
        "settings": pipeline_choice.key_settings(settings),
        "device_type": device.split(":")[0],
        "dtype": dtype,
        "image_sha256": pixel_sha256(image_pixels),
    }

    # A job killed mid-write (scancel, SIGKILL) leaves provenance.atomic_path's temporary
    # files; the resumed job removes them (they are never outputs).
    for folder in {os.path.dirname(task.inpainted_path) or "." for task in tasks}:
        for stale in Path(folder).glob(".*.tmp.png"):
            stale.unlink(missing_ok=True)

    masks: dict[str, np.ndarray] = {}
    for task in tasks:
        if task.mask_path not in masks:
            mask = read_pixels(task.mask_path, "L", "mask")
            # A mask replaced by hand would be inpainted under its radius's label.
            check_mask(mask, task.radius_pct, task.mask_path, image_size=image.size)
            masks[task.mask_path] = mask
    mask_sha = {path: pixel_sha256(mask) for path, mask in masks.items()}

    steps_of = pipeline_choice.steps_counter(settings, model_dir)
    entries: list[dict[str, Any]] = []
    todo: list[tuple[Task, dict[str, Any]]] = []
    pending: set[str] = set()
    for task in tasks:
        key = inpaint_key(common, mask_sha[task.mask_path], task.strength, task.seed)
        n_steps = steps_of(task.strength)
        entry = {
            **asdict(task),
            "steps_run": n_steps,
            # Never 0 steps with the study's pipeline (steps_counter refuses it).
            "mode": MODE_DENOISE if n_steps > 0 else MODE_VAE_ROUNDTRIP,
            "key": key,
        }
        entries.append(entry)
        # Experiments may share an inpainting (same radius, strength, seed): compute it once.
        if task.inpainted_path not in pending and _existing_key(task.inpainted_path) != key:
            pending.add(task.inpainted_path)
            todo.append((task, entry))
    paths = [task.inpainted_path for task in tasks]
    log.info("%s", progress.job_plan_line(paths, len(todo), model_name, image_name, device, dtype))
    floor_path = str(Path(manifest_path).with_name(VAE_ROUNDTRIP_NAME))
    floor_key = sha256_bytes(canonical_json({**common, "floor": MODE_VAE_ROUNDTRIP}).encode())
    floor_missing = _existing_key(floor_path) != floor_key

    computed_s = 0.0
    batching: dict[str, Any] = {}
    load_s = 0.0
    if todo or floor_missing:
        load_started = time.perf_counter()
        pipe = models.load_pipeline(
            model_dir, settings.scheduler, settings.dtype, device, settings.variant
        )
        load_s = time.perf_counter() - load_started
        pipeline_info = {**models.describe(pipe), "pipeline": settings.pipeline}
        # The floor and today's pipeline's strength-0 inpaintings are one round trip:
        # computed once, when first needed.
        roundtrip = functools.cache(functools.partial(pipeline_choice.vae_roundtrip, pipe, image))
        if floor_missing:
            # What no latent-diffusion pipeline goes below: the metrics measure every
            # inpainting's outside error against it.
            floor_record = {"stage": "inpaint", **common, "key": floor_key}
            save_png(roundtrip(), floor_path, {**floor_record, "mode": MODE_VAE_ROUNDTRIP})
        if todo:
            computed_s, batching = _compute(
                pipe, image, masks, todo, settings, device, common, pipeline_info, roundtrip
            )
        log.info("model load %.2f s, %d inpaintings in %.2f s", load_s, len(todo), computed_s)
    log.info(
        "%d inpaintings listed, %d reused, %d computed",
        len(tasks),
        len(tasks) - len(todo),
        len(todo),
    )

    write_json(
        manifest_path,
        {
            "stage": "inpaint",
            "model": model_name,
            "model_dir": str(model_dir),
            "image": image_name,
            "image_path": image_path,
            "pipeline": settings.pipeline,
            "steps": settings.steps,
            "vae_roundtrip_path": floor_path,
            "common": common,
            "inpaintings": entries,
        },
    )
    return {
        "listed": len(tasks),
        "computed": len(todo),
        "model_load_s": load_s,
        "compute_s": computed_s,
        "total_s": time.perf_counter() - started,
        **batching,
    }


def _existing_key(path: str) -> str | None:
    if not os.path.exists(path):
        return None
    try:
        record = read_png_record(path)
    except (OSError, SyntaxError, ValueError):
        # A damaged leftover is simply recomputed and replaced.
        return None
    return None if record is None else record.get("key")


def _compute(
    pipe: InpaintPipeline,
    image: Image.Image,
    masks: Mapping[str, np.ndarray],
    todo: Sequence[tuple[Task, dict[str, Any]]],
    settings: Settings,
    device: str,
    common: Mapping[str, Any],
    pipeline_info: Mapping[str, Any],
    roundtrip: Callable[[], Image.Image],
) -> tuple[float, dict[str, Any]]:
    """Compute and save ``todo``; returns the seconds it took and how it was batched.
    ``roundtrip()``: the image's VAE round trip, for inpaintings that run no step."""
    started = time.perf_counter()

    def save(task: Task, entry: Mapping[str, Any], result: Image.Image) -> None:
        _save(task, entry, result, common, pipeline_info)

    by_strength: dict[float, list[tuple[Task, Mapping[str, Any]]]] = defaultdict(list)
    roundtrips = [(t, e) for t, e in todo if e["mode"] == MODE_VAE_ROUNDTRIP]
    for task, todo_entry in todo:
        if todo_entry["mode"] != MODE_VAE_ROUNDTRIP:
            by_strength[task.strength].append((task, todo_entry))

    # The study's pipeline has its own timesteps (PNDM's extra one at every strength);
    # merged or not, it runs exactly as it runs alone.
    study = settings.pipeline == study_pipeline.PIPELINE
    denoise = pipeline_choice.denoise_study if study else pipeline_choice.denoise
    schedule_of = study_pipeline.schedule if study else merged_calls.schedule
    size = resolve_batch_size(settings.batch_size, device, pipe, image.width * image.height)
    calls = pipeline_calls(by_strength, size)
    merge = merged_calls.should_merge(size, len(calls))
    schedules = {s: schedule_of(pipe.scheduler, settings.steps, s) for s in by_strength}
    planned = [(schedules[s], len(chunk)) for s, chunk in calls]
    tracker = progress.plan_compute(pipe, settings.guidance_scale, len(roundtrips), planned, size)
    if roundtrips:
        for task, todo_entry in roundtrips:
            save(task, todo_entry, roundtrip())
        tracker.finished(len(roundtrips))

    def call(strength: float, chunk: Sequence[tuple[Task, Mapping[str, Any]]], p: Any) -> None:
        mask_images = [Image.fromarray(masks[t.mask_path]) for t, _ in chunk]
        seeds = [t.seed for t, _ in chunk]
        results = denoise(p, image, mask_images, strength, seeds, settings)
        for (done, done_entry), result in zip(chunk, results, strict=True):
            save(done, done_entry, result)
        # Merged calls' evaluations are shared; the merger reports them as they happen.
        tracker.finished(len(chunk), 0 if merge else len(schedules[strength]))

    batching: dict[str, Any] = {"batch_size": size, "pipeline_calls": len(calls)}
    if merge:
        stats = merged_calls.run_merged(
            pipe,
            calls,
            size,
            settings.steps,
            call,
            on_evaluation=tracker.evaluated,
            schedule_of=schedule_of,
        )
        log.info(
            "merged %d pipeline calls: %d UNet evaluations of %.1f images on average",
            len(calls),
            stats["unet_evaluations"],
            stats["unet_images"] / max(stats["unet_evaluations"], 1),
        )
        batching.update(stats)
    else:
        for strength, chunk in calls:
            call(strength, chunk, pipe)
    return time.perf_counter() - started, batching


def _save(
    task: Task,
    entry: Mapping[str, Any],
    result: Image.Image,
    common: Mapping[str, Any],
    pipeline_info: Mapping[str, Any],
) -> None:
    """Write one inpainting with the record that makes it reusable (its key) and says
    how it was made."""
    record = {
        "stage": "inpaint",
        **common,
        "pipeline": dict(pipeline_info),
        "key": entry["key"],
        "radius_pct": task.radius_pct,
        "strength": task.strength,
        "seed": task.seed,
        "steps_run": entry["steps_run"],
        "mode": entry["mode"],
    }
    save_png(result, task.inpainted_path, record)


def pipeline_calls(
    by_strength: Mapping[float, Sequence[T]], size: int
) -> list[tuple[float, Sequence[T]]]:
    """run_job's pipeline calls for items grouped by strength, in the order it makes them:
    one call per strength (it sets the timesteps) and chunk of at most ``size`` items.
    Merged calls start longest schedule (highest strength) first, so the calls that start
    later join a running batch; chunks of one strength keep their order."""
    calls = [
        (strength, group[start : start + size])
        for strength, group in sorted(by_strength.items())
        for start in range(0, len(group), size)
    ]
    if merged_calls.should_merge(size, len(calls)):
        calls.sort(key=lambda call: -call[0])
    return calls


def tasks_from_records(records: Sequence[Mapping[str, Any]]) -> list[Task]:
    """Tasks from plain mappings (as Snakemake params carry them), with a clear error."""
    tasks = []
    for i, rec in enumerate(records):
        try:
            tasks.append(
                Task(
                    experiment=str(rec["experiment"]),
                    radius_pct=float(rec["radius_pct"]),
                    strength=float(rec["strength"]),
                    seed=int(rec["seed"]),
                    mask_path=str(rec["mask_path"]),
                    inpainted_path=str(rec["inpainted_path"]),
                )
            )
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"inpaint task {i} is malformed: {err}") from err
    return tasks


def run_job_from_params(
    model_dir: str,
    model_name: str,
    image_path: str,
    image_name: str,
    tasks: Sequence[Mapping[str, Any]],
    settings: Mapping[str, Any],
    variant: str | None,
    manifest_path: str,
    threads: int | None = None,
) -> dict[str, Any]:
    """``run_job`` from the plain values Snakemake's params carry, on a GPU of its own
    (see :mod:`maskleak.gpus`)."""
    known = {f for f in Settings.__dataclass_fields__ if f != "variant"}
    unknown = set(settings) - known
    if unknown:
        raise InputError(f"config key inpaint: unknown settings {sorted(unknown)}")
    job_tasks = tasks_from_records(tasks)  # bad params fail before waiting for a GPU
    # Claimed before run_job asks torch for a device: that initialises CUDA, after which
    # narrowing CUDA_VISIBLE_DEVICES to the claimed GPU would have no effect.
    with gpus.claim_gpu():
        summary = run_job(
            model_dir,
            model_name,
            image_path,
            image_name,
            job_tasks,
            Settings(**dict(settings), variant=variant),
            manifest_path,
            threads=threads,
        )
    log.info("summary %s", summary)
    return summary
