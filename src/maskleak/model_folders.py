"""Model folders: make the local diffusers folder a config entry asks for (build the tiny
model, or download a hub checkpoint's inpainting files), record its provenance inside it,
and fingerprint its content."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from maskleak.errors import InputError
from maskleak.provenance import public_mode, sha256_file, versions
from maskleak.tiny_models import build_tiny_pipeline
from maskleak.trained_models import TRAINED_DIR, assemble_pipeline, component_provenance

#: Written into every model folder this project makes; excluded from the fingerprint.
RECORD_FILE = "maskleak-model.json"

# Only what the inpainting pipeline loads: no safety checker, no .bin/.ckpt duplicates.
HUB_ALLOW_PATTERNS = [
    "model_index.json",
    "scheduler/*.json",
    "tokenizer/*",
    "text_encoder/*.json",
    "unet/*.json",
    "vae/*.json",
]
HUB_WEIGHT_DIRS = ("text_encoder", "unet", "vae")


def model_fingerprint(model_dir: str | os.PathLike[str]) -> str:
    """sha256 over every file's relative path and content (hidden files and the maskleak
    record excluded): two folders with the same weights and configs share a fingerprint."""
    root = Path(model_dir)
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or rel.name == RECORD_FILE:
            continue
        if any(part.startswith(".") for part in rel.parts):
            continue
        digest.update(f"{rel.as_posix()}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def _finish_model_dir(tmp: Path, dest: Path, record: Mapping[str, Any]) -> None:
    """Record provenance inside the folder, then move it into place in one rename."""
    full = {**record, "fingerprint": model_fingerprint(tmp), "versions": versions()}
    (tmp / RECORD_FILE).write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
    public_mode(tmp, directory=True)  # mkdtemp made it private
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)


def _save_pipeline(pipe: Any, dest: str | os.PathLike[str], record: Mapping[str, Any]) -> None:
    """Save ``pipe`` as a diffusers folder (safetensors) at ``dest``, whole or not at all,
    with ``record`` (what made it) inside."""
    target = Path(dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        pipe.save_pretrained(tmp, safe_serialization=True)
        _finish_model_dir(tmp, target, record)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_tiny_model(dest: str | os.PathLike[str], unet_in_channels: int, seed: int) -> None:
    """Build the tiny pipeline and save it as a diffusers folder (safetensors)."""
    pipe = build_tiny_pipeline(unet_in_channels, seed)
    record = {"stage": "build_model", "kind": "tiny", "unet_in_channels": unet_in_channels}
    _save_pipeline(pipe, dest, {**record, "seed": seed})


def save_trained_model(dest: str | os.PathLike[str], unet_in_channels: int, path: str) -> None:
    """Assemble the trained tiny model with that UNet from the components in ``path``
    (``maskleak.trained_models``) and save it as a diffusers folder (safetensors)."""
    pipe = assemble_pipeline(path, unet_in_channels)
    record = {
        "stage": "build_model",
        "kind": "trained",
        "unet_in_channels": unet_in_channels,
        "path": str(path),
        "components": component_provenance(path, unet_in_channels),
    }
    _save_pipeline(pipe, dest, record)


def download_model(
    dest: str | os.PathLike[str], repo_id: str, revision: str, variant: str | None = None
) -> None:
    """Fetch the inpainting-relevant files of a hub checkpoint into a local diffusers folder.

    Done once, on a node with internet; inpaint jobs (often on GPU nodes without internet)
    then load the local folder like any other."""
    from huggingface_hub import snapshot_download

    target = Path(dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = f".{variant}.safetensors" if variant else ".safetensors"
    patterns = HUB_ALLOW_PATTERNS + [f"{d}/*{suffix}" for d in HUB_WEIGHT_DIRS]
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        snapshot_download(
            repo_id=repo_id, revision=revision, local_dir=tmp, allow_patterns=patterns
        )
        if variant is None:
            # A plain pattern also matches variant files; keep only the default weights.
            for extra in tmp.glob("*/*.*.safetensors"):
                extra.unlink()
        shutil.rmtree(tmp / ".cache", ignore_errors=True)
        record = {"stage": "download_model", "repo_id": repo_id, "revision": revision}
        _finish_model_dir(tmp, target, {**record, "variant": variant})
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def get_model(spec: Mapping[str, Any], dest: str | os.PathLike[str]) -> None:
    """Make the model folder a config entry asks for (the ``get_model`` rule)."""
    kind = spec.get("kind")
    if kind == "tiny":
        save_tiny_model(dest, int(spec["unet_in_channels"]), int(spec["seed"]))
    elif kind == "trained":
        save_trained_model(dest, int(spec["unet_in_channels"]), str(spec.get("path", TRAINED_DIR)))
    elif kind == "hub":
        download_model(dest, spec["repo_id"], spec.get("revision", "main"), spec.get("variant"))
    else:
        raise InputError(
            f"models: kind {kind!r} is not built by the workflow (tiny, trained or hub)"
        )
