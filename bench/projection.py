"""The study's wall time projected from measured per-call costs, job by job, exactly as
the workflow would batch its inpaintings.

One inpaint job per model and image holds every experiment; inside a job,
``maskleak.inpaint`` makes one pipeline call per strength and chunk of at most
``batch_size`` inpaintings (a call has one strength: it sets the timesteps). Called one
after the other (``merged=False``, the code before merged calls), the strength sweep, one
inpainting per strength and image, runs at batch 1 whatever the setting, and the
mask-size sweep, 50 radii per strength, fills its batches. With merged calls (what
run_job does for batch sizes above 1), the UNet evaluations of all calls are packed by
the real :class:`maskleak.merged_calls.UNetMerger`, run here with a UNet that only
records batch sizes. Each call costs ``fixed_s`` at its own size (text encoding, VAE,
PNG writes) plus ``unet_s`` per UNet evaluation at the evaluation's batch size, both
measured at batch sizes 1, 4, 8, 16 by inpaint_throughput.py (linear in between); each
job adds its time outside the loop (model load, weight fingerprint). Merged calls
overlap their fixed parts with other calls' UNet work, which this sum ignores. Several
GPUs: the jobs are dealt out longest first to whichever GPU frees first, as Slurm's
queue would start them."""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from maskleak.config import Plan
from maskleak.inpaint import pipeline_calls
from maskleak.merged_calls import should_merge
from maskleak.pipeline_choice import steps_run

REPO = Path(__file__).resolve().parents[1]

#: The study's own timings (STUDY.md): 21 s per inpainting, 12 h and 18 h for its two
#: experiments, by hand on one GPU.
STUDY_S_PER_INPAINTING = 21.0
STUDY_HOURS = {"strength_sweep": 12.0, "mask_size_sweep": 18.0}


@dataclass(frozen=True)
class CallCost:
    """Seconds per pipeline call at each measured batch size: fixed + per UNet call."""

    fixed_s: Mapping[int, float]
    unet_s: Mapping[int, float]

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, Any]]) -> CallCost:
        fitted = [r for r in rows if "unet_s_per_call_step" in r]
        if not fitted:
            raise ValueError("no row has a per-call cost (measure with short_strength)")
        return cls(
            {r["batch"]: r["fixed_s_per_call"] for r in fitted},
            {r["batch"]: r["unet_s_per_call_step"] for r in fitted},
        )

    def seconds(self, batch: int, unet_calls: int) -> float:
        return self.fixed(batch) + self.unet(batch) * unet_calls

    def fixed(self, batch: int) -> float:
        return _interpolate(self.fixed_s, batch)

    def unet(self, batch: int) -> float:
        return _interpolate(self.unet_s, batch)


def _interpolate(points: Mapping[int, float], x: int) -> float:
    xs = sorted(points)
    if x <= xs[0]:
        return points[xs[0]]
    if x >= xs[-1]:
        return points[xs[-1]] * x / xs[-1]  # beyond the largest batch: per-image cost
    hi = next(v for v in xs if v >= x)
    lo = max(v for v in xs if v <= x)
    if hi == lo:
        return points[lo]
    return points[lo] + (points[hi] - points[lo]) * (x - lo) / (hi - lo)


@dataclass(frozen=True)
class Projection:
    batch_size: int
    #: Seconds of pipeline calls per experiment on one GPU (shared inpaintings counted
    #: once, under the first experiment that lists them).
    experiment_s: dict[str, float]
    #: Seconds per inpaint job (image), its time outside the loop included.
    job_s: list[float]
    inpaintings: int

    @property
    def one_gpu_s(self) -> float:
        return sum(self.job_s)

    def gpus_s(self, gpus: int) -> float:
        """Makespan with the jobs dealt longest first to the GPU that frees first."""
        free_at = [0.0] * gpus
        for seconds in sorted(self.job_s, reverse=True):
            heapq.heappush(free_at, heapq.heappop(free_at) + seconds)
        return max(free_at)


def project(
    cost: CallCost,
    job_outside_s: float,
    batch_size: int,
    schedule: Callable[[int, float], list[float]],
    config_path: Path = REPO / "config/thesis.yaml",
    merged: bool = False,
) -> Projection:
    """Project ``config_path``'s inpaint jobs at ``batch_size``; ``schedule(steps,
    strength)`` is the timesteps one call evaluates the UNet at
    (:func:`maskleak.merged_calls.schedule`)."""
    config = yaml.safe_load(config_path.read_text())
    plan = Plan(config)
    steps = int(config["inpaint"]["steps"])
    experiment_s: dict[str, float] = defaultdict(float)
    job_s = []
    for model in plan.models:
        for image in plan.images:
            seconds = job_outside_s
            by_strength: dict[float, list[str]] = defaultdict(list)
            seen: set[str] = set()
            for task in plan.tasks(model, image):
                if task["inpainted_path"] in seen:
                    continue
                seen.add(task["inpainted_path"])
                by_strength[float(task["strength"])].append(task["experiment"])
            denoised = {}
            for strength, experiments in by_strength.items():
                if steps_run(steps, strength) == 0:
                    # The VAE round trip: computed once per job, about one call's fixed part.
                    experiment_s[experiments[0]] += cost.fixed(1)
                    seconds += cost.fixed(1)
                else:
                    denoised[strength] = experiments
            calls = [
                (schedule(steps, strength), experiments)
                for strength, experiments in pipeline_calls(denoised, batch_size)
            ]
            for experiment, s in _job_calls(cost, calls, batch_size, merged).items():
                experiment_s[experiment] += s
                seconds += s
            job_s.append(seconds)
    return Projection(batch_size, dict(experiment_s), job_s, plan.n_inpaintings())


def _job_calls(
    cost: CallCost,
    calls: Sequence[tuple[list[float], Sequence[str]]],
    batch_size: int,
    merged: bool,
) -> dict[str, float]:
    """Seconds of one job's pipeline calls (each with its schedule and the experiments of
    its inpaintings), each call's cost shared among its inpaintings' experiments."""
    seconds: dict[str, float] = defaultdict(float)
    if merged and should_merge(batch_size, len(calls)):
        unet_s = _merged_unet_s(cost, [(t, len(e)) for t, e in calls], batch_size)
    else:
        unet_s = [cost.unet(len(e)) * len(t) for t, e in calls]
    for (_, experiments), call_unet_s in zip(calls, unet_s, strict=True):
        per_inpainting = (cost.fixed(len(experiments)) + call_unet_s) / len(experiments)
        for experiment in experiments:
            seconds[experiment] += per_inpainting
    return seconds


def _merged_unet_s(
    cost: CallCost, calls: Sequence[tuple[list[float], int]], batch_size: int
) -> list[float]:
    """UNet seconds of each call when merged: every evaluation's cost at its batch size,
    shared among the calls in it by their images."""
    key = (tuple((tuple(t), n) for t, n in calls), batch_size)
    if key not in _PACKINGS:
        _PACKINGS[key] = packing(calls, batch_size)
    shares = [0.0] * len(calls)
    for members in _PACKINGS[key]:
        images = sum(members.values())
        evaluation_s = cost.unet(images)
        for index, n in members.items():
            shares[index] += evaluation_s * n / images
    return shares


_PACKINGS: dict[Any, list[dict[int, int]]] = {}


def packing(calls: Sequence[tuple[list[float], int]], batch_size: int) -> list[dict[int, int]]:
    """The UNet evaluations the real UNetMerger makes for calls given as (schedule,
    images), each as {call index: images}: the merger runs with a stand-in UNet that
    records which calls' images each evaluation holds."""
    import torch

    from maskleak.merged_calls import LIVE_BATCHES, Call, UNetMerger

    evaluations: list[dict[int, int]] = []

    def record(sample: Any, timestep: Any, **kwargs: Any) -> tuple[Any]:
        evaluations.append(dict(Counter(int(i) for i in sample[:, 0].tolist())))
        return (sample,)

    def job(index: int, timesteps: list[float], images: int) -> Callable[[Any], None]:
        def run(unet: Any) -> None:
            sample = torch.full((images, 1), index)
            hidden = torch.zeros((images, 1))
            for t in timesteps:
                unet(sample, torch.tensor(t), encoder_hidden_states=hidden, return_dict=False)

        return run

    merger = UNetMerger(record, batch_size, LIVE_BATCHES * batch_size)
    merger.run([Call(t, n, job(i, t, n)) for i, (t, n) in enumerate(calls)])
    return evaluations


def summary_row(projection: Projection, merged: bool, gpus: int = 8) -> dict[str, Any]:
    """One line of the projection table, beside the study's own hours."""
    share = (projection.one_gpu_s - sum(projection.experiment_s.values())) / len(
        projection.experiment_s
    )
    row: dict[str, Any] = {"batch_size": projection.batch_size, "merged": merged}
    for name, seconds in projection.experiment_s.items():
        # Each job's time outside the loop is shared equally by the experiments it holds.
        row[f"{name}_h"] = round((seconds + share) / 3600, 2)
    row["one_gpu_min"] = round(projection.one_gpu_s / 60, 1)
    row[f"gpus_{gpus}_min"] = round(projection.gpus_s(gpus) / 60, 1)
    row["s_per_inpainting"] = round(projection.one_gpu_s / projection.inpaintings, 3)
    row["speedup_vs_study"] = round(sum(STUDY_HOURS.values()) * 3600 / projection.one_gpu_s, 1)
    return row


SUMMARY_COLUMNS = [
    ("batch_size", "batch_size"),
    ("merged", "merged calls"),
    ("strength_sweep_h", f"strength sweep h (study {STUDY_HOURS['strength_sweep']})"),
    ("mask_size_sweep_h", f"mask-size sweep h (study {STUDY_HOURS['mask_size_sweep']})"),
    ("one_gpu_min", "1 GPU min"),
    ("gpus_8_min", "8 GPUs min"),
    ("s_per_inpainting", f"s/inpainting (study {STUDY_S_PER_INPAINTING})"),
    ("speedup_vs_study", "x study"),
]


def from_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The projection table for measured rows (inpaint_throughput.py's, of SD 1.5 with
    short_strength), with merged calls and one call at a time, at each measured batch."""
    import statistics

    from maskleak import merged_calls, models

    cost = CallCost.from_rows(rows)
    outside_s = statistics.median(row["outside_loop_s"] for row in rows)
    scheduler = models.sd15_scheduler()

    def schedule(steps: int, strength: float) -> list[float]:
        return merged_calls.schedule(scheduler, steps, strength)

    lines = []
    for merged in (False, True):
        for row in rows:
            result = project(cost, outside_s, row["batch"], schedule, merged=merged)
            lines.append({**summary_row(result, merged), "job_s": result.job_s})
    return lines


def main() -> None:
    """Recompute the projection from saved JSON lines, e.g. docs/gpu-2026-11-26/*.jsonl:

    python bench/projection.py docs/gpu-2026-11-26/eager.jsonl
    """
    import argparse
    import json

    from _report import table

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("jsonl", nargs="+")
    for path in parser.parse_args().jsonl:
        with open(path) as handle:
            rows = [json.loads(line) for line in handle]
        rows = [row for row in rows if row.get("kind") == "inpaint"]
        print(f"== {path}")
        table(from_rows(rows), SUMMARY_COLUMNS)


if __name__ == "__main__":
    main()
