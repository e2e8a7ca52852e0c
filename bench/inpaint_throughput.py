"""Throughput of the inpaint stage, measured through the real job code (run_job).

Builds a model folder (the tiny offline model, or SD 1.5's exact architecture with random
weights), loads it with from_pretrained like any checkpoint, and times inpaintings of a
procedural landscape at the given size, steps and batch sizes. Prints one JSON line per
measurement and a summary table. Example (GPU, the study's settings):

    python bench/inpaint_throughput.py --arch sd15 --size 640x480 --steps 200 \
        --strength 1.0 --n 8 --batch 1 4 8
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from maskleak import models
from maskleak.inpaint import Settings, Task, run_job, steps_run
from maskleak.landscapes import generate_landscape
from maskleak.masks import circle_mask
from maskleak.provenance import save_png, versions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=["tiny", "sd15"], default="tiny")
    parser.add_argument("--unet-in-channels", type=int, choices=[4, 9], default=4)
    parser.add_argument("--size", default="640x480", help="WxH, multiples of 8")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--strength", type=float, default=1.0)
    parser.add_argument("--n", type=int, default=4, help="inpaintings per batch size")
    parser.add_argument("--batch", type=int, nargs="+", default=[1])
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--radius-pct", type=float, default=80.0)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    width, height = (int(v) for v in args.size.lower().split("x"))
    work = Path(args.workdir or tempfile.mkdtemp(prefix="maskleak-bench-"))
    model_dir = work / f"model-{args.arch}-{args.unet_in_channels}"
    started = time.perf_counter()
    if not (model_dir / "model_index.json").exists():
        if args.arch == "tiny":
            models.save_tiny_model(model_dir, args.unet_in_channels, seed=0)
        else:
            pipe = models.build_sd15_like_pipeline(args.unet_in_channels, seed=0)
            pipe.save_pretrained(model_dir, safe_serialization=True)
            del pipe
    build_s = time.perf_counter() - started

    rgb, _ = generate_landscape(1, width, height)
    image_path, mask_path = work / "image.png", work / "mask.png"
    save_png(rgb, image_path, {"stage": "bench"})
    save_png(circle_mask(width, height, args.radius_pct), mask_path, {"stage": "bench"})

    rows = []
    for batch in args.batch:
        out = work / f"out-b{batch}-{time.time_ns()}"
        # Distinct seeds so nothing is reused; one warm-up job first (CUDA init, kernels).
        tasks = [
            Task(
                "bench",
                args.radius_pct,
                args.strength,
                seed,
                str(mask_path),
                str(out / f"{seed}.png"),
            )
            for seed in range(args.n)
        ]
        settings = Settings(steps=args.steps, dtype=args.dtype, batch_size=batch)
        run_job(
            str(model_dir),
            args.arch,
            str(image_path),
            "bench",
            tasks[:batch],
            settings,
            str(out / "warmup.json"),
        )
        for path in out.glob("*.png"):
            path.unlink()
        summary = run_job(
            str(model_dir),
            args.arch,
            str(image_path),
            "bench",
            tasks,
            settings,
            str(out / "manifest.json"),
        )
        unet_steps = steps_run(args.steps, args.strength) * args.n
        row = {
            "arch": args.arch,
            "unet_in_channels": args.unet_in_channels,
            "size": f"{width}x{height}",
            "steps": args.steps,
            "strength": args.strength,
            "batch": batch,
            "n": args.n,
            "model_load_s": round(summary["model_load_s"], 3),
            "compute_s": round(summary["compute_s"], 3),
            "s_per_inpainting": round(summary["compute_s"] / args.n, 4),
            "unet_steps_per_s": round(unet_steps / summary["compute_s"], 2),
            "outside_loop_share": round(1 - summary["compute_s"] / summary["total_s"], 3),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    import torch

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    print(json.dumps({"build_s": round(build_s, 2), "device": device, "versions": versions()}))
    print(f"\n{'batch':>5} {'s/inpainting':>13} {'UNet steps/s':>13} {'outside loop':>13}")
    for row in rows:
        print(
            f"{row['batch']:>5} {row['s_per_inpainting']:>13} {row['unet_steps_per_s']:>13} "
            f"{row['outside_loop_share']:>13}"
        )


if __name__ == "__main__":
    main()
