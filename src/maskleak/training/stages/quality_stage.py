"""The ``training_quality`` rule: the trained layout measured against issue 12's bars on
the run's own (held-out) images."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from maskleak.provenance import write_parquet
from maskleak.training import data
from maskleak.training import vae as vae_training
from maskleak.training.stages.common import set_threads
from maskleak.training.stages.unet_stage import load_text_embeddings

#: ``training_crops``-like tag of the held-out crops the denoising loss is measured on.
EVAL_DATA_TAG = 2
#: Held-out crops (of the run's images) for the denoising loss.
EVAL_CROPS = 64
#: Inpainting seeds of the quality report: each image x mask is inpainted once per seed.
QUALITY_SEEDS = (0, 1)
#: The VAE bar: held-out mode PSNR at least this many dB above the 8x8 block mean's.
VAE_MARGIN_BAR_DB = 1.0
#: The UNet bar: held-out denoising loss at most this times the untrained model's.
DENOISING_BAR = 0.5


def held_out_distances(evaluation: Mapping[str, Any], images: list[Any]) -> dict[str, float]:
    """For each evaluation image, its :func:`data.copy_distance` to the nearest training
    image (8-bit levels; a copy measures ~0, :data:`data.COPY_MAD` is the line)."""
    return {
        name: min(data.copy_distance(train, image) for train in images)
        for name, image in evaluation.items()
    }


def _read_rgb(path: str) -> Any:
    import numpy as np
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def quality_stage(
    training: Mapping[str, Any],
    image_paths: Mapping[str, str],
    layout: str,
    outputs: Mapping[str, str],
    threads: int,
) -> dict[str, Any]:
    """Measure the trained layout ``layout`` against the issue's bars on the run's images
    (``image_paths``: name -> downsampled PNG; held out, which this checks by pixels):

    1. VAE: ``vae.quality_report`` per image (mode, sample and block-mean PSNR) ->
       ``outputs['vae']``;
    2. UNets: held-out denoising loss of each trained UNet and of the same architecture
       untrained (its seeded initial weights) on ``EVAL_CROPS`` masked crops of the
       images -> ``outputs['denoising']``;
    3. pipelines: ``quality.quality_report`` of each trained model at strength 1 against
       the mean-colour fill and the untrained model, outside error beside its VAE floor
       and BrushBench -> ``outputs['inpaint']`` (and its JSON summary);
    4. the bars, pass or fail, with the numbers -> ``outputs['summary']`` (JSON).
    Returns the summary."""
    import numpy as np
    import torch

    from maskleak.provenance import versions, write_json
    from maskleak.trained_models import UNET_CHANNELS, assemble_pipeline
    from maskleak.training import quality
    from maskleak.training import unet as unet_training

    seed = int(training["seed"])
    used_threads = set_threads(threads)
    evaluation = {name: _read_rgb(path) for name, path in image_paths.items()}
    train_images, _ = data.training_images(seed)
    distances = held_out_distances(evaluation, train_images)
    record = {
        "stage": "training_quality",
        "seed": seed,
        "layout": str(layout),
        "torch_threads": used_threads,
    }

    # Each model assembled once, and its untrained twin (the seeded initial UNet) built
    # once: stages 2 and 3 measure the same pair.
    trained = {c: assemble_pipeline(layout, c) for c in UNET_CHANNELS}
    untrained = {c: unet_training.build_unet(c, seed) for c in UNET_CHANNELS}

    # 1. VAE against the block mean (the layout's one VAE, shared by both models).
    vae = trained[UNET_CHANNELS[0]].vae
    vae_rows = vae_training.quality_report(vae, evaluation, seed=seed)
    write_parquet(pd.DataFrame(vae_rows), outputs["vae"], record)
    margins = [r["margin_db"] for r in vae_rows]

    # 2. Held-out denoising loss, trained against untrained.
    # The UNets' crop size, or less where an evaluation image is smaller.
    smallest = min(min(image.shape[:2]) for image in evaluation.values())
    size = min(int(training["unet"]["crop_px"]), smallest // 8 * 8)
    crops = data.random_crops(
        list(evaluation.values()), EVAL_CROPS, size, size, [seed, EVAL_DATA_TAG]
    )
    masks, _ = data.mask_batch(EVAL_CROPS, size, size, seed * 1000 + EVAL_DATA_TAG)
    dataset = unet_training.latent_dataset(vae, crops, masks, seed)
    embeddings = load_text_embeddings(
        str(Path(layout) / "text_encoder"), str(Path(layout) / "tokenizer")
    )
    loss_rows, denoising = [], {}
    for channels in UNET_CHANNELS:
        # What this UNet predicts, as the scheduler that samples it says.
        target = trained[channels].scheduler.config.prediction_type
        pair = (("trained", trained[channels].unet), ("untrained", untrained[channels]))
        losses = {
            state: unet_training.denoising_loss(
                model, dataset, embeddings, seed, prediction_type=target
            )
            for state, model in pair
        }
        for state, loss in losses.items():
            for t, value in loss["per_timestep"].items():
                loss_rows.append(
                    {
                        "unet_in_channels": channels,
                        "state": state,
                        "timestep": int(t),
                        "loss": float(value),
                    }
                )
        ratio = losses["trained"]["mean"] / losses["untrained"]["mean"]
        denoising[f"unet{channels}"] = {
            "prediction_type": target,
            "trained_mean": losses["trained"]["mean"],
            "untrained_mean": losses["untrained"]["mean"],
            "trained_mean_inside_mask": losses["trained"]["mean_inside_mask"],
            "ratio": ratio,
            "bar": DENOISING_BAR,
            "passes": bool(ratio <= DENOISING_BAR),
        }
    write_parquet(
        pd.DataFrame(loss_rows),
        outputs["denoising"],
        {**record, "eval_crops": EVAL_CROPS, "crop_px": size},
    )

    # 3. Inpainting at strength 1, against the mean fill and the untrained model.
    rows: list[dict[str, Any]] = []
    for channels in UNET_CHANNELS:
        pipe = trained[channels]
        # The same components with the untrained UNet, and a scheduler of its own.
        reference = type(pipe)(
            **{
                **pipe.components,
                "unet": untrained[channels],
                "scheduler": type(pipe.scheduler).from_config(pipe.scheduler.config),
            },
            requires_safety_checker=False,
        )
        with torch.no_grad():
            rows += quality.quality_report(
                pipe,
                evaluation,
                seeds=QUALITY_SEEDS,
                reference=reference,
                label=f"trained{channels}",
                reference_label=f"untrained{channels}",
            )
    inpaint_summary = quality.write_quality(rows, outputs["inpaint"], record)

    # 4. The bars.
    summary = {
        **record,
        "held_out": {
            "nearest_training_image_mad": distances,
            "copy_mad": data.COPY_MAD,
            "passes": bool(min(distances.values()) > data.COPY_MAD),
        },
        "vae": {
            "psnr_mode_db_mean": float(np.mean([r["psnr_mode_db"] for r in vae_rows])),
            "psnr_block_mean_db_mean": float(np.mean([r["psnr_block_mean_db"] for r in vae_rows])),
            "psnr_sample_vs_mode_db_mean": float(
                np.mean([r["psnr_sample_vs_mode_db"] for r in vae_rows])
            ),
            "margin_db_mean": float(np.mean(margins)),
            "margin_db_min": float(np.min(margins)),
            "bar_db": VAE_MARGIN_BAR_DB,
            "passes": bool(np.mean(margins) >= VAE_MARGIN_BAR_DB),
        },
        "denoising": denoising,
        "inpaint": inpaint_summary["models"],
        "versions": versions(),
    }
    write_json(outputs["summary"], summary)
    return summary
