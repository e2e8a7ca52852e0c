"""Cluster resource requests of inpaint jobs: exact values from the amount of work."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from maskleak import resources
from maskleak.config import Plan

REPO = Path(__file__).resolve().parents[1]


def task(path: str, strength: float) -> dict:
    return {"inpainted_path": path, "strength": strength}


def test_unet_steps_count_each_distinct_inpainting_as_diffusers_runs_it():
    # 10 steps: strength 0 runs none, 0.29 runs int(2.9) = 2, 0.5 runs 5, 1.0 runs 10.
    tasks = [task("a", 0.0), task("b", 0.29), task("c", 0.5), task("d", 1.0)]
    assert resources.unet_steps(tasks, 10) == 17
    # The same PNG listed by two experiments is computed once.
    assert resources.unet_steps([*tasks, task("c", 0.5)], 10) == 17
    # The study's pipeline runs PNDM's extra timestep at every strength: one more each.
    # 0 + 2 + 5 + 10 steps, plus one for each of the 4 inpaintings.
    assert resources.unet_steps(tasks, 10, "study") == 21
    # A 3-pass inpainting at 0.5 runs 5 steps per pass: 15, beside the 17.
    passes = {"inpainted_path": "e", "strength": 0.5, "pass_paths": ["e2", "e3"]}
    assert resources.unet_steps([*tasks, passes], 10) == 17 + 15


def test_runtime_scales_with_steps_pixels_and_attempt():
    # Overhead 10 min; 4000 steps x 0.15 s at 512 px = 10 min; at 1024 px 4x that.
    assert resources.inpaint_runtime_min(0, 512) == 10
    assert resources.inpaint_runtime_min(4000, 512) == 20
    assert resources.inpaint_runtime_min(4000, 1024) == 50
    assert resources.inpaint_runtime_min(4000, 512, attempt=3) == 60
    # Rounded up to whole minutes: 17 steps add 2.55 s.
    assert resources.inpaint_runtime_min(17, 512) == 11


def test_memory_depends_on_model_kind_and_attempt():
    assert resources.inpaint_mem_mb("tiny") == 2000
    assert resources.inpaint_mem_mb("tiny", attempt=2) == 4000
    assert resources.inpaint_mem_mb("hub") == 12000
    assert resources.inpaint_mem_mb("local", attempt=3) == 36000


def dry_run_jobs(*args: str) -> list[tuple[str, str]]:
    """(header, resources line) of every top-level job of a real dry run: a rule or a
    group job, not the members listed inside a group job."""
    cmd = [sys.executable, "-m", "snakemake", "-n", *args]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    jobs: list[tuple[str, str]] = []
    for line in (run.stdout + run.stderr).splitlines():
        header = re.match(r"(?:\[.*?\] )?((?:local)?rule \w+|Group job \w+)", line)
        if header and not line.startswith(" "):
            jobs.append((header[1], ""))
        elif jobs and line.startswith("    resources:") and not jobs[-1][1]:
            jobs[-1] = (jobs[-1][0], line.strip())
    return jobs


@pytest.fixture(scope="module")
def thesis_on_slurm() -> list[tuple[str, str]]:
    return dry_run_jobs("--profile", "profiles/slurm", "--configfile", "config/thesis.yaml")


def test_thesis_on_slurm_is_23_cluster_jobs_and_only_inpaint_asks_for_gpus(thesis_on_slurm):
    plan = Plan(yaml.safe_load((REPO / "config/thesis.yaml").read_text()))
    local = {"rule download_image", "rule get_model", "rule all"}
    cluster = [(h, r) for h, r in thesis_on_slurm if h not in local]
    inpaint = [r for h, r in cluster if h == "rule inpaint"]
    # 20 inpaint jobs; all downsample/mask/regions jobs in one, the 20 per-image metrics
    # jobs in one (up to 50 per group job), merge + trends + figures in one.
    assert sorted(h for h, _ in cluster if h != "rule inpaint") == [
        "Group job analysis",
        "Group job metrics",
        "Group job prep",
    ]
    assert len(inpaint) == len(plan.images) * len(plan.models) == 20
    n_steps = resources.unet_steps(
        plan.tasks("sd15", "Landscape_0"), 200, plan.model_pipeline("sd15")
    )
    runtime = resources.inpaint_runtime_min(n_steps, 650)
    for res in inpaint:
        assert "gpu=1" in res and "cpus_per_gpu=2" in res and "slurm_partition=gpu" in res
        assert f"runtime={runtime}," in res and "mem_mb=12000," in res
    assert not any("gpu=" in r for h, r in thesis_on_slurm if h != "rule inpaint")
