"""Cost of training the tiny VAE (maskleak.training.vae), to size its step budget.

For each candidate width (block_out_channels, one resnet per block unless given) and batch
size: seconds per training step on random uint8 64x64 crops (the real train_vae loop, so
encode, posterior sample, decode, MSE + KL, backward, AdamW), the parameter count and the
size of the saved safetensors file, at each torch thread count of ``--threads``. Each
step's time is the median of ``--steps`` steps after one untimed warm-up step; best shows
the least-loaded step, as other processes share the cores. Where they do, one thread is
the honest number: two threads that wait on each other under load ran 10-100x slower.

    python bench/train_vae_speed.py --steps 5 --batches 8 16 --threads 1 2
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch
from _report import emit, quiet, table

from maskleak.training.folders import parameter_count
from maskleak.training.vae import build_vae, train_vae, vae_config

CANDIDATES = ("8,16,32,32", "16,32,64,64", "32,64,128,128")


def safetensors_bytes(block_out_channels: tuple[int, ...], layers: int) -> int:
    """Size of the saved weights file of an untrained VAE of that shape."""
    vae = build_vae(0, vae_config(block_out_channels, layers_per_block=layers))
    with tempfile.TemporaryDirectory(prefix="maskleak-vae-") as tmp:
        vae.save_pretrained(tmp, safe_serialization=True)
        return (Path(tmp) / "diffusion_pytorch_model.safetensors").stat().st_size


def step_seconds(
    block_out_channels: tuple[int, ...], layers: int, batch: int, size: int, steps: int
) -> list[float]:
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8)
    _, history = train_vae(
        lambda step: crops,
        steps + 1,
        seed=0,
        log=None,
        config=vae_config(block_out_channels, layers_per_block=layers),
    )
    seconds = [row["seconds"] for row in history]
    return [b - a for a, b in zip(seconds, seconds[1:], strict=False)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES))
    parser.add_argument("--layers", nargs="+", type=int, default=[1])
    parser.add_argument("--batches", nargs="+", type=int, default=[8, 16])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", nargs="+", type=int, default=[1])
    args = parser.parse_args()
    quiet()
    rows = []
    for text in args.candidates:
        channels = tuple(int(c) for c in text.split(","))
        for layers in args.layers:
            vae = build_vae(0, vae_config(channels, layers_per_block=layers))
            base = {
                "block_out_channels": text,
                "layers_per_block": layers,
                "norm_groups": vae.config.norm_num_groups,
                "parameters": parameter_count(vae),
                "safetensors_mb": round(safetensors_bytes(channels, layers) / 1e6, 3),
            }
            for batch, threads in itertools.product(args.batches, args.threads):
                torch.set_num_threads(threads)
                times = step_seconds(channels, layers, batch, args.size, args.steps)
                row = {
                    **base,
                    "batch": batch,
                    "size": args.size,
                    "threads": threads,
                    "median_s_per_step": round(statistics.median(times), 4),
                    "best_s_per_step": round(min(times), 4),
                    "ms_per_image": round(1000 * statistics.median(times) / batch, 2),
                }
                emit(row)
                rows.append(row)
    table(
        rows,
        [
            ("block_out_channels", "channels"),
            ("layers_per_block", "layers"),
            ("norm_groups", "groups"),
            ("parameters", "params"),
            ("safetensors_mb", "MB"),
            ("batch", "batch"),
            ("threads", "threads"),
            ("median_s_per_step", "s/step"),
            ("best_s_per_step", "best s/step"),
            ("ms_per_image", "ms/image"),
        ],
    )


if __name__ == "__main__":
    main()
