"""Throughput of the inpaint stage, measured through the real job code (run_job).

Builds a model folder (the tiny offline model, or SD 1.5's exact architecture with random
weights), loads it with from_pretrained like any checkpoint, and times inpaintings of a
procedural landscape at the given size, steps and batch sizes. Prints one JSON line per
measurement and a table: inpaintings/s, UNet evaluations/s, the share of a job's time
spent outside the denoising loop, peak GPU memory, and the gain from batching
(s/inpainting at the smallest batch measured, normally 1, over s/inpainting at batch N).

The pipeline is loaded once (by a first one-inpainting job, timed as a job's load) and
warmed up with a 2-step call at each batch size; each batch size then runs one job of
``--n`` inpaintings (default: one call of ``batch`` images) at one strength, so no calls
are merged. With ``--short-strength`` a second call per batch size splits a call's cost
into a fixed part and a part per UNet evaluation (bench/projection.py uses both).

The study's settings on a GPU (bench/run_all.py --size gpu does this):

    python bench/inpaint_throughput.py --arch sd15 --size 640x416 --steps 200 \
        --dtype float16 --batch 1 4 8 16 --short-strength 0.1 [--channels-last] [--compile]

GPU speed-ups (applied to the loaded pipeline through a hook on
maskleak.models.load_pipeline, so run_job itself is unchanged):

--channels-last  UNet and VAE weights in NHWC, which cuDNN's fp16 tensor-core convolutions
                 may prefer.
--compile [MODE] torch.compile the UNet in place (mode default: 'default'; the CUDA-graph
                 modes reuse their output buffers, which PNDM keeps in its history of
                 model outputs: not tried). Static shapes, one graph per batch size, unless
                 --compile-dynamic. Compiling happens at the first call of a shape: in the
                 first job (first_job_s) and in each batch size's warm-up (warmup_s), so
                 the timed jobs run warm. --compile-scope repeated-blocks compiles only the
                 transformer blocks (diffusers' regional compilation).
--attention      default keeps diffusers' choice (AttnProcessor2_0, i.e. PyTorch SDPA, with
                 torch 2); sdpa forces it; classic forces the pre-SDPA AttnProcessor, to
                 see what SDPA buys. The attention processor classes in use are printed.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from _report import emit, quiet, table, work_folder

from maskleak import inpaint, models
from maskleak.images import read_pixels
from maskleak.inpaint import Settings, Task, run_job
from maskleak.landscapes import generate_landscape
from maskleak.masks import circle_mask
from maskleak.merged_calls import schedule
from maskleak.provenance import save_png, versions

_ORIGINAL_LOAD = models.load_pipeline

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass(frozen=True)
class Speedups:
    channels_last: bool = False
    compile_mode: str | None = None
    compile_scope: str = "unet"  # or "repeated-blocks"
    attention: str = "default"  # or "sdpa", "classic"
    #: Symbolic batch size: one graph for every batch (merged calls vary it, 1 to 16);
    #: otherwise one static graph per batch size.
    compile_dynamic: bool = False


@dataclass
class _LoadHook:
    """Replaces maskleak.models.load_pipeline while active: the first call loads as usual
    and applies the speed-ups, timing each part; later calls hand out the same pipeline,
    so a benchmark of several jobs loads (and compiles) once. Each real job loads its
    model once, so ``first_load`` is what a job spends loading."""

    speedups: Speedups
    pipe: Any = None
    first_load: dict[str, Any] = field(default_factory=dict)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.pipe is not None:
            return self.pipe
        started = time.perf_counter()
        pipe = _ORIGINAL_LOAD(*args, **kwargs)
        loaded = time.perf_counter()
        apply_speedups(pipe, self.speedups)
        self.first_load = {
            "from_pretrained_s": round(loaded - started, 3),
            "speedups_s": round(time.perf_counter() - loaded, 3),
            "unet_in_channels": int(pipe.unet.config.in_channels),
            "attention": attention_processors(pipe),
        }
        self.pipe = pipe
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
            # Static graphs by default, one per batch shape: few shapes per measurement,
            # and static kernels are the fastest.
            dynamic = bool(speedups.compile_dynamic)
            pipe.unet.compile(mode=speedups.compile_mode, fullgraph=True, dynamic=dynamic)


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


def build_model(
    work: Path, arch: str, unet_in_channels: int, dtype: str = "auto"
) -> tuple[Path, float]:
    """The model folder for ``arch`` under ``work`` (reused if present), and the seconds
    it took to build. SD 1.5 benchmarked in float16 is saved in float16, as the study's
    ``revision="fp16"`` checkpoint was: half the bytes to read and fingerprint per job."""
    half = arch == "sd15" and dtype == "float16"
    model_dir = work / f"model-{arch}-{unet_in_channels}{'-fp16' if half else ''}"
    started = time.perf_counter()
    if not (model_dir / "model_index.json").exists():
        if arch == "tiny":
            models.save_tiny_model(model_dir, unet_in_channels, seed=0)
        else:
            import torch

            pipe = models.build_sd15_like_pipeline(unet_in_channels, seed=0)
            if half:
                pipe.to(torch.float16)
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
    n: int | None,
    batches: Sequence[int],
    dtype: str = "auto",
    radius_pct: float = 80.0,
    threads: int | None = 1,
    speedups: Speedups | None = None,
    short_strength: float | None = None,
) -> list[dict[str, Any]]:
    """Time run_job at each batch size; emits and returns one row per batch size.

    The pipeline is loaded (and compiled) once; before each batch size one 2-step call of
    that shape warms it up (CUDA and cuDNN start-up, kernel choice, compilation), timed as
    ``warmup_s``. ``n`` inpaintings per batch size (None: one call, n = batch). With
    ``short_strength``, a second job of one call at that strength gives each batch size's
    cost per pipeline call as ``fixed_s + unet_s * UNet calls`` (text encoding, VAE
    encode and decode, PNG writes in ``fixed_s``), which the study projection uses."""
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
        "speedups": asdict(speedups),
    }
    rows: list[dict[str, Any]] = []
    with load_hook(speedups) as hook:
        # Smallest first: every later row's gain is relative to it (batch 1 when measured).
        for batch in sorted(set(batches)):
            out = work / f"out-{arch}-b{batch}-{time.time_ns()}"

            def job(
                todo_strength: float, count: int, name: str, b: int = batch, out: Path = out
            ) -> dict[str, Any]:
                # Distinct seeds so nothing is reused.
                tasks = [
                    Task(
                        "bench",
                        radius_pct,
                        todo_strength,
                        seed,
                        str(mask_path),
                        str(out / name / f"{seed}.png"),
                    )
                    for seed in range(count)
                ]
                settings = Settings(steps=steps, dtype=dtype, batch_size=b)
                manifest = str(out / name / "manifest.json")
                reset_peak_memory()
                return run_job(
                    str(model_dir),
                    arch,
                    str(image_path),
                    "bench",
                    tasks,
                    settings,
                    manifest,
                    threads=threads,
                )

            if hook.pipe is None:
                # Loads the model (and compiles at this shape), as a real job does.
                first = job(strength, 1, "load")
                load_s, first_job_s = first["model_load_s"], first["total_s"]
            warm_started = time.perf_counter()
            _warm_up(hook.pipe, image, mask, batch)
            warmup_s = time.perf_counter() - warm_started
            count = n if n is not None else batch
            summary = job(strength, count, "timed")
            peak = peak_memory_gib()
            calls = unet_calls(hook.pipe.scheduler, steps, strength)
            row = _row(config, batch, count, calls, summary, load_s, rows[0] if rows else None)
            row.update(hook.first_load, warmup_s=round(warmup_s, 3), **peak)
            row["first_job_s"] = round(first_job_s, 3)
            if short_strength is not None:
                short = job(short_strength, batch, "short")
                row.update(_call_cost(row, hook.pipe.scheduler, steps, short_strength, short))
            rows.append(row)
            emit(row)
    return rows


def unet_calls(scheduler: Any, steps: int, strength: float) -> int:
    """UNet evaluations of one pipeline call, read off the scheduler as diffusers slices
    it (PNDM with skip_prk_steps repeats its first timestep: steps_run + 1)."""
    return len(schedule(scheduler, steps, strength))


def _call_cost(
    row: dict[str, Any], scheduler: Any, steps: int, short_strength: float, short: dict[str, Any]
) -> dict[str, Any]:
    """Per-call cost split into a fixed part and a part per UNet evaluation, from one
    long (row) and one short call per image batch."""
    long_calls, long_s = row["unet_calls"], row["compute_s"] / row["calls"]
    short_calls, short_s = unet_calls(scheduler, steps, short_strength), short["compute_s"]
    unet_s = (long_s - short_s) / (long_calls - short_calls)
    return {
        "short_strength": short_strength,
        "short_unet_calls": short_calls,
        "short_call_s": round(short_s, 4),
        "unet_s_per_call_step": round(unet_s, 5),
        "fixed_s_per_call": round(long_s - unet_s * long_calls, 4),
    }


def reset_peak_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_memory_gib() -> dict[str, float]:
    import torch

    if not torch.cuda.is_available():
        return {}
    return {
        "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
        "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 2),
    }


def _row(
    config: dict[str, Any],
    batch: int,
    n: int,
    calls: int,
    summary: dict[str, Any],
    load_s: float,
    base: dict[str, Any] | None,
) -> dict[str, Any]:
    """One batch size's numbers. The model was loaded by an earlier job (``load_s``), so
    the job's time outside the loop is its own (fingerprint, reads, manifest) plus that."""
    compute_s = summary["compute_s"]
    outside_s = summary["total_s"] - compute_s + load_s
    s_per = compute_s / n
    return {
        **config,
        "batch": batch,
        "n": n,
        "calls": -(-n // batch),
        "unet_calls": calls,
        "model_load_s": round(load_s, 3),
        "outside_loop_s": round(outside_s, 3),
        "compute_s": round(compute_s, 3),
        "total_s": round(compute_s + outside_s, 3),
        "s_per_inpainting": round(s_per, 4),
        "inpaintings_per_s": round(n / compute_s, 3),
        # A whole job's rate: what a Snakemake inpaint job of n inpaintings achieves.
        "job_inpaintings_per_s": round(n / (compute_s + outside_s), 3),
        # UNet evaluations of one image per second (PNDM's repeated first step counted).
        "unet_steps_per_s": round(calls * n / compute_s, 2),
        "outside_loop_share": round(outside_s / (compute_s + outside_s), 3),
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
    ("peak_allocated_gib", "peak GiB"),
    ("fixed_s_per_call", "fixed s/call"),
    ("unet_s_per_call_step", "s/UNet call"),
]


def print_table(rows: Sequence[dict[str, Any]]) -> None:
    table(rows, INPAINT_COLUMNS)
    attention = {str(row["attention"]) for row in rows}
    print(f"attention processors: {'; '.join(sorted(attention))}")
    warmups = [row["warmup_s"] for row in rows]
    print(f"first job (model load, first-shape compile) s: {rows[0]['first_job_s']}")
    print(f"warm-up call per batch size (compilation of a new shape) s: {warmups}")


def parse_size(text: str) -> tuple[int, int]:
    width, height = (int(v) for v in text.lower().split("x"))
    return width, height


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument(
        "--compile",
        nargs="?",
        const="default",
        default=None,
        choices=COMPILE_MODES,
        metavar="MODE",
        help=f"torch.compile the UNet (MODE one of {COMPILE_MODES}, default 'default')",
    )
    parser.add_argument("--compile-scope", choices=["unet", "repeated-blocks"], default="unet")
    parser.add_argument(
        "--compile-dynamic", action="store_true", help="one graph for every batch size"
    )
    parser.add_argument("--attention", choices=["default", "sdpa", "classic"], default="default")


def speedups_from(args: argparse.Namespace) -> Speedups:
    return Speedups(
        channels_last=args.channels_last,
        compile_mode=args.compile,
        compile_scope=args.compile_scope,
        attention=args.attention,
        compile_dynamic=args.compile_dynamic,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--arch", choices=["tiny", "sd15"], default="tiny")
    parser.add_argument("--unet-in-channels", type=int, choices=[4, 9], default=4)
    parser.add_argument("--size", default="640x416", help="WxH, multiples of 8")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--strength", type=float, default=1.0)
    parser.add_argument(
        "--n", type=int, default=None, help="inpaintings per batch size (default: one call)"
    )
    parser.add_argument(
        "--short-strength",
        type=float,
        default=None,
        help="also time one call at this strength per batch size: cost = fixed + per step",
    )
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
    if speedups.compile_mode and args.n and any(args.n % b for b in args.batch if b < args.n):
        print("note: --n is not a multiple of every batch; a smaller last batch recompiles")
    with work_folder(args.workdir) as work:
        model_dir, build_s = build_model(work, args.arch, args.unet_in_channels, args.dtype)
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
            short_strength=args.short_strength,
        )
    emit(environment(build_s))
    print_table(rows)


if __name__ == "__main__":
    main()
