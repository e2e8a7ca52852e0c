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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from maskleak import gpus, mask_specs, mechanisms, models, pipeline_choice, progress
from maskleak.errors import InputError
from maskleak.images import read_pixels
from maskleak.inpaint_compute import MODE_DENOISE, MODE_VAE_ROUNDTRIP, Item, compute
from maskleak.inpaint_compute import pipeline_calls as pipeline_calls
from maskleak.mask_specs import check_mask_file
from maskleak.mechanisms import Mechanisms
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

#: Every job's VAE round trip of its image (posterior mode), beside its manifest: the floor
#: the metrics measure each inpainting's outside error against.
VAE_ROUNDTRIP_NAME = "vae_roundtrip.png"
#: The same with a posterior sample (seed :data:`FLOOR_SAMPLE_SEED`): the floor of the
#: pipelines that sample, which SD's near-deterministic VAE keeps close to the mode's.
VAE_ROUNDTRIP_SAMPLE_NAME = "vae_roundtrip_sample.png"
FLOOR_SAMPLE_SEED = 0
#: Pass k of a repeated inpainting draws from seed + (k - 1) * this: a new draw per pass,
#: never another seed's pass 1 for seeds below it.
PASS_SEED_STRIDE = 1_000_000


@dataclass(frozen=True)
class Task:
    """One inpainting of a job: ``inpainted_path`` is its (first pass's) PNG;
    ``pass_paths`` those of passes 2, 3, ... of a variant with several passes."""

    experiment: str
    #: The disc's radius percentage; None for masks of other shapes.
    radius_pct: float | None
    strength: float
    seed: int
    mask_path: str
    inpainted_path: str
    variant: str = mechanisms.BASELINE
    #: None: the job's pipeline as it ships (mechanisms.pipeline_defaults).
    mechanisms: Mechanisms | None = None
    pass_paths: tuple[str, ...] = ()
    #: What draws the mask (maskleak.mask_specs.MaskSpec.record); None: the study's disc
    #: of ``radius_pct``.
    mask: Mapping[str, Any] | None = None

    @property
    def mask_record(self) -> dict[str, Any]:
        if self.mask is not None:
            return dict(self.mask)
        if self.radius_pct is None:
            raise InputError(f"inpaint task {self.inpainted_path}: neither a mask nor a radius")
        return mask_specs.disc_record(self.radius_pct)


def inpaint_key(
    common: Mapping[str, Any],
    mask_sha: str,
    strength: float,
    seed: int,
    changed: Mapping[str, Any] | None = None,
    pass_number: int = 1,
    previous: str | None = None,
) -> str:
    """Hash of everything one inpainting depends on (model weights, settings, device,
    image and mask pixels, strength, seed; the mechanisms ``changed`` from the pipeline's
    own (mechanisms.differences); for a later pass, its number and the key of the pass
    it starts from), but not of batch composition or file names. The pipeline's own
    first passes keep the keys they had before variants existed."""
    record = {**common, "mask_sha256": mask_sha, "strength": strength, "seed": seed}
    if changed:
        record["mechanisms"] = dict(changed)
    if pass_number > 1:
        record["pass"] = pass_number
        record["previous"] = previous
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
    dtype = _dtype_name(settings.dtype, device, model_dir)
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
            record = task.mask_record
            # A mask replaced by hand would be inpainted under this mask's name.
            check_mask_file(mask, record, task.mask_path, image.size)
            masks[task.mask_path] = _pipeline_mask(mask, record)
    mask_sha = {path: pixel_sha256(mask) for path, mask in masks.items()}

    steps_of = pipeline_choice.steps_counter(settings, model_dir)
    entries, todo = _plan_items(tasks, settings, common, mask_sha, steps_of, device)
    paths = [entry["inpainted_path"] for entry in entries]
    log.info("%s", progress.job_plan_line(paths, len(todo), model_name, image_name, device, dtype))
    floor_path = str(Path(manifest_path).with_name(VAE_ROUNDTRIP_NAME))
    floor_key = sha256_bytes(canonical_json({**common, "floor": MODE_VAE_ROUNDTRIP}).encode())
    sample_path = str(Path(manifest_path).with_name(VAE_ROUNDTRIP_SAMPLE_NAME))
    sample_record = {**common, "floor": "vae_roundtrip_sample", "seed": FLOOR_SAMPLE_SEED}
    sample_key = sha256_bytes(canonical_json(sample_record).encode())
    floor_missing = _existing_key(floor_path) != floor_key
    sample_missing = _existing_key(sample_path) != sample_key

    computed_s = 0.0
    batching: dict[str, Any] = {}
    load_s = 0.0
    if todo or floor_missing or sample_missing:
        load_started = time.perf_counter()
        pipe = models.load_pipeline(
            model_dir, settings.scheduler, settings.dtype, device, settings.variant
        )
        load_s = time.perf_counter() - load_started
        # The floor and today's pipeline's strength-0 inpaintings are one round trip:
        # computed once, when first needed.
        roundtrip = functools.cache(functools.partial(pipeline_choice.vae_roundtrip, pipe, image))
        if floor_missing:
            # What no latent-diffusion pipeline goes below: the metrics measure every
            # inpainting's outside error against it.
            floor_record = {"stage": "inpaint", **common, "key": floor_key}
            save_png(roundtrip(), floor_path, {**floor_record, "mode": MODE_VAE_ROUNDTRIP})
        if sample_missing:
            sample = pipeline_choice.vae_roundtrip(pipe, image, FLOOR_SAMPLE_SEED)
            save_png(sample, sample_path, {"stage": "inpaint", **sample_record, "key": sample_key})
        # A variant with a dtype of its own runs on a copy of the pipeline in that dtype.
        by_dtype: dict[str, list[Item]] = {}
        for item in todo:
            wanted = item.mechanisms.dtype
            resolved = dtype if wanted is None else _dtype_name(wanted, device, model_dir)
            by_dtype.setdefault(resolved, []).append(item)
        for item_dtype, items in by_dtype.items():
            run_pipe, run_roundtrip = pipe, roundtrip
            if item_dtype != dtype:
                load_started = time.perf_counter()
                run_pipe = models.load_pipeline(
                    model_dir, settings.scheduler, item_dtype, device, settings.variant
                )
                load_s += time.perf_counter() - load_started
                run_roundtrip = functools.cache(
                    functools.partial(pipeline_choice.vae_roundtrip, run_pipe, image)
                )
            info = {**models.describe(run_pipe), "pipeline": settings.pipeline}
            seconds, stats = compute(
                run_pipe, image, masks, items, settings, device, common, info, run_roundtrip
            )
            computed_s += seconds
            for name, value in stats.items():
                batching[name] = value if name == "batch_size" else batching.get(name, 0) + value
        log.info("model load %.2f s, %d inpaintings in %.2f s", load_s, len(todo), computed_s)
    log.info(
        "%d inpaintings listed, %d reused, %d computed",
        len(entries),
        len(entries) - len(todo),
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
            "unet_in_channels": models.unet_in_channels(model_dir),
            "vae_roundtrip_path": floor_path,
            "vae_roundtrip_sample_path": sample_path,
            "common": common,
            "inpaintings": entries,
        },
    )
    return {
        "listed": len(entries),
        "computed": len(todo),
        "model_load_s": load_s,
        "compute_s": computed_s,
        "total_s": time.perf_counter() - started,
        **batching,
    }


def _plan_items(
    tasks: Sequence[Task],
    settings: Settings,
    common: Mapping[str, Any],
    mask_sha: Mapping[str, str],
    steps_of: Callable[[float], int],
    device: str,
) -> tuple[list[dict[str, Any]], list[Item]]:
    """The manifest's entries (one per PNG: every pass of every task) and the PNGs to
    compute: those whose key is missing or different, each path once (experiments and
    variants that come to the same inpainting share its PNG), with every earlier pass
    they start from."""
    entries: list[dict[str, Any]] = []
    todo: list[Item] = []
    planned: set[str] = set()
    for task in tasks:
        mask = task.mask_record
        mech = task.mechanisms or mechanisms.pipeline_defaults(settings.pipeline)
        _check_task_mechanisms(task, mech, device)
        changed = mechanisms.differences(settings.pipeline, mech)
        raw_changed = {k: v for k, v in changed.items() if k not in mechanisms.PASTE_FIELDS}
        n_steps = steps_of(task.strength)
        mode = MODE_DENOISE if n_steps > 0 else MODE_VAE_ROUNDTRIP
        previous: str | None = None
        previous_path: str | None = None
        stale = False  # an earlier pass is recomputed: every later one is too
        for number, path in enumerate((task.inpainted_path, *task.pass_paths), start=1):
            args = (common, mask_sha[task.mask_path], task.strength, task.seed)
            key = inpaint_key(*args, changed, number, previous)
            seed = task.seed + PASS_SEED_STRIDE * (number - 1)
            record = {
                "key": key,
                "radius_pct": task.radius_pct,
                "mask_id": mask["mask_id"],
                "strength": task.strength,
                "seed": task.seed,
                "variant": task.variant,
                "pass": number,
                "pass_seed": seed,
                "mechanisms": mech.record(),
                "steps_run": n_steps,
                "mode": mode,
            }
            entry = {
                **{
                    k: v
                    for k, v in asdict(task).items()
                    if k not in ("mechanisms", "pass_paths", "mask")
                },
                "mask": mask,
                "inpainted_path": path,
                "pass": number,
                "mechanisms": mech.record(),
                # Never 0 steps with the study's pipeline (steps_counter refuses it).
                "steps_run": n_steps,
                "mode": mode,
                "key": key,
            }
            entries.append(entry)
            stale = stale or _existing_key(path) != key
            if stale and path not in planned:
                planned.add(path)
                todo.append(
                    Item(
                        path=path,
                        key=key,
                        raw_key=inpaint_key(*args, raw_changed, number, previous),
                        pass_number=number,
                        previous_path=previous_path,
                        strength=task.strength,
                        seed=seed,
                        mask_path=task.mask_path,
                        mechanisms=mech,
                        record=record,
                    )
                )
            previous, previous_path = key, path
    return entries, todo


def _pipeline_mask(mask: np.ndarray, record: Mapping[str, Any]) -> np.ndarray:
    """The mask the pipeline gets: the drawn one, or with the record's ``blur_px``, that
    mask through diffusers' own ``VaeImageProcessor.blur`` (``mask_processor.blur``, a
    Gaussian of ``blur_px``). Its pixels, and so the inpaintings' keys, differ from the
    drawn mask's; paste-back then composites with it too, as diffusers' examples do.

    Today's pipeline binarises the mask at 0.5 (grey >= 128), so a blur reshapes the mask
    rather than softening it; a blur that leaves no grey >= 128 would inpaint nothing and
    is an InputError naming the config key."""
    blur_px = float(record.get("blur_px") or 0)
    if not blur_px:
        return mask
    from diffusers.image_processor import VaeImageProcessor

    blurred = np.asarray(VaeImageProcessor.blur(Image.fromarray(mask), blur_px))  # type: ignore[arg-type]
    if not (blurred >= 128).any():
        raise InputError(
            f"config key {record.get('key')}.blur_px: blurring mask {record['mask_id']} by "
            f"{blur_px:g} px leaves no pixel >= 128, and the pipeline binarises at 0.5: "
            "nothing would be inpainted; use a smaller blur"
        )
    return blurred


def _check_task_mechanisms(task: Task, mech: Mechanisms, device: str) -> None:
    """A task's passes match its mechanisms, and its dtype runs on this job's device."""
    if len(task.pass_paths) + 1 != mech.passes:
        raise InputError(
            f"inpaint task {task.inpainted_path}: {mech.passes} passes but "
            f"{len(task.pass_paths) + 1} paths"
        )
    if mech.dtype == "float16" and not device.startswith("cuda"):
        raise InputError(
            f"config key variants.{task.variant}.dtype: float16 needs a CUDA device; this "
            f"inpaint job runs on {device} (use float32 or bfloat16 there)"
        )


def _dtype_name(wanted: str, device: str, model_dir: str) -> str:
    return str(models.resolve_dtype(wanted, device, model_dir)).removeprefix("torch.")


def _existing_key(path: str) -> str | None:
    if not os.path.exists(path):
        return None
    try:
        record = read_png_record(path)
    except (OSError, SyntaxError, ValueError):
        # A damaged leftover is simply recomputed and replaced.
        return None
    return None if record is None else record.get("key")


def tasks_from_records(records: Sequence[Mapping[str, Any]]) -> list[Task]:
    """Tasks from plain mappings (as Snakemake params carry them), with a clear error."""
    tasks = []
    for i, rec in enumerate(records):
        try:
            mech = rec.get("mechanisms")
            tasks.append(
                Task(
                    experiment=str(rec["experiment"]),
                    radius_pct=None if rec.get("radius_pct") is None else float(rec["radius_pct"]),
                    strength=float(rec["strength"]),
                    seed=int(rec["seed"]),
                    mask_path=str(rec["mask_path"]),
                    inpainted_path=str(rec["inpainted_path"]),
                    variant=str(rec.get("variant", mechanisms.BASELINE)),
                    mechanisms=None if mech is None else Mechanisms(**mech),
                    pass_paths=tuple(str(p) for p in rec.get("pass_paths", ())),
                    mask=rec.get("mask"),
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
