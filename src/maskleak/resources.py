"""Cluster resource requests of an inpaint job, from its amount of work.

A batch scheduler needs runtime and memory up front. Too little and the job is killed;
far too much and it waits in the queue for a slot it does not need. The estimates below
are generous for a T4-class GPU and grow with each retry (Snakemake's ``attempt``), and
a retried inpaint job only computes what its killed attempt had not finished."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from maskleak.pipeline_choice import DEFAULT_PIPELINE, steps_run
from maskleak.study_pipeline import PIPELINE as STUDY_PIPELINE

#: Seconds per denoising step of one 512x512 image for SD 1.5 in fp16 on a T4, the
#: slowest GPU commonly found in clusters (~6-7 steps/s at batch 1); A100/H100 are
#: several times faster, so jobs finish well inside the request there.
GPU_S_PER_STEP_512 = 0.15
#: Model load, CUDA start-up, the VAE round trips and PNG writes of a job, in minutes.
INPAINT_OVERHEAD_MIN = 10
#: Host memory of an inpaint job: the tiny offline models need little; a real
#: checkpoint is read into host memory before it moves to the GPU (SD 1.5: ~4 GB in
#: fp32 safetensors, plus torch and CUDA libraries).
TINY_MODEL_MEM_MB = 2000
CHECKPOINT_MEM_MB = 12000


def unet_steps(
    tasks: Iterable[Mapping[str, Any]], steps: int, pipeline: str = DEFAULT_PIPELINE
) -> int:
    """Denoising steps of all the job's distinct inpaintings (experiments may share one),
    every pass of a repeated one included. The study's pipeline runs up to one step more
    per inpainting (PNDM's extra timestep), counted here without reading the model's
    scheduler: an upper bound (paste-back variants that share a pipeline result count
    again, too)."""
    by_path = {
        path: float(t["strength"])
        for t in tasks
        for path in (t["inpainted_path"], *t.get("pass_paths", ()))
    }
    extra = 1 if pipeline == STUDY_PIPELINE else 0
    return sum(steps_run(steps, strength) + extra for strength in by_path.values())


def inpaint_runtime_min(n_unet_steps: int, max_side: int, attempt: int = 1) -> int:
    """Minutes to request for ``n_unet_steps`` on images of at most ``max_side`` pixels
    per side (cost scales with pixels; a square image is the worst case)."""
    pixels_vs_512 = (max_side / 512) ** 2
    minutes = INPAINT_OVERHEAD_MIN + n_unet_steps * GPU_S_PER_STEP_512 * pixels_vs_512 / 60
    return math.ceil(minutes) * attempt


def inpaint_mem_mb(model_kind: str, attempt: int = 1) -> int:
    """Host memory (MB) to request for an inpaint job with a model of this config kind."""
    base = TINY_MODEL_MEM_MB if model_kind == "tiny" else CHECKPOINT_MEM_MB
    return base * attempt
