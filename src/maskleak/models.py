"""Diffusion models: load a local diffusers folder through the one code path a real Stable
Diffusion checkpoint uses (``StableDiffusionInpaintPipeline.from_pretrained``), after
checking its layout, with the dtype and device resolved; describe what a result depends on.

Building the offline models lives in :mod:`maskleak.tiny_models`, making and fingerprinting
model folders (``get_model``) in :mod:`maskleak.model_folders`; their public names are
re-exported here, where callers import them."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maskleak.errors import InputError
from maskleak.model_folders import (
    HUB_ALLOW_PATTERNS,
    HUB_WEIGHT_DIRS,
    RECORD_FILE,
    download_model,
    get_model,
    model_fingerprint,
    save_tiny_model,
)
from maskleak.provenance import canonical_json
from maskleak.tiny_models import (
    InpaintPipeline,
    build_sd15_like_pipeline,
    build_tiny_pipeline,
    sd15_scheduler,
    set_block_mean_vae,
)

if TYPE_CHECKING:
    import torch

__all__ = [
    "DTYPES",
    "HUB_ALLOW_PATTERNS",
    "HUB_WEIGHT_DIRS",
    "MODEL_PARTS",
    "RECORD_FILE",
    "SCHEDULERS",
    "InpaintPipeline",
    "build_sd15_like_pipeline",
    "build_tiny_pipeline",
    "call_copy",
    "check_model_folder",
    "describe",
    "download_model",
    "get_model",
    "load_pipeline",
    "load_scheduler",
    "model_fingerprint",
    "resolve_device",
    "resolve_dtype",
    "save_tiny_model",
    "sd15_scheduler",
    "set_block_mean_vae",
    "settings_digest",
    "unet_in_channels",
]

#: Scheduler names accepted in config; "default" keeps the checkpoint's own scheduler.
SCHEDULERS = {
    "pndm": "PNDMScheduler",
    "ddim": "DDIMScheduler",
    "euler": "EulerDiscreteScheduler",
    "euler_ancestral": "EulerAncestralDiscreteScheduler",
    "dpmpp_2m": "DPMSolverMultistepScheduler",
    "unipc": "UniPCMultistepScheduler",
    "lms": "LMSDiscreteScheduler",
}

DTYPES = ("auto", "float32", "float16", "bfloat16")

#: The parts of a model folder StableDiffusionInpaintPipeline.from_pretrained loads, each
#: with the files it needs ("a|b+c": a, or b and c), and whether it needs weights (named
#: by variant and sharding: any *.safetensors or *.bin). Its optional parts
#: (safety_checker, feature_extractor, image_encoder) are never loaded.
MODEL_PARTS: dict[str, tuple[tuple[str, ...], bool]] = {
    "unet": (("config.json",), True),
    "vae": (("config.json",), True),
    "text_encoder": (("config.json",), True),
    # Without these, CLIPTokenizer loads anyway: with 2 tokens, or no length limit.
    "tokenizer": (("tokenizer_config.json", "tokenizer.json|vocab.json+merges.txt"), False),
    "scheduler": (("scheduler_config.json",), False),
}


def resolve_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(
    dtype: str, device: str, model_dir: str | os.PathLike[str] | None = None
) -> torch.dtype:
    """``auto`` is float16 on CUDA (the study's setting) and float32 elsewhere, and
    float32 everywhere for the project's tiny models: their set-weight VAE is exact only
    in float32 (on an H200, float16 put their inpaintings up to 255 levels, 27 on
    average, from the CPU's float32 ones; float32 on CUDA stays within 3)."""
    import torch

    if dtype not in DTYPES:
        raise InputError(f"inpaint.dtype must be one of {DTYPES}, got {dtype!r}")
    if dtype == "auto":
        half = device.startswith("cuda") and not _is_tiny(model_dir)
        dtype = "float16" if half else "float32"
    return getattr(torch, dtype)


def _is_tiny(model_dir: str | os.PathLike[str] | None) -> bool:
    if model_dir is None:
        return False
    record = Path(model_dir) / RECORD_FILE
    try:
        return json.loads(record.read_text()).get("kind") == "tiny"
    except (OSError, ValueError):
        return False  # a folder this project did not build: a real checkpoint


def check_model_folder(model_dir: str | os.PathLike[str]) -> None:
    """Raise a one-line InputError naming the folder and the first missing part, where
    ``model_dir`` lacks something :data:`MODEL_PARTS` lists: diffusers' own errors name
    a file and a folder but not what is wrong, and a tokenizer it loads silently."""
    folder = Path(model_dir)
    needs = ", ".join(["model_index.json"] + [f"{part}/" for part in MODEL_PARTS])
    where = f"model folder {folder}:"

    def missing(what: str) -> InputError:
        return InputError(f"{where} missing {what} (a diffusers folder needs {needs})")

    if not folder.is_dir():
        raise InputError(f"{where} not found (or not a folder)")
    if not (folder / "model_index.json").is_file():
        raise missing("model_index.json")
    try:
        index = json.loads((folder / "model_index.json").read_text())
    except (OSError, ValueError) as err:
        raise InputError(f"{where} model_index.json is not valid JSON: {err}") from err
    for part, (files, weighted) in MODEL_PARTS.items():
        entry = index.get(part) if isinstance(index, dict) else None
        if not isinstance(entry, list) or None in entry:
            raise InputError(f"{where} model_index.json lists no {part} (a pipeline needs {needs})")
        if not (folder / part).is_dir():
            raise missing(f"{part}/")
        for alternatives in files:
            options = [option.split("+") for option in alternatives.split("|")]
            if not any(all((folder / part / f).is_file() for f in opt) for opt in options):
                raise missing(" or ".join(" and ".join(f"{part}/{f}" for f in o) for o in options))
        weights = [p for p in (folder / part).iterdir() if p.suffix in (".safetensors", ".bin")]
        if weighted and not weights:
            raise missing(f"{part}/ weights (*.safetensors or *.bin)")


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """Loading without diffusers' and transformers' tqdm bars, whose carriage returns and
    escapes would garble a job's log file."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    shown = [m for m in (diffusers_logging, transformers_logging) if m.is_progress_bar_enabled()]
    for module in shown:
        module.disable_progress_bar()
    try:
        yield
    finally:
        for module in shown:
            module.enable_progress_bar()


def load_pipeline(
    model_dir: str | os.PathLike[str],
    scheduler: str = "default",
    dtype: str = "auto",
    device: str = "auto",
    variant: str | None = None,
) -> InpaintPipeline:
    """Load a local diffusers folder exactly as a real checkpoint is loaded."""
    from diffusers import StableDiffusionInpaintPipeline
    from diffusers import schedulers as diffusers_schedulers

    folder = Path(model_dir)
    check_model_folder(folder)
    _check_scheduler_name(scheduler)
    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device, folder)
    with _no_progress_bars():
        # The optional parts as None: a checkpoint's model_index.json lists a
        # feature_extractor that download_model does not fetch and the job never uses.
        pipe = StableDiffusionInpaintPipeline.from_pretrained(
            folder,
            dtype=torch_dtype,
            variant=variant,
            safety_checker=None,
            feature_extractor=None,
            image_encoder=None,
            requires_safety_checker=False,
            local_files_only=True,
        )
    if scheduler != "default":
        scheduler_cls = getattr(diffusers_schedulers, SCHEDULERS[scheduler])
        pipe.scheduler = scheduler_cls.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def _check_scheduler_name(scheduler: str) -> None:
    if scheduler != "default" and scheduler not in SCHEDULERS:
        raise InputError(
            f"inpaint.scheduler must be 'default' or one of {sorted(SCHEDULERS)}, got {scheduler!r}"
        )


def load_scheduler(model_dir: str | os.PathLike[str], scheduler: str = "default") -> Any:
    """The scheduler :func:`load_pipeline` gives the pipeline, without loading any weights:
    for knowing a job's timesteps before deciding whether to load the model."""
    from diffusers import schedulers as diffusers_schedulers

    _check_scheduler_name(scheduler)
    config = _read_part_config(model_dir, "scheduler", "scheduler_config.json")
    name = SCHEDULERS[scheduler] if scheduler != "default" else config.get("_class_name")
    scheduler_cls = getattr(diffusers_schedulers, str(name), None)
    if scheduler_cls is None:
        raise InputError(f"model folder {model_dir}: unknown scheduler class {name!r}")
    return scheduler_cls.from_config(config)


def unet_in_channels(model_dir: str | os.PathLike[str]) -> int:
    """Input channels of the folder's UNet (4: plain SD, 9: an inpainting checkpoint)."""
    return int(_read_part_config(model_dir, "unet", "config.json")["in_channels"])


def _read_part_config(model_dir: str | os.PathLike[str], part: str, name: str) -> dict[str, Any]:
    path = Path(model_dir) / part / name
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise InputError(f"model folder {model_dir}: cannot read {part}/{name}: {err}") from err
    if not isinstance(config, dict):
        raise InputError(f"model folder {model_dir}: {part}/{name} is not a JSON object")
    return config


def call_copy(pipe: InpaintPipeline) -> InpaintPipeline:
    """A pipeline that shares ``pipe``'s models but has a scheduler of its own, so that
    calls can run concurrently: a scheduler holds per-call state (PNDM its past model
    outputs)."""
    import copy

    components = {**pipe.components, "scheduler": copy.deepcopy(pipe.scheduler)}
    worker = type(pipe)(**components, requires_safety_checker=False)
    worker.set_progress_bar_config(disable=True)
    return worker


def describe(pipe: InpaintPipeline) -> dict[str, Any]:
    """What a result depends on beyond its inputs: architecture facts worth recording."""
    return {
        "unet_in_channels": int(pipe.unet.config.in_channels),
        "vae_scale_factor": int(pipe.vae_scale_factor),
        "scheduler": type(pipe.scheduler).__name__,
        "dtype": str(pipe.unet.dtype).removeprefix("torch."),
        "device": str(pipe.device),
    }


def settings_digest(settings: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(settings).encode()).hexdigest()
