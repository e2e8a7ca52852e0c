"""Saving a trained component (the tiny VAE, a tiny UNet) as a diffusers folder with the
record of what made it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def parameter_count(model: Any) -> int:
    """Number of trainable scalars (float32, so 4 bytes each in a safetensors file)."""
    return sum(p.numel() for p in model.parameters())


def save_component(model: Any, folder: str | Path, provenance: Mapping[str, Any]) -> Path:
    """Save ``model`` (a diffusers ``ModelMixin``) as a diffusers folder (``config.json``
    and ``diffusion_pytorch_model.safetensors``: what ``from_pretrained`` and a pipeline's
    subfolder load) plus ``provenance.json``: ``provenance`` (seed, steps, loss summary,
    data, ... as the caller records them) with the model config, parameter count and
    versions added. Returns the folder."""
    from maskleak.provenance import public_mode, versions, write_json

    target = Path(folder)
    model.save_pretrained(target, safe_serialization=True)
    # safetensors writes its file private (0600); a saved model is an output like any other.
    for path in target.iterdir():
        public_mode(path, directory=path.is_dir())
    record = {
        **dict(provenance),
        "config": {k: v for k, v in model.config.items() if not k.startswith("_")},
        "parameters": parameter_count(model),
        "versions": versions(),
    }
    write_json(target / "provenance.json", record)
    return target
