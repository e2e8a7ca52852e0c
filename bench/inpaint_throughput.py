"""Throughput of the inpaint stage, measured through the real job code (run_job).

Builds a model folder (the tiny offline model, or SD 1.5's exact architecture with random
weights), loads it with from_pretrained like any checkpoint, and times inpaintings of a
procedural landscape at the given size, steps and batch sizes. Prints one JSON line per
measurement and a table: inpaintings/s, UNet steps/s, the share of a job's time spent
outside the denoising loop, and the gain from batching (s/inpainting at the smallest batch
measured, normally 1, over s/inpainting at batch N).

The study's settings on a GPU (SD 1.5 at 640x480, 200 steps, float16; --n a multiple of
every batch so that no job ends with a smaller, differently shaped batch):

    python bench/inpaint_throughput.py --arch sd15 --size 640x480 --steps 200 \
        --dtype float16 --n 16 --batch 1 4 8 16 [--channels-last] [--compile]

GPU speed-ups (applied to each freshly loaded pipeline, through a hook on
maskleak.models.load_pipeline, so run_job itself is unchanged):

--channels-last  UNet and VAE weights in NHWC, which cuDNN's fp16 tensor-core convolutions
                 prefer.
--compile [MODE] torch.compile the UNet in place (default mode max-autotune). Compiling
                 happens at the first call, so the hook then runs one 2-step inpainting at
                 the job's size and batch inside the load: compile time lands in
                 model_load_s (compile_warmup_s), as it would in every real job, and the
                 denoising loop is timed warm. max-autotune on SD 1.5 takes minutes per
                 batch size the first time; inductor caches kernels and autotuning results
                 on disk (TORCHINDUCTOR_CACHE_DIR, default /tmp/torchinductor_$USER), so
                 later jobs and later runs compile much faster. No separate warm-up job is
                 run with --compile. --compile-scope repeated-blocks compiles only the
                 transformer blocks (diffusers' regional compilation): far shorter
                 compiles, less speed-up, since SD 1.5's convolutions stay eager.
--attention      default keeps diffusers' choice (AttnProcessor2_0, i.e. PyTorch SDPA, with
                 torch 2); sdpa forces it; classic forces the pre-SDPA AttnProcessor, to
                 see what SDPA buys. The attention processor classes in use are printed.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from _report import emit, quiet, table, work_folder

from maskleak import inpaint, models
from maskleak.images import read_pixels
from maskleak.inpaint import Settings, Task, run_job, steps_run
from maskleak.landscapes import generate_landscape
from maskleak.masks import circle_mask
from maskleak.provenance import save_png, versions

_ORIGINAL_LOAD = models.load_pipeline

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass(frozen=True)
class Speedups:
    channels_last: bool = False
    compile_mode: str | None = None
    compile_scope: str = "unet"  # or "repeated-blocks"
    attention: str = "default"  # or "sdpa", "classic"


@dataclass
class _LoadHook:
    """Replaces maskleak.models.load_pipeline while active: loads as usual, then applies
    the speed-ups and (when compiling) a warm-up call, timing each part. run_job measures
    the whole call as its model_load_s, so all of this counts as time outside the loop."""

    speedups: Speedups
    warmup_inputs: dict[str, Any] = field(default_factory=dict)
    loads: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        pipe = _ORIGINAL_LOAD(*args, **kwargs)
        loaded = time.perf_counter()
        apply_speedups(pipe, self.speedups)
        applied = time.perf_counter()
        if self.speedups.compile_mode is not None:
            _warm_up(pipe, **self.warmup_inputs)
        self.loads.append(
            {
                "from_pretrained_s": round(loaded - started, 3),
                "speedups_s": round(applied - loaded, 3),
                "compile_warmup_s": round(time.perf_counter() - applied, 3),
                "unet_in_channels": int(pipe.unet.config.in_channels),
                "attention": attention_processors(pipe),
            }
        )
        return pipe


@contextmanager
def load_hook(speedups: Speedups) -> Iterator[_LoadHook]:
    # run_job calls models.load_pipeline through the module attribute, so replacing the
    # attribute reaches it without touching maskleak.inpaint.
    if inpaint.models is not models:
        raise RuntimeError("maskleak.inpaint no longer loads through maskleak.models")
    hook = _LoadHook(speedups)
    models.load_pipeline = hook
    try:
        yield hook
    finally:
        models.load_pipeline = _ORIGINAL_LOAD


def apply_speedups(pipe: Any, speedups: Speedups) -> None:
    import torch
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    if speedups.attention != "default":
        processor = AttnProcessor2_0 if speedups.attention == "sdpa" else AttnProcessor
        pipe.unet.set_attn_processor(processor())
        if pipe.vae.attn_processors:
            pipe.vae.set_attn_processor(processor())
    if speedups.channels_last:
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
    if speedups.compile_mode is not None:
        # In place (nn.Module.compile): the pipeline keeps its UNet2DConditionModel, so
        # run_job's describe() and the pipeline's config checks see the usual object.
        if speedups.compile_scope == "repeated-blocks":
            pipe.unet.compile_repeated_blocks(mode=speedups.compile_mode, fullgraph=True)
        else:
            pipe.unet.compile(mode=speedups.compile_mode, fullgraph=True)


def _warm_up(pipe: Any, image: Any, mask: Any, batch: int) -> None:
    import torch

    # Same shapes as the timed calls (size, batch, no classifier-free guidance), so the
    # compiled graph is reused rather than recompiled inside the timed loop.
    pipe(
        prompt=[""] * batch,
        image=[image] * batch,
        mask_image=[mask] * batch,
        strength=1.0,
        num_inference_steps=2,
        guidance_scale=0.0,
        generator=[torch.Generator().manual_seed(i) for i in range(batch)],
        height=image.height,
        width=image.width,
    )


def attention_processors(pipe: Any) -> dict[str, list[str]]:
    """Attention processor classes in use, per model (AttnProcessor2_0 means SDPA)."""
    return {
        name: sorted({type(p).__name__ for p in getattr(pipe, name).attn_processors.values()})
        for name in ("unet", "vae")
    }


def build_model(work: Path, arch: str, unet_in_channels: int) -> tuple[Path, float]:
    """The model folder for ``arch`` under ``work`` (reused if present), and the seconds
    it took to build."""
    model_dir = work / f"model-{arch}-{unet_in_channels}"
    started = time.perf_counter()
    if not (model_dir / "model_index.json").exists():
        if arch == "tiny":
            models.save_tiny_model(model_dir, unet_in_channels, seed=0)
        else:
            pipe = models.build_sd15_like_pipeline(unet_in_channels, seed=0)
            pipe.save_pretrained(model_dir, safe_serialization=True)
            del pipe
    return model_dir, time.perf_counter() - started


def write_inputs(work: Path, width: int, height: int, radius_pct: float) -> tuple[Path, Path]:
    rgb, _ = generate_landscape(1, width, height)
    image_path = work / f"image-{width}x{height}.png"
    mask_path = work / f"mask-{width}x{height}-{radius_pct:g}.png"
    save_png(rgb, image_path, {"stage": "bench"})
    save_png(circle_mask(width, height, radius_pct), mask_path, {"stage": "bench"})
    return image_path, mask_path


def measure(
    model_dir: Path,
    arch: str,
    image_path: Path,
    mask_path: Path,
    work: Path,
    *,
    steps: int,
    strength: float,
    n: int,
    batches: Sequence[int],
    dtype: str = "auto",
    radius_pct: float = 80.0,
    threads: int | None = 1,
    speedups: Speedups | None = None,
) -> list[dict[str, Any]]:
    """Time run_job at each batch size; emits and returns one row per batch size."""
    from PIL import Image

    speedups = speedups or Speedups()
    image = Image.fromarray(read_pixels(image_path, "RGB"))
    mask = Image.fromarray(read_pixels(mask_path, "L"))
    config = {
        "kind": "inpaint",
        "arch": arch,
        "size": f"{image.width}x{image.height}",
        "steps": steps,
        "strength": strength,
        "dtype": dtype,
        "threads": threads,
        "n": n,
        "speedups": asdict(speedups),
    }
    rows: list[dict[str, Any]] = []
    with load_hook(speedups) as hook:
        # Smallest first: every later row's gain is relative to it (batch 1 when measured).
        for batch in sorted(set(batches)):
            hook.warmup_inputs = {"image": image, "mask": mask, "batch": min(batch, n)}
            out = work / f"out-{arch}-b{batch}-{time.time_ns()}"
            # Distinct seeds so nothing is reused.
            tasks = [
                Task("bench", radius_pct, strength, seed, str(mask_path), str(out / f"{seed}.png"))
                for seed in range(n)
            ]
            settings = Settings(steps=steps, dtype=dtype, batch_size=batch)

            def job(todo: Sequence[Task], manifest: Path, s: Settings = settings) -> dict[str, Any]:
                path = str(image_path)
                return run_job(
                    str(model_dir), arch, path, "bench", todo, s, str(manifest), threads=threads
                )

            if speedups.compile_mode is None:
                # One warm-up job first (CUDA init, cuDNN and oneDNN kernel choice). With
                # --compile the hook warms up inside the timed job's load instead.
                job(tasks[:batch], out / "warmup.json")
                for path in out.glob("*.png"):
                    path.unlink()
            loads_before = len(hook.loads)
            summary = job(tasks, out / "manifest.json")
            if len(hook.loads) != loads_before + 1:
                raise RuntimeError("run_job did not load through the benchmark's hook")
            rows.append(_row(config, batch, summary, hook.loads[-1], rows[0] if rows else None))
            emit(rows[-1])
    return rows


def _row(
    config: dict[str, Any],
    batch: int,
    summary: dict[str, Any],
    load: dict[str, Any],
    base: dict[str, Any] | None,
) -> dict[str, Any]:
    n, compute_s, total_s = config["n"], summary["compute_s"], summary["total_s"]
    s_per = compute_s / n
    return {
        **config,
        "batch": batch,
        **load,
        "model_load_s": round(summary["model_load_s"], 3),
        "compute_s": round(compute_s, 3),
        "total_s": round(total_s, 3),
        "s_per_inpainting": round(s_per, 4),
        "inpaintings_per_s": round(n / compute_s, 3),
        # A whole job's rate: what a Snakemake inpaint job of n inpaintings achieves.
        "job_inpaintings_per_s": round(n / total_s, 3),
        "unet_steps_per_s": round(
            steps_run(config["steps"], config["strength"]) * n / compute_s, 2
        ),
        "outside_loop_share": round(1 - compute_s / total_s, 3),
        "gain_vs_batch": base["batch"] if base else batch,
        "batch_gain": round(base["s_per_inpainting"] / s_per, 3) if base else 1.0,
    }


def environment(build_s: float) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "kind": "inpaint_env",
        "build_s": round(build_s, 2),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "torch_threads": torch.get_num_threads(),
        "versions": versions(),
    }
    if torch.cuda.is_available():
        # Which SDPA kernels PyTorch may pick; flash and memory-efficient are the fast ones.
        info["sdpa_backends_enabled"] = {
            "flash": torch.backends.cuda.flash_sdp_enabled(),
            "mem_efficient": torch.backends.cuda.mem_efficient_sdp_enabled(),
            "cudnn": torch.backends.cuda.cudnn_sdp_enabled(),
            "math": torch.backends.cuda.math_sdp_enabled(),
        }
    return info


INPAINT_COLUMNS = [
    ("arch", "arch"),
    ("size", "size"),
    ("steps", "steps"),
    ("batch", "batch"),
    ("n", "n"),
    ("s_per_inpainting", "s/inpainting"),
    ("inpaintings_per_s", "inpaintings/s"),
    ("unet_steps_per_s", "UNet steps/s"),
    ("outside_loop_share", "outside loop"),
    ("model_load_s", "load s"),
    ("batch_gain", "batch gain"),
]


def print_table(rows: Sequence[dict[str, Any]]) -> None:
    table(rows, INPAINT_COLUMNS)
    attention = {str(row["attention"]) for row in rows}
    print(f"attention processors: {'; '.join(sorted(attention))}")
    if any(row["compile_warmup_s"] for row in rows):
        warmups = [row["compile_warmup_s"] for row in rows]
        print(f"compile warm-up per job (s): {warmups}, median {statistics.median(warmups)}")


def parse_size(text: str) -> tuple[int, int]:
    width, height = (int(v) for v in text.lower().split("x"))
    return width, height


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument(
        "--compile",
        nargs="?",
        const="max-autotune",
        default=None,
        choices=COMPILE_MODES,
        metavar="MODE",
        help=f"torch.compile the UNet (MODE one of {COMPILE_MODES}, default max-autotune)",
    )
    parser.add_argument("--compile-scope", choices=["unet", "repeated-blocks"], default="unet")
    parser.add_argument("--attention", choices=["default", "sdpa", "classic"], default="default")


def speedups_from(args: argparse.Namespace) -> Speedups:
    return Speedups(args.channels_last, args.compile, args.compile_scope, args.attention)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--arch", choices=["tiny", "sd15"], default="tiny")
    parser.add_argument("--unet-in-channels", type=int, choices=[4, 9], default=4)
    parser.add_argument("--size", default="640x480", help="WxH, multiples of 8")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--strength", type=float, default=1.0)
    parser.add_argument("--n", type=int, default=4, help="inpaintings per batch size")
    parser.add_argument("--batch", type=int, nargs="+", default=[1])
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--radius-pct", type=float, default=80.0)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads, as run_job sets them (the workflow's inpaint rule uses 1); "
        "0 keeps torch's default",
    )
    parser.add_argument("--workdir", default=None, help="reused: the model is built once")
    add_arguments(parser)
    args = parser.parse_args()
    quiet()

    width, height = parse_size(args.size)
    speedups = speedups_from(args)
    if speedups.compile_mode and any(args.n % b for b in args.batch if b < args.n):
        print("note: --n is not a multiple of every batch; a smaller last batch recompiles")
    with work_folder(args.workdir) as work:
        model_dir, build_s = build_model(work, args.arch, args.unet_in_channels)
        image_path, mask_path = write_inputs(work, width, height, args.radius_pct)
        rows = measure(
            model_dir,
            args.arch,
            image_path,
            mask_path,
            work,
            steps=args.steps,
            strength=args.strength,
            n=args.n,
            batches=args.batch,
            dtype=args.dtype,
            radius_pct=args.radius_pct,
            threads=args.threads or None,
            speedups=speedups,
        )
    emit(environment(build_s))
    print_table(rows)


if __name__ == "__main__":
    main()
