"""The trained tiny models' folder layout: what ``snakemake train_tiny_models`` writes,
what the repository ships in ``resources/trained``, and how a model entry of kind
``trained`` becomes an ordinary diffusers inpainting folder.

The layout keeps one copy of what the 9- and 4-channel models share::

    <path>/vae/            AutoencoderKL (config.json, safetensors, provenance.json)
    <path>/unet9/          UNet2DConditionModel, SD-inpainting's 9-channel input
    <path>/scheduler9/     SD 1.5's PNDMScheduler, with the prediction type unet9 learned
    <path>/unet4/          UNet2DConditionModel, plain latent diffusion (4 channels)
    <path>/scheduler4/     the same for unet4
    <path>/text_encoder/   CLIPTextModel (the tiny pipeline's, seeded; only "" is encoded)
    <path>/tokenizer/      CLIPTokenizer (offline vocabulary)

Each UNet has its own scheduler because a scheduler's ``prediction_type`` is what its UNet
was trained to predict (noise or velocity), as real checkpoints differ in it (SD 1.5 and
SD 2's 512 px models predict the noise, SD 2's 768 px model the velocity).

``assemble_pipeline`` loads a UNet and the shared parts with ``from_pretrained`` and puts
them in a ``StableDiffusionInpaintPipeline``; saved with ``save_pretrained`` it is a folder
that loads like any checkpoint's, so inpaint jobs take exactly the code path a real model
takes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from maskleak.errors import InputError

#: Where the repository's trained components live (committed, ~15 MB).
TRAINED_DIR = "resources/trained"

#: Components the 9- and 4-channel models share.
SHARED_COMPONENTS = ("vae", "text_encoder", "tokenizer")

#: UNet input channels that have a trained UNet.
UNET_CHANNELS = (4, 9)

#: Every folder of the layout.
COMPONENTS = SHARED_COMPONENTS + tuple(
    f"{part}{n}" for n in UNET_CHANNELS for part in ("unet", "scheduler")
)


def unet_component(unet_in_channels: int) -> str:
    """The subfolder of the UNet with ``unet_in_channels`` input channels: unet4, unet9."""
    if unet_in_channels not in UNET_CHANNELS:
        raise InputError(f"unet_in_channels must be 4 or 9, got {unet_in_channels!r}")
    return f"unet{unet_in_channels}"


def scheduler_component(unet_in_channels: int) -> str:
    """The subfolder of that UNet's scheduler: scheduler4, scheduler9."""
    return "scheduler" + unet_component(unet_in_channels).removeprefix("unet")


#: The repository this package belongs to: the committed layout ships in it.
REPOSITORY = Path(__file__).resolve().parents[2]


def resolve_layout(path: str | Path) -> Path:
    """The layout folder ``path`` names: as given if it exists (absolute, or relative to
    the working directory), else relative to this repository, so the default
    ``resources/trained`` is found also when the workflow runs from another folder (a
    deployed module, a test's copy)."""
    given = Path(path)
    if given.is_absolute() or given.is_dir():
        return given
    shipped = REPOSITORY / given
    return shipped if shipped.is_dir() else given


def component_dirs(path: str | Path, unet_in_channels: int) -> list[Path]:
    """The component folders one trained model is assembled from: its UNet, its
    scheduler, then the shared ones in ``SHARED_COMPONENTS`` order."""
    root = resolve_layout(path)
    own = [unet_component(unet_in_channels), scheduler_component(unet_in_channels)]
    return [root / c for c in own + list(SHARED_COMPONENTS)]


def component_files(path: str | Path, unet_in_channels: int) -> list[str]:
    """Every file of the components :func:`assemble_pipeline` reads, sorted, so a
    workflow rule reruns when any of them changes; a missing component folder is an
    InputError naming it."""
    files: list[str] = []
    for folder in component_dirs(path, unet_in_channels):
        if not folder.is_dir():
            raise InputError(
                f"trained model: no component folder {folder} (train with "
                "`snakemake train_tiny_models`, or restore resources/trained from git)"
            )
        # Hidden files (Snakemake's .snakemake_timestamp in a freshly trained layout)
        # are bookkeeping, not model content.
        files += [str(f) for f in folder.rglob("*") if f.is_file() and not f.name.startswith(".")]
    return sorted(files)


def write_shared_text_parts(folder: str | Path, seed: int) -> None:
    """Save the tiny pipeline's text encoder and tokenizer (seeded with ``seed``, as
    ``build_tiny_pipeline`` makes them) as the layout's ``text_encoder`` and ``tokenizer``
    subfolders. The UNets are trained against this text encoder's embedding of the empty
    prompt, so it ships with them."""
    from maskleak.tiny_models import build_tiny_text_encoder

    root = Path(folder)
    text_encoder, tokenizer = build_tiny_text_encoder(seed)
    text_encoder.save_pretrained(root / "text_encoder", safe_serialization=True)
    tokenizer.save_pretrained(root / "tokenizer")


def write_scheduler(folder: str | Path, prediction_type: str) -> None:
    """Save SD 1.5's PNDMScheduler with ``prediction_type`` (``epsilon`` or
    ``v_prediction``, what the UNet it ships with learned) to ``folder``: the pipelines'
    scheduler steps read the UNet's target from there."""
    from maskleak.tiny_models import sd15_scheduler

    sd15_scheduler(prediction_type).save_pretrained(folder)


def assemble_pipeline(path: str | Path, unet_in_channels: int) -> Any:
    """The ``StableDiffusionInpaintPipeline`` of the trained model with that UNet, every
    component loaded from ``path`` with ``from_pretrained`` (local files only)."""
    from diffusers import (
        AutoencoderKL,
        PNDMScheduler,
        StableDiffusionInpaintPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel, CLIPTokenizer

    unet_dir, scheduler_dir, vae_dir, text_dir, tokenizer_dir = component_dirs(
        path, unet_in_channels
    )
    component_files(path, unet_in_channels)  # every folder there, or a clear error
    return StableDiffusionInpaintPipeline(
        vae=AutoencoderKL.from_pretrained(vae_dir, local_files_only=True),
        text_encoder=CLIPTextModel.from_pretrained(text_dir, local_files_only=True),
        tokenizer=CLIPTokenizer.from_pretrained(tokenizer_dir, local_files_only=True),
        unet=UNet2DConditionModel.from_pretrained(unet_dir, local_files_only=True),
        scheduler=PNDMScheduler.from_pretrained(scheduler_dir, local_files_only=True),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def component_provenance(path: str | Path, unet_in_channels: int) -> dict[str, Any]:
    """Each component's ``provenance.json`` (the trained VAE and UNet write one), by
    component name, for the assembled folder's record."""
    import json

    records: dict[str, Any] = {}
    for folder in component_dirs(path, unet_in_channels):
        record = folder / "provenance.json"
        if record.is_file():
            records[folder.name] = json.loads(record.read_text())
    return records
