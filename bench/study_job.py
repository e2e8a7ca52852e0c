"""One inpaint job of the study, timed end to end as the workflow runs it.

The workflow makes one inpaint job per model and image holding every experiment: for
config/thesis.yaml that is 250 inpaintings (the strength sweep's 100 strengths at
r = 80 % and the mask-size sweep's 50 radii x 3 strengths; the two share their r = 80 %
inpaintings at 0.1 and 0.9). This runs exactly that task list through the real run_job
on a procedural landscape of the study's size, with SD 1.5's architecture (random
weights) and the config's settings, and prints the job's time, its UNet evaluations
and their mean batch, and the study's wall time it implies: 20 such jobs on one GPU,
and on 8 GPUs the 3 jobs the busiest GPU runs.

    python bench/study_job.py [--batch-size auto|N] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml
from _report import emit, quiet, table, work_folder
from inpaint_throughput import (
    Speedups,
    add_arguments,
    build_model,
    environment,
    load_hook,
    peak_memory_gib,
    reset_peak_memory,
    speedups_from,
)
from projection import STUDY_HOURS, STUDY_S_PER_INPAINTING

from maskleak.config import Plan
from maskleak.inpaint import Settings, Task, run_job
from maskleak.landscapes import generate_landscape
from maskleak.masks import circle_mask
from maskleak.provenance import save_png

REPO = Path(__file__).resolve().parents[1]


def study_tasks(
    work: Path, width: int, height: int, plan: Plan, top_strengths: int | None = None
) -> tuple[Path, list[Task]]:
    """The plan's first image's inpaint job, with its masks drawn at ``width`` x
    ``height`` and every path moved under ``work``; with ``top_strengths``, only the
    strength sweep's that many highest strengths."""
    model, image_name = next(iter(plan.models)), next(iter(plan.images))
    rgb, _ = generate_landscape(1, width, height)
    image = work / "image.png"
    save_png(rgb, image, {"stage": "bench"})
    out = work / f"run-{time.time_ns()}"  # a fresh folder: nothing is reused
    tasks = []
    records = plan.tasks(model, image_name)
    if top_strengths is not None:
        sweep = [r for r in records if r["experiment"] == "strength_sweep"]
        records = sorted(sweep, key=lambda r: -r["strength"])[:top_strengths]
    for rec in records:
        mask = work / rec["mask_path"]
        if not mask.exists():
            save_png(circle_mask(width, height, rec["radius_pct"]), mask, {"stage": "bench"})
        inpainted = out / Path(rec["inpainted_path"]).name
        tasks.append(
            Task(
                rec["experiment"],
                rec["radius_pct"],
                rec["strength"],
                rec["seed"],
                str(mask),
                str(inpainted),
            )
        )
    return image, tasks


def run(
    work: Path,
    batch_size: int | str,
    config_path: Path,
    size: tuple[int, int],
    top_strengths: int | None = None,
    speedups: Speedups | None = None,
    repeat: int = 1,
) -> list[dict[str, Any]]:
    """Time the job ``repeat`` times (fresh outputs each time, the loaded and compiled
    pipeline reused from the second time on); one row each."""
    config = yaml.safe_load(config_path.read_text())
    plan = Plan(config)
    model_dir, build_s = build_model(work, "sd15", 4, "float16")
    settings = {k: v for k, v in config["inpaint"].items() if k != "batch_size"}
    rows = []
    with load_hook(speedups or Speedups()) as hook:
        for repetition in range(repeat):
            image, tasks = study_tasks(work, *size, plan, top_strengths)
            reset_peak_memory()
            summary = run_job(
                str(model_dir),
                "sd15",
                str(image),
                "bench",
                tasks,
                Settings(**settings, batch_size=batch_size),
                str(Path(tasks[0].inpainted_path).parent / "manifest.json"),
                threads=1,
            )
            row = _row(plan, summary, size, top_strengths is None)
            row.update(build_s=round(build_s, 1), speedups=asdict(hook.speedups), repeat=repetition)
            row.update(peak_memory_gib())
            emit(row)
            rows.append(row)
    return rows


def _row(
    plan: Plan, summary: dict[str, Any], size: tuple[int, int], whole_job: bool
) -> dict[str, Any]:
    row = {
        "kind": "study_job",
        **summary,
        "size": f"{size[0]}x{size[1]}",
        "mean_unet_batch": round(
            summary.get("unet_images", 0) / max(summary.get("unet_evaluations", 1), 1), 2
        ),
    }
    if whole_job:
        # Every image's job holds the same inpaintings: the config's wall time is its jobs'.
        jobs, inpaintings = len(plan.manifests()), plan.n_inpaintings()
        job_s = summary["total_s"]
        one_gpu_s = jobs * job_s
        row.update(
            jobs=jobs,
            study_1_gpu_min=round(one_gpu_s / 60, 1),
            study_8_gpus_min=round(math.ceil(jobs / 8) * job_s / 60, 1),
            s_per_inpainting=round(one_gpu_s / inpaintings, 3),
            speedup_vs_study=round(sum(STUDY_HOURS.values()) * 3600 / one_gpu_s, 1),
        )
    return row


COLUMNS = [
    ("listed", "inpaintings"),
    ("batch_size", "batch"),
    ("pipeline_calls", "calls"),
    ("unet_evaluations", "UNet evals"),
    ("mean_unet_batch", "mean batch"),
    ("model_load_s", "load s"),
    ("compute_s", "compute s"),
    ("total_s", "job s"),
    ("peak_allocated_gib", "peak GiB"),
    ("study_1_gpu_min", "study, 1 GPU min"),
    ("study_8_gpus_min", "8 GPUs min"),
    ("s_per_inpainting", f"s/inpainting (study {STUDY_S_PER_INPAINTING})"),
    ("speedup_vs_study", "x study"),
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch-size", default="auto")
    parser.add_argument("--size", default="640x416")
    parser.add_argument("--config", default=str(REPO / "config/thesis.yaml"))
    parser.add_argument("--workdir", default=None)
    parser.add_argument(
        "--top-strengths", type=int, default=None, help="only the strength sweep's N highest"
    )
    parser.add_argument("--repeat", type=int, default=1, help="time the job N times")
    add_arguments(parser)
    args = parser.parse_args()
    quiet()
    batch = args.batch_size if args.batch_size == "auto" else int(args.batch_size)
    width, height = (int(v) for v in args.size.split("x"))
    with work_folder(args.workdir) as work:
        rows = run(
            work,
            batch,
            Path(args.config),
            (width, height),
            args.top_strengths,
            speedups_from(args),
            args.repeat,
        )
    emit(environment(rows[0]["build_s"]))
    table(rows, COLUMNS)


if __name__ == "__main__":
    main()
