"""The workflow on a real Slurm cluster through `--profile profiles/slurm`.

Starts a single-node cluster on localhost with two GPUs as a generic resource
(tests/slurm_cluster.py), runs a small config with the shipped profile, cancels one running
inpaint job on the way, and checks against Slurm's own job records and a local run.

The test cluster overrides on the command line only what it lacks: accounting (so job
states come from squeue) and CPUs (its node has the machine's 2 cores, the profile asks
for up to 4 per grouped job). Skipped where Slurm is not installed or this is not root,
unless MASKLEAK_REQUIRE_SLURM=1 (as in .ci/run), which turns the skip into a failure."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import slurm_cluster
from test_workflow import copy_workflow, finished_run, results_dir, snakemake

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

#: Generous, but a hung cluster run fails the test instead of hanging CI.
RUN_TIMEOUT_S = 900

CONFIG = {
    "images": {
        "land": {"kind": "procedural", "seed": 3, "width": 192, "height": 128},
        "astronaut": {"kind": "skimage", "name": "astronaut"},
    },
    "downsample": {"max_side": 128, "multiple": 32},
    "models": {"tiny4": {"kind": "tiny", "unet_in_channels": 4, "seed": 0}},
    "inpaint": {"steps": 6},
    "experiments": {
        "strength_sweep": {
            "radius_pct": [80],
            "strengths": [0.0, 0.25, 0.5, 0.75, 1.0],
            "seeds": [0, 1, 2, 3, 4, 5],
        },
        "mask_size_sweep": {"radius_pct": [30, 60], "strengths": [0.5], "seeds": [0, 1]},
    },
    "figures": {
        "worst_case_images": ["land"],
        "gallery": {"image": "land", "strength": 0.5, "radius_pct": [30, 60]},
    },
}
#: Inpaintings per inpaint job (no two experiments share one: their radii differ).
PER_JOB = 5 * 6 + 2 * 2
#: The inpainted PNGs of a job folder (beside them: the VAE round trip, vae_roundtrip.png).
INPAINTED_PNGS = "r*_s*_seed*.png"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    reason = slurm_cluster.unavailable_reason()
    if reason:
        if os.environ.get("MASKLEAK_REQUIRE_SLURM") == "1":
            pytest.fail(f"MASKLEAK_REQUIRE_SLURM=1 but {reason}")
        pytest.skip(reason)
    root = Path(os.environ.get("MASKLEAK_SLURM_ROOT") or tmp_path_factory.mktemp("slurm"))
    slurm_cluster.start(root)
    try:
        yield root
    finally:
        slurm_cluster.stop(root)


def squeue() -> list[tuple[str, str, str]]:
    """(job id, comment, state) of every job Slurm still knows."""
    out = subprocess.run(
        ["squeue", "-h", "-t", "all", "-o", "%i|%k|%T"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return [tuple(line.split("|")) for line in out.splitlines() if line]  # type: ignore[misc]


def job_records() -> dict[str, dict[str, str]]:
    """Slurm's record of every job (kept for MinJobAge), as key=value fields."""
    out = subprocess.run(
        ["scontrol", "-o", "-d", "show", "job"], capture_output=True, text=True, timeout=30
    ).stdout
    records = {}
    for line in out.splitlines():
        fields = dict(re.findall(r"(\S+?)=(\S*)", line))
        records[fields["JobId"]] = fields
    return records


class InpaintKiller(threading.Thread):
    """Cancels the first inpaint job seen running once it has written a few PNGs, and
    records which PNGs existed once Slurm reported the job cancelled."""

    def __init__(
        self, workdir: Path, results: Path, min_pngs: int = 4, timeout_s: float = 600
    ) -> None:
        super().__init__(daemon=True)
        self.workdir, self.min_pngs, self.timeout_s = workdir, min_pngs, timeout_s
        self.results = results

        self.job_id: str | None = None
        self.image: str | None = None
        self.finished_pngs: dict[str, tuple[int, int]] = {}
        self.error: str | None = None

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline and self.job_id is None:
            for job_id, comment, state in squeue():
                match = re.fullmatch(r"rule_inpaint_wildcards_tiny4_(\w+)", comment)
                if not match or state != "RUNNING":
                    continue
                folder = self.results / "inpainted/tiny4" / match[1]
                if len(list(folder.glob(INPAINTED_PNGS))) >= self.min_pngs:
                    subprocess.run(["scancel", job_id], check=True, timeout=30)
                    self.job_id, self.image = job_id, match[1]
                    break
            time.sleep(0.1)
        if self.job_id is None:
            self.error = "no inpaint job was seen running with PNGs written"
            return
        while time.monotonic() < deadline:
            states = {j: s for j, _, s in squeue()}
            if states.get(self.job_id) == "CANCELLED":
                self.finished_pngs = self._settled_pngs(deadline)
                return
            time.sleep(0.1)
        self.error = f"job {self.job_id} never showed as CANCELLED"

    def _settled_pngs(self, deadline: float, quiet_s: float = 3.0) -> dict[str, tuple[int, int]]:
        """The PNGs once none has appeared for ``quiet_s``: the job's processes may take
        a moment to die after Slurm marks it cancelled."""
        folder = self.results / "inpainted/tiny4" / str(self.image)
        seen: dict[str, tuple[int, int]] = {}
        quiet_since = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - quiet_since < quiet_s:
            now = {
                p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.glob(INPAINTED_PNGS)
            }
            if now != seen:
                seen, quiet_since = now, time.monotonic()
            time.sleep(0.1)
        return seen


@pytest.fixture(scope="module")
def slurm_run(cluster: Path, tmp_path_factory: pytest.TempPathFactory):
    workdir = copy_workflow(tmp_path_factory.mktemp("wf-slurm"))
    killer = InpaintKiller(workdir, results_dir(workdir, CONFIG))
    killer.start()
    run = snakemake(
        workdir,
        CONFIG,
        "--profile",
        str(workdir / "profiles/slurm"),
        "--slurm-status-command",
        "squeue",
        timeout=RUN_TIMEOUT_S,
        wrap=["timeout", "-k", "10", str(RUN_TIMEOUT_S - 30)],
    )
    killer.join(timeout=30)
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
    return workdir, killer, job_records()


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return finished_run(tmp_path_factory, "wf-local", CONFIG)


def test_only_inpaint_jobs_get_a_gpu(slurm_run):
    workdir, _, records = slurm_run
    jobs = [r for r in records.values() if r.get("WorkDir") == str(workdir)]
    inpaint = [r for r in jobs if r["Comment"].startswith("rule_inpaint_")]
    others = [r for r in jobs if not r["Comment"].startswith("rule_inpaint_")]
    # Two inpaint jobs, one of them resubmitted after the cancel; the light rules in three
    # grouped jobs (prep, the per-image metrics, analysis), not one job per image.
    assert len(inpaint) == 3
    assert sorted(r["Comment"].split("_")[1] for r in others) == ["analysis", "metrics", "prep"]
    for r in inpaint:
        assert r["Partition"] == "gpu"
        assert r["TresPerJob"] == "gres:gpu:1"
    for r in others:
        assert r["Partition"] == "cpu"
        assert "TresPerJob" not in r and "gpu" not in r.get("GRES", "")
    # The jobs' own view: each inpaint job ran with the GPU Slurm gave it.
    logs = list(
        (workdir / "logs" / results_dir(workdir, CONFIG).name / "inpaint/tiny4").glob("*.log")
    )
    assert len(logs) == 2
    for log in logs:
        given = r"inside Slurm job \d+, which set CUDA_VISIBLE_DEVICES=[01]\b"
        assert re.search(given, log.read_text()), log


def test_cancelled_inpaint_job_resumes_without_recomputing(slurm_run):
    workdir, killer, records = slurm_run
    assert killer.error is None, killer.error
    finished = killer.finished_pngs
    assert 4 <= len(finished) < PER_JOB
    # Resubmitted by the profile's retries, with more memory and time (attempt 2).
    first = records[killer.job_id]
    assert first["JobState"] == "CANCELLED"
    resubmitted = [
        r
        for r in records.values()
        if r["Comment"] == first["Comment"] and r["JobId"] != killer.job_id
    ]
    assert len(resubmitted) == 1 and resubmitted[0]["JobState"] == "COMPLETED"
    assert resubmitted[0]["MinMemoryNode"] == "4000M" and first["MinMemoryNode"] == "2000M"
    # The PNGs finished before the cancel are untouched (same inode and mtime) ...
    folder = killer.results / "inpainted/tiny4" / str(killer.image)
    for name, (inode, mtime_ns) in finished.items():
        stat = (folder / name).stat()
        assert (stat.st_ino, stat.st_mtime_ns) == (inode, mtime_ns), name
    assert len(list(folder.glob(INPAINTED_PNGS))) == PER_JOB
    # ... and the resumed job says it computed only the rest.
    log = (workdir / f"logs/{killer.results.name}/inpaint/tiny4/{killer.image}.log").read_text()
    computed = PER_JOB - len(finished)
    assert f"{PER_JOB} inpaintings listed, {len(finished)} reused, {computed} computed" in log


def test_outputs_equal_a_local_run_byte_for_byte(slurm_run, local_run: Path):
    cluster_dir = slurm_run[0]
    for tree in ("results", "resources/images", "resources/models"):
        a = {p.relative_to(cluster_dir): p for p in (cluster_dir / tree).rglob("*") if p.is_file()}
        b = {p.relative_to(local_run): p for p in (local_run / tree).rglob("*") if p.is_file()}
        assert sorted(a) == sorted(b)
        assert len(a) > 0
        different = [str(k) for k in a if a[k].read_bytes() != b[k].read_bytes()]
        assert different == []


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
