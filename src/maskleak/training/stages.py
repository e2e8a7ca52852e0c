"""The steps of ``snakemake train_tiny_models``, one function per rule: each reads the
``training`` config section (validated and defaulted by the workflow's schema), trains or
writes one component of the trained layout (``maskleak.trained_models``), and records
what made it. Folders appear whole or not at all: each is written next to its target and
renamed into place."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from maskleak.provenance import public_mode, write_parquet
from maskleak.training import data
from maskleak.training import vae as vae_training

LOG = logging.getLogger("maskleak.training")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``path``; on success it replaces
    ``path`` in one rename, on any exception it is removed and ``path`` left as it was."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        yield tmp
        public_mode(tmp, directory=True)  # mkdtemp made it private
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def set_threads(threads: int) -> int:
    """Use ``threads`` torch threads (the rule's); returned for the record, since the
    same seed gives bit-identical weights only at the same thread count."""
    import torch

    torch.set_num_threads(max(int(threads), 1))
    return torch.get_num_threads()


def write_history(
    history: list[dict[str, float]], path: str | os.PathLike[str], record: Mapping[str, Any]
) -> None:
    """One row per optimizer step (``vae.HISTORY_FIELDS`` or the UNet's) to Parquet."""
    write_parquet(pd.DataFrame(history), path, record)


def train_vae_stage(
    training: Mapping[str, Any],
    folder: str | os.PathLike[str],
    history_path: str | os.PathLike[str],
    threads: int,
    code_version: str,
) -> None:
    """Train the tiny VAE as ``training.vae`` says (steps, lr, batch_size, crop_px) from
    ``training.seed``; write it to ``folder`` (diffusers ``AutoencoderKL`` folder with
    ``provenance.json``) and its per-step losses to ``history_path``."""
    seed = int(training["seed"])
    settings = dict(training["vae"])
    used_threads = set_threads(threads)
    images, image_record = data.training_images(seed)
    n_photos = len(data.TRAIN_PHOTOS)
    photos, landscapes = images[:n_photos], images[n_photos:]
    size, batch = int(settings["crop_px"]), int(settings["batch_size"])

    def next_batch(step: int) -> Any:
        return data.balanced_crops(photos, landscapes, batch, size, seed, step)

    vae, history = vae_training.train_vae(
        next_batch,
        int(settings["steps"]),
        seed,
        lr=float(settings["lr"]),
        log=LOG.info,
        log_every=100,
    )
    record = {
        "stage": "train_vae",
        "seed": seed,
        "settings": settings,
        "init": "block_mean",
        "batches": "training.data.balanced_crops: photos at odd steps, landscapes at even, "
        "channels shuffled per batch",
        "torch_threads": used_threads,
        "code_version": code_version,
        "losses": vae_training.history_summary(history),
        "data": image_record,
    }
    with atomic_dir(folder) as tmp:
        vae_training.save_vae(vae, tmp, record)
    write_history(history, history_path, {k: v for k, v in record.items() if k != "data"})


def text_parts_stage(training: Mapping[str, Any], outputs: Mapping[str, str]) -> None:
    """Write the tiny pipeline's text encoder, tokenizer and scheduler, seeded with
    ``training.seed``, to ``outputs['text_encoder']``, ``['tokenizer']``, ``['scheduler']``."""
    from maskleak.trained_models import write_shared_text_parts

    with atomic_dir(Path(outputs["text_encoder"]).parent / ".text_parts") as tmp:
        write_shared_text_parts(tmp, int(training["seed"]))
        for part in ("text_encoder", "tokenizer", "scheduler"):
            with atomic_dir(outputs[part]) as target:
                os.rmdir(target)
                os.replace(tmp / part, target)
    shutil.rmtree(Path(outputs["text_encoder"]).parent / ".text_parts", ignore_errors=True)
