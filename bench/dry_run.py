"""Wall time of ``snakemake -n`` (a dry run: parse, plan the DAG, check existing outputs)
on a config, in a fresh process as a user runs it, with the job count it plans.

By default it runs in the repository root, against whatever results/ and .snakemake/
metadata are there (a dry run writes only .snakemake/, which git ignores). --clean-copy
runs in a temporary copy of the workflow instead, so every job is planned from scratch and
the count does not depend on what earlier runs left behind.

    python bench/dry_run.py --configfile config/thesis.yaml --repeats 3
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _report import emit, spread, table

REPO = Path(__file__).resolve().parent.parent
# What Snakefile reads at parse time; results/, resources/ and logs/ are left behind.
WORKFLOW_PARTS = ("Snakefile", "workflow", "config")


def dry_run_once(workdir: Path, configfile: str) -> tuple[float, int, str]:
    """Seconds for one dry run, the number of jobs it plans, and its output."""
    # --quiet rules drops the per-job listing (thousands of lines for the thesis) but
    # keeps the job-stats table, whose "total" line is the job count.
    command = [sys.executable, "-m", "snakemake", "-n", "--configfile", configfile]
    command += ["--quiet", "rules"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{output[-3000:]}")
    return elapsed, _job_count(output), output


def _job_count(output: str) -> int:
    totals = re.findall(r"^total\s+(\d+)\s*$", output, flags=re.MULTILINE)
    if totals:
        return int(totals[-1])
    if "Nothing to be done" in output:
        return 0
    raise RuntimeError(f"no job count in snakemake's output:\n{output[-3000:]}")


def measure(configfile: str, repeats: int = 1, clean_copy: bool = False) -> dict[str, Any]:
    """Time ``repeats`` dry runs; emits and returns one row."""
    if clean_copy:
        tmp = Path(tempfile.mkdtemp(prefix="maskleak-dryrun-"))
        for part in WORKFLOW_PARTS:
            source = REPO / part
            if source.is_dir():
                shutil.copytree(source, tmp / part)
            else:
                shutil.copy2(source, tmp / part)
        workdir = tmp
    else:
        workdir = REPO
    try:
        runs = [dry_run_once(workdir, configfile) for _ in range(repeats)]
    finally:
        if clean_copy:
            shutil.rmtree(workdir, ignore_errors=True)
    counts = {jobs for _, jobs, _ in runs}
    row = {
        "kind": "dry_run",
        "configfile": configfile,
        "where": "clean copy" if clean_copy else "repo root",
        "jobs": runs[-1][1],
        "repeats": repeats,
        "wall_s": [round(s, 3) for s, _, _ in runs],
        **spread([s for s, _, _ in runs]),
    }
    if len(counts) > 1:
        # Another process changed results/ between runs (other agents share the tree).
        row["jobs_varied"] = sorted(counts)
    emit(row)
    return row


DRY_RUN_COLUMNS = [
    ("configfile", "config"),
    ("where", "where"),
    ("jobs", "jobs"),
    ("repeats", "runs"),
    ("best_s", "best s"),
    ("median_s", "median s"),
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configfile", default="config/thesis.yaml")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--clean-copy", action="store_true")
    args = parser.parse_args()
    table([measure(args.configfile, args.repeats, args.clean_copy)], DRY_RUN_COLUMNS)


if __name__ == "__main__":
    main()
