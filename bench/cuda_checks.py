"""CUDA checks on the tiny offline models, through the real job code (run_job):

1. determinism: the same job twice in one process on CUDA (float16) gives the same PNGs;
2. batch composition: batch 1 (one pipeline call after the other) against batch 4 (calls
   of 4 images, their UNet evaluations merged across strengths) on CUDA and on the CPU
   (the PNG key leaves batch composition out, so results should not depend on it);
3. CUDA float16 and float32 against CPU float32: how far the GPU's results are from the
   CPU's, in 8-bit levels of the inpainted PNGs (keys differ by device and dtype, so the
   workflow never mixes them); where float16 goes wrong, the first module whose output
   is not finite.

Each row: max and mean absolute difference over all pixel values of all PNGs, and the
share of values that differ at all.

    python bench/cuda_checks.py
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from _report import emit, quiet, table, work_folder
from inpaint_throughput import build_model, write_inputs

from maskleak.images import read_pixels
from maskleak.inpaint import Settings, Task, run_job
from maskleak.masks import circle_mask
from maskleak.provenance import save_png

SIZE = (192, 128)  # the default config's image size
STRENGTHS = (0.3, 0.5, 0.9, 0.95, 1.0)
RADII = (80.0, 40.0)
SEEDS = (0, 1)
STEPS = 10


def _job(
    model_dir: Path, image: Path, masks: dict[float, Path], out: Path, device: str, **settings: Any
) -> list[Path]:
    tasks = [
        Task("check", r, s, seed, str(masks[r]), str(out / f"r{r:g}_s{s:g}_seed{seed}.png"))
        for s in STRENGTHS
        for r in RADII
        for seed in SEEDS
    ]
    run_job(
        str(model_dir),
        model_dir.name,
        str(image),
        "check",
        tasks,
        Settings(steps=STEPS, **settings),
        str(out / "manifest.json"),
        device=device,
    )
    return [Path(t.inpainted_path) for t in tasks]


def _compare(what: str, a: list[Path], b: list[Path]) -> dict[str, Any]:
    diffs = np.concatenate(
        [
            np.abs(read_pixels(x, "RGB").astype(np.int16) - read_pixels(y, "RGB")).ravel()
            for x, y in zip(a, b, strict=True)
        ]
    )
    return {
        "what": what,
        "pngs": len(a),
        "max_abs_diff": int(diffs.max()),
        "mean_abs_diff": round(float(diffs.mean()), 4),
        "share_differing": round(float((diffs > 0).mean()), 5),
    }


def run(work: Path) -> list[dict[str, Any]]:
    width, height = SIZE
    image, _ = write_inputs(work, width, height, RADII[0])
    masks = {}
    for radius in RADII:
        masks[radius] = work / f"mask-r{radius:g}.png"
        save_png(circle_mask(width, height, radius), masks[radius], {"stage": "check"})
    rows = []
    for channels in (4, 9):
        model_dir, _ = build_model(work, "tiny", channels)
        out = work / f"out-tiny{channels}"

        def job(name: str, device: str, m: Path = model_dir, o: Path = out, **s: Any) -> list[Path]:
            return _job(m, image, masks, o / name, device, **s)

        fp16_a = job("cuda-fp16-a", "cuda", dtype="float16", batch_size=4)
        fp16_b = job("cuda-fp16-b", "cuda", dtype="float16", batch_size=4)
        fp16_b1 = job("cuda-fp16-b1", "cuda", dtype="float16", batch_size=1)
        fp32_cuda = job("cuda-fp32", "cuda", dtype="float32", batch_size=4)
        fp32_cuda_b1 = job("cuda-fp32-b1", "cuda", dtype="float32", batch_size=1)
        fp32_cpu = job("cpu-fp32", "cpu", dtype="float32", batch_size=4)
        fp32_cpu_b1 = job("cpu-fp32-b1", "cpu", dtype="float32", batch_size=1)
        label = f"tiny{channels}"
        for row in (
            _compare(f"{label}: CUDA fp16, same job twice", fp16_a, fp16_b),
            _compare(f"{label}: CUDA fp16, batch 1 vs merged 4", fp16_b1, fp16_a),
            _compare(f"{label}: CUDA fp32, batch 1 vs merged 4", fp32_cuda_b1, fp32_cuda),
            _compare(f"{label}: CPU fp32, batch 1 vs merged 4", fp32_cpu_b1, fp32_cpu),
            _compare(f"{label}: CUDA fp16 vs CPU fp32", fp16_a, fp32_cpu),
            _compare(f"{label}: CUDA fp32 vs CPU fp32", fp32_cuda, fp32_cpu),
        ):
            emit({"kind": "cuda_check", **row})
            rows.append(row)
        try:
            trace = trace_float16(model_dir, image, masks)
        except Exception as err:  # a diagnosis; the rows above stand without it
            trace = {"error": repr(err)}
        emit({"kind": "fp16_trace", "model": label, **trace})
    return rows


def trace_float16(
    model_dir: Path, image: Path, masks: dict[float, Path], device: str = "cuda"
) -> dict[str, Any]:
    """One float16 call on CUDA with every module watched: the first module (in call
    order) whose output is not finite, and each model's largest output magnitude."""
    import torch
    from PIL import Image

    from maskleak import models

    pipe = models.load_pipeline(model_dir, dtype="float16", device=device)
    first_bad: list[str] = []
    largest: dict[str, float] = {}

    def watch(name: str) -> Any:
        def hook(module: Any, inputs: Any, output: Any) -> None:
            out = output[0] if isinstance(output, tuple) else getattr(output, "sample", output)
            if not torch.is_tensor(out):
                return
            top = name.split(".")[0]
            largest[top] = max(largest.get(top, 0.0), float(out.float().abs().nan_to_num().max()))
            if not first_bad and not bool(torch.isfinite(out).all()):
                first_bad.append(name)

        return hook

    for part in ("text_encoder", "vae", "unet"):
        for name, module in getattr(pipe, part).named_modules():
            module.register_forward_hook(watch(f"{part}.{name}" if name else part))
    result = pipe(
        prompt="",
        image=Image.open(image).convert("RGB"),
        mask_image=Image.open(masks[RADII[0]]).convert("L"),
        strength=1.0,
        num_inference_steps=STEPS,
        guidance_scale=0.0,
        generator=torch.Generator().manual_seed(0),
        height=SIZE[1],
        width=SIZE[0],
        output_type="np",
    ).images
    return {
        "first_non_finite": first_bad[0] if first_bad else None,
        "largest_output": {k: round(v, 2) for k, v in largest.items()},
        "nan_pixels": int(np.isnan(result).sum()),
    }


COLUMNS = [
    ("what", "what"),
    ("pngs", "PNGs"),
    ("max_abs_diff", "max |diff|"),
    ("mean_abs_diff", "mean |diff|"),
    ("share_differing", "share differing"),
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    quiet()
    with work_folder(args.workdir) as work:
        table(run(work), COLUMNS)


if __name__ == "__main__":
    main()
