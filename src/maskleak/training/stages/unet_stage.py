"""The ``train_unet`` rule: a 9- or 4-channel tiny UNet, trained as latent diffusion on the
trained VAE's latents as the ``training.unet`` config says."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from maskleak.training import data
from maskleak.training.stages.common import LOG, atomic_dir, set_threads, write_trained


def training_crops(
    images: list[Any], n: int, size: int, seed: int, tag: int
) -> tuple[Any, Any, list[dict[str, Any]]]:
    """``n`` crops of the training images, half photos and half landscapes
    (``balanced_crops`` batches of 64, channels shuffled per batch), and a random
    inpainting mask for each (``mask_batch``): (crops uint8 (n, size, size, 3), masks
    bool (n, size, size), mask records). ``tag`` keeps the streams of different uses
    (the UNets' dataset, ...) apart: both draw with the seed ``seed * 1000 + tag``."""
    import numpy as np

    n_photos = len(data.TRAIN_PHOTOS)
    photos, landscapes = images[:n_photos], images[n_photos:]
    batches = [
        data.balanced_crops(photos, landscapes, 64, size, seed * 1000 + tag, step)
        for step in range(1, -(-n // 64) + 1)
    ]
    crops = np.concatenate(batches)[:n]
    masks, records = data.mask_batch(n, size, size, seed * 1000 + tag)
    return crops, masks, records


#: ``training_crops`` tags: the UNets' training set.
UNET_DATA_TAG = 1


def load_text_embeddings(text_encoder_dir: str, tokenizer_dir: str) -> Any:
    """The empty prompt's embedding by the layout's text encoder, as the pipeline makes it."""
    from transformers import CLIPTextModel, CLIPTokenizer

    from maskleak.training.unet import empty_prompt_embeddings

    encoder = CLIPTextModel.from_pretrained(text_encoder_dir, local_files_only=True)
    tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    return empty_prompt_embeddings(encoder, tokenizer)


def train_unet_stage(
    training: Mapping[str, Any],
    unet_in_channels: int,
    components: Mapping[str, str],
    folder: str | os.PathLike[str],
    scheduler_folder: str | os.PathLike[str],
    history_path: str | os.PathLike[str],
    threads: int,
    code_version: str,
) -> None:
    """Train the ``unet_in_channels`` UNet as ``training.unet`` says, on latents of the
    trained VAE (``components['vae']``) conditioned on the layout's empty-prompt embedding
    (``components['text_encoder']``, ``['tokenizer']``); write it to ``folder``, the
    scheduler that samples it (its ``prediction_type``) to ``scheduler_folder`` and its
    per-step losses to ``history_path``."""
    from diffusers import AutoencoderKL

    from maskleak.trained_models import unet_component, write_scheduler
    from maskleak.training import unet as unet_training

    seed = int(training["seed"])
    settings = dict(training["unet"])
    # This UNet's own target: the record keeps it, not the mapping of both.
    settings["prediction_type"] = str(settings["prediction_type"][unet_component(unet_in_channels)])
    used_threads = set_threads(threads)
    images, image_record = data.training_images(seed)
    crops, masks, _ = training_crops(
        images, int(settings["examples"]), int(settings["crop_px"]), seed, UNET_DATA_TAG
    )
    vae = AutoencoderKL.from_pretrained(components["vae"], local_files_only=True)
    LOG.info("encoding %d crops of %d px with the trained VAE", len(crops), crops.shape[1])
    dataset = unet_training.latent_dataset(vae, crops, masks, seed)
    embeddings = load_text_embeddings(components["text_encoder"], components["tokenizer"])
    unet, history = unet_training.train_unet(
        dataset,
        unet_in_channels,
        int(settings["steps"]),
        seed,
        text_embeddings=embeddings,
        batch_size=int(settings["batch_size"]),
        lr=float(settings["lr"]),
        prediction_type=settings["prediction_type"],
        log=LOG.info,
        log_every=100,
    )
    record = {
        "stage": f"train_unet{unet_in_channels}",
        "seed": seed,
        "settings": settings,
        "objective": f"{settings['prediction_type']} prediction, DDPM noise at t uniform in "
        "[0, 1000), SD 1.5 betas"
        + (", input [noisy, mask, masked-image latents]" if unet_in_channels == 9 else ""),
        "masks": "training.data.mask_batch: discs, boxes, strokes of 5-60 % area",
        "crops": "half photos, half landscapes (training.data.balanced_crops)",
        "encode_chunk": unet_training.ENCODE_CHUNK,
        "torch_threads": used_threads,
        "code_version": code_version,
        "losses": unet_training.history_summary(history),
        "data": image_record,
    }
    write_trained(unet, folder, history, history_path, record)
    with atomic_dir(scheduler_folder) as tmp:
        write_scheduler(tmp, settings["prediction_type"])
