"""Cost of training the tiny inpainting UNets (maskleak.training.unet), to size their step
budgets.

For each crop size (64 px: 8x8 latents; 128 px: 16x16) and UNet input layout (4 or 9
channels): seconds per training step of the real train_unet loop (row draw, DDPM noising,
UNet forward on the empty prompt's embeddings, MSE to the noise, backward, AdamW) on
random latents, at a batch size and torch thread count. Each step's time is the median of
``--steps`` steps after one untimed warm-up step; best shows the least-loaded step, as
other processes share the cores. One thread is the honest number where they do.

Measured (batch 16, 1 thread, 10 timed steps, torch 2.13 CPU, on this project's 2-core
machine shared with other jobs; median / best seconds per step):

     px  latent  channels  s/step  best s/step
     64     8x8         4  0.0596       0.0585
     64     8x8         9  0.0598       0.0590
    128   16x16         4  0.164        0.163
    128   16x16         9  0.166        0.163

(96 px crops, 12x12 latents, ran at 0.12-0.15 s/step in a real training under the same
load.) The tiny UNet has 985,444 (4-channel) / 986,884 (9-channel) parameters, 3.97 MB of
float32 safetensors each: the 9-channel input adds only conv_in weights, so both cost the
same per step.

    python bench/train_unet_speed.py --steps 10 --sizes 64 128 --batch 16 --threads 1
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
from pathlib import Path

import torch
from _report import emit, quiet, table

from maskleak.training.folders import parameter_count
from maskleak.training.unet import build_unet, train_unet


def random_dataset(rows: int, latent_px: int) -> dict[str, torch.Tensor]:
    """Unit-std latents, a random 0/1 mask and masked latents: the shapes latent_dataset
    returns for ``rows`` crops of ``8 * latent_px`` px (the cost does not depend on the
    values)."""
    generator = torch.Generator().manual_seed(0)
    shape = (rows, 4, latent_px, latent_px)
    mask = (torch.rand(rows, 1, latent_px, latent_px, generator=generator) < 0.3).float()
    latents = torch.randn(shape, generator=generator)
    return {"latents": latents, "mask": mask, "masked_image_latents": latents * (1 - mask)}


def safetensors_bytes(in_channels: int) -> int:
    with tempfile.TemporaryDirectory(prefix="maskleak-unet-") as tmp:
        build_unet(in_channels, 0).save_pretrained(tmp, safe_serialization=True)
        return (Path(tmp) / "diffusion_pytorch_model.safetensors").stat().st_size


def step_seconds(in_channels: int, size: int, batch: int, steps: int) -> list[float]:
    data = random_dataset(max(4 * batch, 64), size // 8)
    _, history = train_unet(
        data,
        in_channels,
        steps + 1,
        seed=0,
        text_embeddings=torch.zeros(1, 77, 32),
        batch_size=batch,
        log=None,
    )
    seconds = [row["seconds"] for row in history]
    return [b - a for a, b in zip(seconds, seconds[1:], strict=False)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[64, 128])
    parser.add_argument("--channels", nargs="+", type=int, default=[4, 9])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", nargs="+", type=int, default=[1])
    args = parser.parse_args()
    quiet()
    rows = []
    for size, channels, threads in itertools.product(args.sizes, args.channels, args.threads):
        torch.set_num_threads(threads)
        times = step_seconds(channels, size, args.batch, args.steps)
        row = {
            "size": size,
            "latent": f"{size // 8}x{size // 8}",
            "channels": channels,
            "parameters": parameter_count(build_unet(channels, 0)),
            "safetensors_mb": round(safetensors_bytes(channels) / 1e6, 3),
            "batch": args.batch,
            "threads": threads,
            "median_s_per_step": round(statistics.median(times), 4),
            "best_s_per_step": round(min(times), 4),
        }
        emit(row)
        rows.append(row)
    table(
        rows,
        [
            ("size", "px"),
            ("latent", "latent"),
            ("channels", "channels"),
            ("parameters", "params"),
            ("safetensors_mb", "MB"),
            ("batch", "batch"),
            ("threads", "threads"),
            ("median_s_per_step", "s/step"),
            ("best_s_per_step", "best s/step"),
        ],
    )


if __name__ == "__main__":
    main()
