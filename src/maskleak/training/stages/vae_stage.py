"""The ``train_vae`` rule: the tiny VAE, trained as the ``training.vae`` config says."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from maskleak.training import data
from maskleak.training import vae as vae_training
from maskleak.training.stages.common import LOG, set_threads, write_trained

#: Training crops the VAE's latent std is measured on (``normalise_latent_scale``).
SCALE_CROPS = 256


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
    # SD's latent convention (scaled std 1 at its 0.18215), fitted on crops no step
    # trained on (training steps count from 1).
    scale_crops = data.random_crops(images, SCALE_CROPS, size, size, [seed, 0])
    latent_rescale = vae_training.normalise_latent_scale(vae, scale_crops)
    record = {
        "stage": "train_vae",
        "latent_rescale": latent_rescale,
        "latent_rescale_crops": SCALE_CROPS,
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
    write_trained(vae, folder, history, history_path, record)
