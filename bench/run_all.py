"""All of maskleak's benchmarks in one run, at a named size, with one summary table.

1. inpaint stage (run_job): inpaintings/s, UNet steps/s, share of a job outside the
   denoising loop, gain from batching, peak GPU memory (bench/inpaint_throughput.py); for
   SD 1.5, the study's wall time projected from per-call costs (bench/projection.py);
2. ``snakemake -n --configfile config/thesis.yaml``: wall time and job count
   (bench/dry_run.py);
3. metrics stage (write_metrics) at 1 and 2 threads beside the PNG decode rate of the same
   inpaintings (bench/metrics_throughput.py);
4. (``gpu`` only) CUDA checks: determinism, batch composition, CUDA float16 and float32
   against CPU float32 (bench/cuda_checks.py).

Sizes: ``small`` (CI: about a minute on 2 CPU cores), ``full`` (CPU: the default config's
settings plus SD 1.5's architecture at a tiny size), ``gpu`` (the study's settings:
SD 1.5 at 640x416, 200 steps, float16, batches 1 4 8 16; for a GPU machine, where it
replaces parts 2 and 3, CPU work measured by the other sizes, with part 4). The GPU
options of inpaint_throughput.py (--channels-last, --compile, --attention) apply to the
inpaint part; bench/gpu_session.sh runs the GPU measurements of README "Performance":

    python bench/run_all.py --size small
    python bench/run_all.py --size gpu --channels-last --compile

Times are wall-clock on whatever else the machine is running; repeated parts report the
best and the median.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cuda_checks
import dry_run
import inpaint_throughput as inpaint_bench
import metrics_throughput as metrics_bench
import projection
from _report import emit, quiet, table, work_folder

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class InpaintCase:
    arch: str
    size: tuple[int, int]
    steps: int
    #: Inpaintings per batch size; None: one pipeline call (n = batch).
    n: int | None
    batches: tuple[int, ...]
    dtype: str = "auto"
    #: A second, short call per batch size splits a call's cost into fixed + per step.
    short_strength: float | None = None


@dataclass(frozen=True)
class Plan:
    inpaint: tuple[InpaintCase, ...]
    dry_run_repeats: int
    dry_run_clean_copy: bool
    metrics_n: int
    metrics_size: tuple[int, int]
    metrics_steps: int = 4
    metrics_repeats: int = 3
    cuda_checks: bool = False


PLANS = {
    # The default config's image size and steps, few inpaintings: CI, under 2 minutes.
    "small": Plan(
        inpaint=(InpaintCase("tiny", (192, 128), 10, 8, (1, 2, 4)),),
        dry_run_repeats=1,
        dry_run_clean_copy=False,
        metrics_n=24,
        metrics_size=(192, 128),
    ),
    # SD 1.5's real architecture, at a size and step count a CPU gets through in about
    # two minutes (its build, save and per-job weight fingerprint included).
    "full": Plan(
        inpaint=(
            InpaintCase("tiny", (192, 128), 10, 32, (1, 2, 4, 8)),
            InpaintCase("sd15", (128, 128), 2, 1, (1,)),
        ),
        dry_run_repeats=3,
        dry_run_clean_copy=True,
        # The metrics goal is set at the study's image size (decode costs grow with it).
        metrics_n=48,
        metrics_size=(640, 416),
    ),
    # The study's settings (config/thesis.yaml: max_side 650, multiple 32; its 3:2
    # photographs became 640x416), one call per batch size at strength 1 and one at 0.1.
    # The CPU-side parts (dry run, metrics) are measured by the other sizes; instead the
    # CUDA checks run: determinism and the distance from CPU float32 results.
    "gpu": Plan(
        inpaint=(InpaintCase("sd15", (640, 416), 200, None, (1, 4, 8, 16), "float16", 0.1),),
        dry_run_repeats=0,
        dry_run_clean_copy=False,
        metrics_n=0,
        metrics_size=(640, 416),
        cuda_checks=True,
    ),
}


def run(plan: Plan, work: Path, speedups: inpaint_bench.Speedups, threads: int | None) -> None:
    started = time.perf_counter()
    summary: list[dict[str, Any]] = []

    print("== 1. inpaint stage (run_job)", flush=True)
    tiny_dir: Path | None = None
    for case in plan.inpaint:
        model_dir, build_s = inpaint_bench.build_model(work, case.arch, 4, case.dtype)
        if case.arch == "tiny":
            tiny_dir = model_dir
        width, height = case.size
        image_path, mask_path = inpaint_bench.write_inputs(work, width, height, 80.0)
        rows = inpaint_bench.measure(
            model_dir,
            case.arch,
            image_path,
            mask_path,
            work,
            steps=case.steps,
            strength=1.0,
            n=case.n,
            batches=case.batches,
            dtype=case.dtype,
            threads=threads,
            speedups=speedups,
            short_strength=case.short_strength,
        )
        emit(inpaint_bench.environment(build_s))
        inpaint_bench.print_table(rows)
        summary += _inpaint_summary(rows, build_s)

    if plan.dry_run_repeats:
        print("== 2. snakemake -n on config/thesis.yaml", flush=True)
        dry_rows = [dry_run.measure("config/thesis.yaml", plan.dry_run_repeats)]
        if plan.dry_run_clean_copy:
            dry_rows.append(dry_run.measure("config/thesis.yaml", 1, clean_copy=True))
        table(dry_rows, dry_run.DRY_RUN_COLUMNS)
        for row in dry_rows:
            where = row["where"]
            summary.append(_line(f"snakemake -n thesis.yaml ({where})", "wall s", row["best_s"]))
            summary.append(_line(f"snakemake -n thesis.yaml ({where})", "jobs", row["jobs"]))

    if plan.metrics_n:
        print("== 3. metrics stage beside PNG decoding", flush=True)
        if tiny_dir is None:
            tiny_dir, _ = inpaint_bench.build_model(work, "tiny", 4)
        width, height = plan.metrics_size
        n, steps, repeats = plan.metrics_n, plan.metrics_steps, plan.metrics_repeats
        metric_rows = metrics_bench.run(
            tiny_dir, work / "metrics", n, width, height, steps, repeats
        )
        table(metric_rows, metrics_bench.METRICS_COLUMNS)
        for row in metric_rows:
            what = f"{row['what']} x{row['threads']} ({row['pngs']} PNGs {width}x{height})"
            summary.append(_line(what, "PNGs/s", row["pngs_per_s"]))
            if "ratio_to_decode" in row:
                summary.append(_line(what, "rate / decode rate", row["ratio_to_decode"]))

    if plan.cuda_checks:
        print("== 4. CUDA checks: determinism, CUDA float16 against CPU float32", flush=True)
        check_rows = cuda_checks.run(work / "cuda-checks")
        table(check_rows, cuda_checks.COLUMNS)
        summary += [
            _line(r["what"], "max |diff| (8-bit levels)", r["max_abs_diff"]) for r in check_rows
        ]

    total_s = time.perf_counter() - started
    summary.append(_line("whole benchmark (after imports)", "wall s", round(total_s, 1)))
    emit({"kind": "summary", "rows": summary})
    print("== summary")
    table(summary, [("what", "what"), ("measure", "measure"), ("value", "value")])


def _line(what: str, measure: str, value: Any) -> dict[str, Any]:
    return {"what": what, "measure": measure, "value": value}


def _inpaint_summary(rows: list[dict[str, Any]], build_s: float) -> list[dict[str, Any]]:
    first = rows[0]
    label = f"inpaint {first['arch']} {first['size']} {first['steps']} steps"
    lines = [_line(label, "model build s", round(build_s, 2))]
    for row in rows:
        at = f"{label}, batch {row['batch']}"
        lines.append(_line(at, "s/inpainting", row["s_per_inpainting"]))
        lines.append(_line(at, "UNet steps/s", row["unet_steps_per_s"]))
        lines.append(_line(at, "outside-loop share", row["outside_loop_share"]))
        if "peak_allocated_gib" in row:
            lines.append(_line(at, "peak GPU memory GiB", row["peak_allocated_gib"]))
        if row["batch"] != row["gain_vs_batch"]:
            lines.append(_line(at, f"gain vs batch {row['gain_vs_batch']}", row["batch_gain"]))
    if first["arch"] == "sd15" and "unet_s_per_call_step" in first:
        _study_projection(rows)
    return lines


def _study_projection(rows: list[dict[str, Any]]) -> None:
    """The study's two experiments projected from these rows' per-call costs, at each
    measured batch size, with merged calls (run_job today) and one call at a time."""
    lines = projection.from_rows(rows)
    for line in lines:
        emit({"kind": "projection", **line})
    print(f"== the study projected from {first_label(rows)} (bench/projection.py)")
    table(lines, projection.SUMMARY_COLUMNS)


def first_label(rows: list[dict[str, Any]]) -> str:
    first = rows[0]
    return f"{first['arch']} {first['size']} {first['steps']} steps {first['dtype']}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", choices=sorted(PLANS), default="small")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads for the inpaint jobs (the workflow's inpaint rule uses 1)",
    )
    parser.add_argument(
        "--workdir", default=None, help="kept and reused (models built once); default: temporary"
    )
    parser.add_argument(
        "--batch", type=int, nargs="+", default=None, help="batch sizes (default: the size's)"
    )
    parser.add_argument(
        "--no-cuda-checks", action="store_true", help="skip the CUDA checks of --size gpu"
    )
    inpaint_bench.add_arguments(parser)
    args = parser.parse_args()
    quiet()
    plan = PLANS[args.size]
    if args.batch:
        cases = tuple(replace(case, batches=tuple(args.batch)) for case in plan.inpaint)
        plan = replace(plan, inpaint=cases)
    if args.no_cuda_checks:
        plan = replace(plan, cuda_checks=False)
    with work_folder(args.workdir) as work:
        run(plan, work, inpaint_bench.speedups_from(args), args.threads or None)


if __name__ == "__main__":
    main()
