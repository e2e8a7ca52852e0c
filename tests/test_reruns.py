"""Real Snakemake runs: a library edit reruns exactly the rules whose code changed, and two
configs run one after the other keep their own results and reports."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
import yaml

from test_workflow import (
    CONFIG_NAME,
    SMALL,
    copy_workflow,
    finished_run,
    png_mtimes,
    results_dir,
    snakemake,
)

pytestmark = pytest.mark.slow

#: One image keeps the run short; both models and both experiments keep every rule.
CONFIG = {**yaml.safe_load(yaml.safe_dump(SMALL)), "images": {"land": SMALL["images"]["land"]}}

FIGURE_RULES = {
    "figure_strength_grid",
    "figure_strength_trend",
    "figure_worst_case",
    "figure_area_curves",
    "figure_radius_gallery",
    "figure_model_comparison",
    "figure_attribution",
    "figure_distance_profile",
    "figure_texture_deciles",
    "figure_passes",
    "figure_paste_back",
    "figure_colour_drift",
    "figure_mask_shape",
}
PER_IMAGE = {"download_image", "downsample", "mask", "regions", "inpaint"}


def planned_rules(workdir: Path, config: dict) -> set[str]:
    """The rules a real dry run of ``config`` would run."""
    run = snakemake(workdir, config, "-n", "--quiet", "rules")
    assert run.returncode == 0, run.stderr[-3000:]
    rules = set()
    for line in (run.stdout + run.stderr).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("job", "total"):
            rules.add(parts[0])
    return rules


def library_module(workdir: Path, name: str) -> Path:
    """The workflow copy's source file of ``maskleak.<name>`` (a module or a package)."""
    base = workdir / "src/maskleak" / name
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    raise FileNotFoundError(base)


@contextmanager
def edited(path: Path, addition: str) -> Iterator[None]:
    """``path`` with ``addition`` appended; afterwards its original bytes are written
    back (a new modification time, the old content)."""
    original = path.read_bytes()
    path.write_bytes(original + addition.encode())
    try:
        yield
    finally:
        path.write_bytes(original)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return finished_run(tmp_path_factory, "reruns", CONFIG)


def test_library_edits_rerun_exactly_the_dependent_rules(finished: Path):
    assert planned_rules(finished, CONFIG) == set()

    # The metrics code: metrics and everything computed from its table.
    metrics_rules = planned_rules_after(finished, "metrics", "\nEDITED = 1\n")
    assert "inpaint" not in metrics_rules and not metrics_rules & PER_IMAGE
    assert {"metrics_image", "metrics", "trends", "all"} | FIGURE_RULES <= metrics_rules

    # The code of one figure: that figure only.
    assert planned_rules_after(finished, "figures/strength_trend", "\nEDITED = 1\n") == {
        "figure_strength_trend",
        "all",
    }
    # Code all figures share: every figure, nothing else.
    assert planned_rules_after(finished, "figures/common", "\nEDITED = 1\n") == FIGURE_RULES | {
        "all"
    }

    # A comment or a docstring-only change is not a code change.
    assert planned_rules_after(finished, "metrics", "\n# a comment\n") == set()

    # Restored to identical content (newer mtime): nothing to do.
    assert planned_rules(finished, CONFIG) == set()


def planned_rules_after(workdir: Path, module: str, addition: str) -> set[str]:
    with edited(library_module(workdir, module), addition):
        return planned_rules(workdir, CONFIG)


def test_inpainting_code_edit_reruns_jobs_but_recomputes_no_png(finished: Path):
    before = png_mtimes(finished)
    with edited(library_module(finished, "merged_calls"), "\nEDITED = 1\n"):
        assert "inpaint" in planned_rules(finished, CONFIG)
        run = snakemake(finished, CONFIG)
        assert run.returncode == 0, run.stderr[-3000:]
        # The PNG keys did not change, so every inpainting was reused.
        assert png_mtimes(finished) == before
        logs = sorted((finished / "logs").glob("*/inpaint/*/land.log"))
        assert logs and all("0 computed" in log.read_text() for log in logs)
    run = snakemake(finished, CONFIG)
    assert run.returncode == 0, run.stderr[-3000:]
    assert png_mtimes(finished) == before
    assert planned_rules(finished, CONFIG) == set()


def report_text(workdir: Path, config: dict) -> str:
    """The HTML of the report of ``config`` (Snakemake's zip report)."""
    out = workdir / f"report-{config['run']}.zip"
    run = snakemake(workdir, config, "--report", str(out))
    assert run.returncode == 0, run.stderr[-3000:]
    with zipfile.ZipFile(out) as archive:
        return "\n".join(
            archive.read(n).decode("utf-8", "replace")
            for n in archive.namelist()
            if n.endswith(".html")
        )


def test_two_configs_keep_their_own_results_and_reports(tmp_path: Path):
    workdir = copy_workflow(tmp_path)
    first = {**yaml.safe_load(yaml.safe_dump(CONFIG)), "run": "first"}
    second = yaml.safe_load(yaml.safe_dump(first))
    second["run"] = "second"
    second["experiments"]["strength_sweep"]["strengths"] = [0.25, 0.75, 1.0]
    second["models"] = {"tiny4": CONFIG["models"]["tiny4"]}
    for experiment in second["experiments"].values():
        if "models" in experiment:
            experiment["models"] = ["tiny4"]
    for config in (first, second):
        run = snakemake(workdir, config)
        assert run.returncode == 0, run.stderr[-3000:]

    tables = {
        c["run"]: pd.read_parquet(results_dir(workdir, c) / "metrics.parquet")
        for c in (first, second)
    }
    assert set(tables["first"]["strength"]) == {0.0, 0.5, 1.0}
    assert set(tables["second"]["strength"]) == {0.25, 0.5, 0.75, 1.0}
    assert set(tables["first"]["model"]) == {"tiny9", "tiny4", "tiny4_study", "blockmean4"}
    assert set(tables["second"]["model"]) == {"tiny4"}
    # Each run's rows point into its own folder, and those files still exist.
    for name, table in tables.items():
        for column in ("image_path", "mask_path", "inpainted_path"):
            assert all(p.startswith(f"results/{name}/") for p in table[column])
            assert all((workdir / p).is_file() for p in table[column])
    # Shared downloads and models: one copy each (same specs), not one per run: the two
    # trained models (tiny4_study shares tiny4's folder) and the block-mean control.
    assert len(list((workdir / "resources/images").glob("*.png"))) == 1
    assert len([p for p in (workdir / "resources/models").iterdir() if p.is_dir()]) == 3
    # Both are complete: nothing left to do for either.
    assert planned_rules(workdir, first) == set() and planned_rules(workdir, second) == set()

    reports = {c["run"]: report_text(workdir, c) for c in (first, second)}
    for config, other in ((first, second), (second, first)):
        text = reports[config["run"]]
        assert f"results/{config['run']}/figures/tiny4/strength_grid.png" in text
        assert f"results/{config['run']}/metrics.parquet" in text
        assert f"results/{other['run']}/" not in text
    # The second run has no tiny9: neither its figures nor its captions mention it.
    assert "tiny9" in reports["first"] and "tiny9" not in reports["second"]


def test_a_killed_run_leaves_a_lock_and_the_hint_says_how_to_clear_it(tmp_path: Path):
    workdir = copy_workflow(tmp_path)
    (workdir / CONFIG_NAME).write_text(yaml.safe_dump(CONFIG))
    env = {**os.environ, "PYTHONPATH": str(workdir / "src")}
    command = [sys.executable, "-m", "snakemake", "--configfile", CONFIG_NAME, "--cores", "1"]
    run = subprocess.Popen(
        command,
        cwd=workdir,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    locks = workdir / ".snakemake/locks"
    deadline = time.monotonic() + 120
    while not any(locks.glob("*.lock")) and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert any(locks.glob("*.lock"))

    # A dry run does not lock; a real run refuses to start, and says how to go on.
    stuck = snakemake(workdir, CONFIG)
    assert stuck.returncode != 0 and "LockException" in stuck.stderr
    hints = [line for line in stuck.stderr.splitlines() if line.startswith("maskleak: ")]
    assert len(hints) == 1 and "--unlock" in hints[0]
    fix = re.search(r"`([^`]+)`", hints[0])
    assert fix and shlex.split(fix[1]) == ["snakemake", "--unlock", "--configfile", CONFIG_NAME]
    unlock = subprocess.run(
        [sys.executable, "-m", *shlex.split(fix[1])],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    again = snakemake(workdir, CONFIG, "-n")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "maskleak: " not in again.stdout + again.stderr


def test_a_deleted_inpainting_is_named_with_the_command_that_recomputes_it(finished: Path):
    before = png_mtimes(finished)
    victim = sorted(before)[0]
    victim.unlink()
    dry = snakemake(finished, CONFIG, "-n")
    assert dry.returncode == 0, dry.stderr[-3000:]
    # Snakemake logs to stdout in a dry run, to stderr otherwise.
    output = dry.stdout + dry.stderr
    hints = [line for line in output.splitlines() if line.startswith("maskleak: ")]
    assert len(hints) == 1 and str(victim.relative_to(finished)) in hints[0]
    command = shlex.split(re.search(r"`([^`]+)`", hints[0])[1])
    assert command[:2] == ["snakemake", "--forcerun"]
    assert command[2].endswith(f"inpainted/{victim.parent.parent.name}/land/manifest.json")

    run = snakemake(finished, CONFIG, *command[1:3])
    assert run.returncode == 0, run.stderr[-3000:]
    after = png_mtimes(finished)
    # Only the deleted PNG was computed again; every other one is untouched.
    assert victim in after and {p: after[p] for p in before if p != victim} == {
        p: t for p, t in before.items() if p != victim
    }
    assert planned_rules(finished, CONFIG) == set()
