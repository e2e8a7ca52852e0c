"""An inpaint job's plan and live progress lines: a real job watched through its log file
while it runs, the plan's counts after a rerun, and the line's arithmetic on an injected
clock."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import time
from pathlib import Path

from maskleak import progress
from maskleak.inpaint import Settings, Task, run_job
from maskleak.progress import Progress, duration, fitted_left, progress_line, rate

PROGRESS = re.compile(r"maskleak\.progress: progress (\d+)/(\d+) inpaintings")

JOB = """
import json, sys
from maskleak.inpaint import run_job_from_params
from maskleak.logs import log_to

args = json.loads(sys.argv[1])
with log_to(args.pop("log")):
    run_job_from_params(**args)
"""


def sweep(out: Path, scene, strengths, seeds, experiment: str = "strength_sweep") -> list[Task]:
    return [
        Task(experiment, 80.0, s, seed, scene["mask80"], str(out / f"r80_s{s}_seed{seed}.png"))
        for s in strengths
        for seed in seeds
    ]


def test_a_running_job_logs_its_progress_line_by_line(tiny_models, scene, tmp_path):
    """The job runs as a workflow script runs it (run_job_from_params inside log_to);
    the log file, read while the job runs, shows progress before the job is done."""
    log, manifest = tmp_path / "logs" / "inpaint.log", tmp_path / "manifest.json"
    tasks = sweep(tmp_path / "out", scene, (0.0, 0.25, 0.5, 0.75, 1.0), range(8))
    args = {
        "log": str(log),
        "model_dir": str(tiny_models[9]),
        "model_name": "tiny",
        "image_path": scene["image"],
        "image_name": "image",
        "tasks": [vars(t) for t in tasks],
        "settings": {"steps": 10, "batch_size": 1},
        "variant": None,
        "manifest_path": str(manifest),
    }
    job = subprocess.Popen(
        [sys.executable, "-c", JOB, json.dumps(args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    early: list[tuple[int, int]] = []  # progress lines seen while the job still ran
    deadline = time.monotonic() + 600
    while job.poll() is None and time.monotonic() < deadline:
        text = log.read_text() if log.exists() else ""
        # Read before looking for the manifest: a line seen here was written before it.
        if not manifest.exists():
            early += [(int(a), int(b)) for a, b in PROGRESS.findall(text)]
        time.sleep(0.02)
    _, stderr = job.communicate(timeout=60)
    assert job.returncode == 0, stderr[-3000:]

    assert early and early[0][0] < 40, "no progress line before the job finished"
    text = log.read_text()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    plan = [i for i, line in enumerate(lines) if "plan: " in line]
    done = [i for i, line in enumerate(lines) if PROGRESS.search(line)]
    assert len(plan) == 2 and plan[-1] < done[0]
    assert lines[plan[0]].endswith(
        "plan: 40 inpaintings for model tiny on image image: 40 to compute, 0 reused from "
        "PNGs whose key matches; device cpu, dtype float32"
    )
    # 8 strength-0 round trips (one unit), then 32 calls of one image, one line each.
    assert len(done) == 1 + 32
    assert re.search(
        r"progress 40/40 inpaintings \(100 %\), (\d+)/\1 UNet .* ETA 0:00:00$", lines[done[-1]]
    )
    assert "summary {" in text and "40 inpaintings listed, 0 reused, 40 computed" in text


def test_plan_counts_what_a_rerun_computes_and_reuses(tiny_models, scene, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    out = tmp_path / "out"
    settings = Settings(steps=4, batch_size=1)

    def job(tasks: list[Task]) -> list[str]:
        caplog.clear()
        run_job(
            str(tiny_models[9]), "tiny", scene["image"], "image", tasks, settings, str(out / "m")
        )
        return [r.getMessage() for r in caplog.records if r.getMessage().startswith("plan: ")]

    assert len(job(sweep(out, scene, (0.0, 0.5), (0, 1)))) == 2
    # One more strength and seed, and an inpainting a second experiment shares.
    grown = sweep(out, scene, (0.0, 0.5, 1.0), (0, 1, 2))
    grown += sweep(out, scene, (0.5,), (0,), experiment="mask_size_sweep")
    # To compute: the round trip of seed 2; strength 0.5 seed 2 (3 UNet evaluations at 4
    # PNDM steps) and strength 1 seeds 0-2 (5 each): 18 evaluations in 4 calls.
    assert job(grown) == [
        "plan: 10 inpaintings (9 distinct: experiments share the rest) for model tiny on "
        "image image: 5 to compute, 4 reused from PNGs whose key matches; device cpu, "
        "dtype float32",
        "plan: batch size 1: 1 VAE round trips (strengths below one step; one VAE pass); "
        "4 denoised in 4 pipeline calls, 18 UNet evaluations",
    ]
    progress_lines = [r.getMessage() for r in caplog.records if r.name == "maskleak.progress"]
    assert [line.split(",")[0:2] for line in progress_lines[1:]] == [
        ["progress 1/5 inpaintings (20 %)", " 0/18 UNet evaluations"],
        ["progress 2/5 inpaintings (40 %)", " 3/18 UNet evaluations"],
        ["progress 3/5 inpaintings (60 %)", " 8/18 UNet evaluations"],
        ["progress 4/5 inpaintings (80 %)", " 13/18 UNet evaluations"],
        ["progress 5/5 inpaintings (100 %)", " 18/18 UNet evaluations"],
    ]
    # Everything there: the model is not even loaded.
    assert job(grown) == [
        "plan: 10 inpaintings (9 distinct: experiments share the rest) for model tiny on "
        "image image: 0 to compute, 9 reused from PNGs whose key matches; device cpu, "
        "dtype float32"
    ]


def test_merged_calls_plan_exactly_their_evaluations_and_beat(
    tiny_models, scene, tmp_path, caplog, monkeypatch
):
    """Merged calls: the plan's UNet evaluations are the ones the run makes (with and
    without classifier-free guidance, which evaluates each image twice); with a
    heartbeat of 0 s every evaluation writes a line besides every finished call."""
    monkeypatch.setattr(progress, "HEARTBEAT_S", 0.0)
    caplog.set_level(logging.INFO)
    for guidance in (0.0, 7.5):
        caplog.clear()
        out = tmp_path / f"g{guidance}"
        tasks = sweep(out, scene, (0.0, 0.3, 0.6, 1.0), (0, 1, 2))
        settings = Settings(steps=10, batch_size=4, guidance_scale=guidance)
        summary = run_job(
            str(tiny_models[4]), "tiny", scene["image"], "image", tasks, settings, str(out / "m")
        )
        messages = [r.getMessage() for r in caplog.records if r.name == "maskleak.progress"]
        planned = re.search(r"run merged, (\d+) UNet evaluations", messages[0])
        assert planned and int(planned[1]) == summary["unet_evaluations"], messages[0]
        lines = messages[1:]
        assert len(lines) == 1 + summary["pipeline_calls"] + summary["unet_evaluations"]
        assert lines[-1].startswith("progress 12/12 inpaintings (100 %)")
        assert "ETA 0:00:00" in lines[-1]


def test_duration_and_rate_formats():
    assert [duration(s) for s in (0, 14.4, 3599.6, 7322, 90061)] == [
        "0:00:00",
        "0:00:14",
        "1:00:00",
        "2:02:02",
        "25:01:01",
    ]
    assert [rate(r) for r in (0.851, 12.3, 0.0042, 0.0)] == ["0.85/s", "12.30/s", "0.0042/s", "0/s"]


def test_progress_line_format():
    assert progress_line(12, 40, 45, 90, 14.1, 32.9) == (
        "progress 12/40 inpaintings (30 %), 45/90 UNet evaluations, 0.85/s, "
        "elapsed 0:00:14, ETA 0:00:33"
    )
    assert progress_line(0, 40, 0, 90, 0.0, None) == (
        "progress 0/40 inpaintings (0 %), 0/90 UNet evaluations, ?/s, elapsed 0:00:00, ETA ?"
    )


def test_fitted_time_left():
    # 10 evaluations in 10 s, 30 in 22 s: 4 s per call and 0.6 s per evaluation.
    assert round(fitted_left([(10, 10.0), (30, 22.0)], 2, 60), 9) == 44.0
    assert fitted_left([(10, 10.0), (10, 12.0)], 2, 60) is None  # undetermined
    assert fitted_left([(10, 20.0), (30, 10.0)], 2, 60) is None  # negative per evaluation
    assert fitted_left([], 2, 60) is None


def clock(*times: float):
    """A clock that reads ``times`` in turn."""
    readings = iter(times)
    return lambda: next(readings)


def test_calls_one_at_a_time_project_from_fixed_and_per_evaluation_cost(caplog):
    caplog.set_level(logging.INFO)
    tracker = Progress(10, 100, calls=4, clock=clock(1000, 1002, 1012, 1034, 1084))
    assert tracker.finished(2) == (  # the VAE round trip: no evaluation done, ETA unknown
        "progress 2/10 inpaintings (20 %), 0/100 UNet evaluations, 1.00/s, elapsed 0:00:02, ETA ?"
    )
    # One call: no fit yet, so in proportion to the evaluations: 12 s * 90 / 10.
    assert tracker.finished(2, 10) == (
        "progress 4/10 inpaintings (40 %), 10/100 UNet evaluations, 0.33/s, elapsed 0:00:12, "
        "ETA 0:01:48"
    )
    # 10 evaluations took 10 s, 30 took 22 s: 4 s + 0.6 s per evaluation, so the 2 calls
    # left with 60 evaluations take 44 s.
    assert tracker.finished(2, 30) == (
        "progress 6/10 inpaintings (60 %), 40/100 UNet evaluations, 0.18/s, elapsed 0:00:34, "
        "ETA 0:00:44"
    )
    assert tracker.finished(4, 60) == (
        "progress 10/10 inpaintings (100 %), 100/100 UNet evaluations, 0.12/s, "
        "elapsed 0:01:24, ETA 0:00:00"
    )
    assert [r.getMessage() for r in caplog.records][-1].startswith("progress 10/10")


def test_merged_calls_beat_between_waves_and_project_from_evaluations():
    tracker = Progress(
        8, 50, calls=3, merged=True, heartbeat_s=60, clock=clock(0, 30, 62, 70, 95, 100)
    )
    assert tracker.evaluated(10) is None  # 30 s since the start: no line yet
    assert tracker.evaluated(20) == (  # 62 s: a heartbeat; 62 s * 30 / 20 left
        "progress 0/8 inpaintings (0 %), 20/50 UNet evaluations, 0/s, elapsed 0:01:02, ETA 0:01:33"
    )
    assert tracker.evaluated(21) is None  # 8 s after the last line
    assert tracker.evaluated(40) is None
    assert tracker.finished(4) == (  # calls finishing always write: 100 s * 10 / 40 left
        "progress 4/8 inpaintings (50 %), 40/50 UNet evaluations, 0.04/s, elapsed 0:01:40, "
        "ETA 0:00:25"
    )
