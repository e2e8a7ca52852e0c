"""The workflow as others deploy it: a Snakemake module used from another directory (what
snakedeploy sets up), with the files the snakemake-workflows catalogue expects."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

#: The smallest config that still runs every stage: one landscape, one model, 3 strengths.
CONFIG = {
    "run": "deployed",
    "images": {"land": {"kind": "procedural", "seed": 3, "width": 64, "height": 32}},
    "downsample": {"max_side": 64, "multiple": 32},
    "models": {"tiny4": {"kind": "tiny", "unet_in_channels": 4, "seed": 0}},
    "inpaint": {"steps": 2},
    "experiments": {
        "strength_sweep": {"radius_pct": [60], "strengths": [0.0, 0.5, 1.0], "seeds": [0]}
    },
}

#: A user's Snakefile, as in the snakemake-workflows "Usage" instructions.
USER_SNAKEFILE = f"""\
configfile: "config/config.yaml"


module maskleak:
    snakefile:
        "{REPO / "Snakefile"}"
    config:
        config


use rule * from maskleak as maskleak_*
"""


def deploy(dest: Path) -> Path:
    (dest / "config").mkdir()
    (dest / "config/config.yaml").write_text(yaml.safe_dump(CONFIG))
    (dest / "Snakefile").write_text(USER_SNAKEFILE)
    return dest


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Snakemake in ``workdir``, importing this checkout's maskleak (not another install)."""
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", *args]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=workdir, env=env)


def test_module_dry_run_plans_every_rule(tmp_path: Path):
    run = snakemake(deploy(tmp_path), "-n")
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout + run.stderr
    for rule in ("download_image", "get_model", "inpaint", "metrics", "trends"):
        assert f"maskleak_{rule}" in out
    assert "results/deployed/metrics.parquet" in out
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_module_runs_from_another_directory(tmp_path: Path):
    workdir = deploy(tmp_path)
    run = snakemake(workdir)
    assert run.returncode == 0, run.stderr[-3000:]
    metrics = pd.read_parquet(workdir / "results/deployed/metrics.parquet")
    assert sorted(metrics["strength"]) == [0.0, 0.5, 1.0]
    assert (workdir / "results/deployed/figures/tiny4/strength_trend.png").is_file()
    # Nothing was written into the workflow's own folder.
    assert not (REPO / "results/deployed").exists()
    run = snakemake(workdir, "-n")
    assert run.returncode == 0 and "Nothing to be done" in run.stdout + run.stderr


def test_license_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "MIT"}
    assert (REPO / "LICENSE").read_text().startswith("MIT License\n")


def test_readme_dag_example_says_it_needs_graphviz():
    readme = (REPO / "README.md").read_text()
    line = next(line for line in readme.splitlines() if "--dag" in line)
    assert "graphviz" in line.lower() and "dot" in line
