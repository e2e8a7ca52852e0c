"""All of maskleak's benchmarks in one run, at a named size, with one summary table.

1. inpaint stage (run_job): inpaintings/s, UNet steps/s, share of a job outside the
   denoising loop, gain from batching (bench/inpaint_throughput.py);
2. ``snakemake -n --configfile config/thesis.yaml``: wall time and job count
   (bench/dry_run.py);
3. metrics stage (write_metrics) at 1 and 2 threads beside the PNG decode rate of the same
   inpaintings (bench/metrics_throughput.py).

Sizes: ``small`` (CI: about a minute on 2 CPU cores), ``full`` (CPU: the default config's
settings plus SD 1.5's architecture at a tiny size), ``gpu`` (the study's settings:
SD 1.5 at 640x480, 200 steps, float16, batches 1 4 8 16; for a GPU machine). The GPU
options of inpaint_throughput.py (--channels-last, --compile, --attention) apply to the
inpaint part:

    python bench/run_all.py --size small
    python bench/run_all.py --size gpu --channels-last --compile

Times are wall-clock on whatever else the machine is running; repeated parts report the
best and the median.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dry_run
import inpaint_throughput as inpaint_bench
import metrics_throughput as metrics_bench
import yaml
from _report import emit, quiet, table, work_folder

from maskleak.config import Plan as MaskleakPlan
from maskleak.resources import unet_steps

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class InpaintCase:
    arch: str
    size: tuple[int, int]
    steps: int
    n: int
    batches: tuple[int, ...]
    dtype: str = "auto"


@dataclass(frozen=True)
class Plan:
    inpaint: tuple[InpaintCase, ...]
    dry_run_repeats: int
    dry_run_clean_copy: bool
    metrics_n: int
    metrics_size: tuple[int, int]
    metrics_steps: int = 4
    metrics_repeats: int = 3


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
        metrics_n=96,
        metrics_size=(192, 128),
    ),
    # The study's settings (config/thesis.yaml: max_side 650, multiple 32 -> 640x480),
    # n a multiple of every batch. Metrics run on the CPU at the study's image size.
    "gpu": Plan(
        inpaint=(InpaintCase("sd15", (640, 480), 200, 16, (1, 4, 8, 16), "float16"),),
        dry_run_repeats=3,
        dry_run_clean_copy=True,
        metrics_n=96,
        metrics_size=(640, 480),
    ),
}


def run(plan: Plan, work: Path, speedups: inpaint_bench.Speedups, threads: int | None) -> None:
    started = time.perf_counter()
    summary: list[dict[str, Any]] = []

    print("== 1. inpaint stage (run_job)", flush=True)
    tiny_dir: Path | None = None
    for case in plan.inpaint:
        model_dir, build_s = inpaint_bench.build_model(work, case.arch, 4)
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
        )
        emit(inpaint_bench.environment(build_s))
        inpaint_bench.print_table(rows)
        summary += _inpaint_summary(rows, build_s)

    print("== 2. snakemake -n on config/thesis.yaml", flush=True)
    dry_rows = [dry_run.measure("config/thesis.yaml", plan.dry_run_repeats)]
    if plan.dry_run_clean_copy:
        dry_rows.append(dry_run.measure("config/thesis.yaml", 1, clean_copy=True))
    table(dry_rows, dry_run.DRY_RUN_COLUMNS)
    for row in dry_rows:
        where = row["where"]
        summary.append(_line(f"snakemake -n thesis.yaml ({where})", "wall s", row["best_s"]))
        summary.append(_line(f"snakemake -n thesis.yaml ({where})", "jobs", row["jobs"]))

    print("== 3. metrics stage beside PNG decoding", flush=True)
    if tiny_dir is None:
        tiny_dir, _ = inpaint_bench.build_model(work, "tiny", 4)
    width, height = plan.metrics_size
    n, steps, repeats = plan.metrics_n, plan.metrics_steps, plan.metrics_repeats
    metric_rows = metrics_bench.run(tiny_dir, work / "metrics", n, width, height, steps, repeats)
    table(metric_rows, metrics_bench.METRICS_COLUMNS)
    for row in metric_rows:
        what = f"{row['what']} x{row['threads']} ({row['pngs']} PNGs {width}x{height})"
        summary.append(_line(what, "PNGs/s", row["pngs_per_s"]))
        if "ratio_to_decode" in row:
            summary.append(_line(what, "rate / decode rate", row["ratio_to_decode"]))

    total_s = time.perf_counter() - started
    summary.append(_line("whole benchmark (after imports)", "wall s", round(total_s, 1)))
    emit({"kind": "summary", "rows": summary})
    print("== summary")
    table(summary, [("what", "what"), ("measure", "measure"), ("value", "value")])


def _line(what: str, measure: str, value: Any) -> dict[str, Any]:
    return {"what": what, "measure": measure, "value": value}


#: The study's own timings (STUDY.md): 21 s per inpainting, 12 h and 18 h for its two
#: experiments, by hand on one GPU.
STUDY_S_PER_INPAINTING = 21.0
STUDY_HOURS = {"strength_sweep": 12.0, "mask_size_sweep": 18.0}


@dataclass(frozen=True)
class StudyWork:
    """What the workflow runs for the study: UNet steps per experiment, inpaint jobs
    (one per model and image, each holding every experiment) and inpaintings."""

    unet_steps: dict[str, int]
    jobs: int
    inpaintings: int


def study_work(config_path: Path = REPO / "config/thesis.yaml") -> StudyWork:
    config = yaml.safe_load(config_path.read_text())
    plan = MaskleakPlan(config)
    steps = int(config["inpaint"]["steps"])
    totals = dict.fromkeys(plan.experiments, 0)
    for model in plan.models:
        for image in plan.images:
            for name in totals:
                tasks = [t for t in plan.tasks(model, image) if t["experiment"] == name]
                totals[name] += unet_steps(tasks, steps)
    return StudyWork(totals, len(plan.manifests()), plan.n_inpaintings())


def _study_projection(label: str, row: dict[str, Any]) -> list[dict[str, Any]]:
    """The study's wall time on one GPU at this row's UNet steps/s (measured at strength
    1, so each inpainting's VAE passes and PNG write are included), plus each inpaint
    job's time outside the loop (model load, fingerprint); every job holds all
    experiments, so each experiment gets an equal share of it."""
    work = study_work()
    lines = []
    total_h = 0.0
    overhead_s = work.jobs * (row["total_s"] - row["compute_s"]) / len(work.unet_steps)
    for name, n_steps in work.unet_steps.items():
        hours = (n_steps / row["unet_steps_per_s"] + overhead_s) / 3600
        total_h += hours
        study = STUDY_HOURS.get(name)
        lines.append(_line(label, f"projected {name} h (study: {study} h)", round(hours, 2)))
    per_inpainting = total_h * 3600 / work.inpaintings
    lines.append(
        _line(
            label,
            f"projected s/inpainting over the study (study: {STUDY_S_PER_INPAINTING} s)",
            round(per_inpainting, 3),
        )
    )
    return lines


def _inpaint_summary(rows: list[dict[str, Any]], build_s: float) -> list[dict[str, Any]]:
    first = rows[0]
    label = f"inpaint {first['arch']} {first['size']} {first['steps']} steps"
    lines = [_line(label, "model build s", round(build_s, 2))]
    for row in rows:
        at = f"{label}, batch {row['batch']}"
        lines.append(_line(at, "inpaintings/s", row["inpaintings_per_s"]))
        lines.append(_line(at, "UNet steps/s", row["unet_steps_per_s"]))
        lines.append(_line(at, "outside-loop share", row["outside_loop_share"]))
        if row["batch"] != row["gain_vs_batch"]:
            lines.append(_line(at, f"gain vs batch {row['gain_vs_batch']}", row["batch_gain"]))
    if first["arch"] == "sd15":
        best = max(rows, key=lambda r: r["unet_steps_per_s"])
        lines += _study_projection(f"{label}, batch {best['batch']}", best)
    return lines


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
    inpaint_bench.add_arguments(parser)
    args = parser.parse_args()
    quiet()
    with work_folder(args.workdir) as work:
        run(PLANS[args.size], work, inpaint_bench.speedups_from(args), args.threads or None)


if __name__ == "__main__":
    main()
