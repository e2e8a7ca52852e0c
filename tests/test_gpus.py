"""GPU claims: real processes and a real Snakemake run holding real flocks.

This machine may have no GPU: a claim only picks an id and sets CUDA_VISIBLE_DEVICES,
which works the same without one (torch then simply runs on the CPU)."""

from __future__ import annotations

import logging
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from maskleak import gpus
from maskleak.errors import InputError
from test_workflow import SMALL, copy_workflow, results_dir, snakemake

#: Claims a GPU, says which, and holds it until a line arrives on stdin.
HOLDER = """
import logging, os, sys
from maskleak.gpus import claim_gpu
logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
with claim_gpu(poll_s=0.05) as device:
    print(f"holding device={device} visible={os.environ.get('CUDA_VISIBLE_DEVICES')}")
    sys.stdout.flush()
    sys.stdin.readline()
"""

CLAIM = re.compile(r"gpu (claim|release): device=(\S+) at=(\d+\.\d+)")


class Holder:
    """A separate process holding a claim; its output lines are read as they come."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, prefix: str, timeout: float = 60) -> str:
        """The next line starting with ``prefix``, skipping others."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no line starting with {prefix!r} in {timeout} s") from None
            if line.startswith(prefix):
                return line

    def holding(self, timeout: float = 60) -> tuple[str, str]:
        """(claimed device, CUDA_VISIBLE_DEVICES inside the claim)."""
        match = re.fullmatch(r"holding device=(\S+) visible=(\S+)", self.expect("holding", timeout))
        assert match, "unexpected holder output"
        return match.group(1), match.group(2)

    def release(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        assert self.proc.wait(timeout=60) == 0


@pytest.fixture()
def lock_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two GPUs visible, a private lock directory, and not inside a Slurm job."""
    folder = tmp_path / "locks"
    monkeypatch.setenv(gpus.LOCK_DIR_ENV, str(folder))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    return folder


@pytest.fixture()
def holders() -> Iterator[list[Holder]]:
    started: list[Holder] = []
    yield started
    for holder in started:
        if holder.proc.poll() is None:
            holder.proc.kill()
            holder.proc.wait()


def test_concurrent_jobs_get_different_gpus_and_a_third_waits(lock_dir, holders):
    first = Holder()
    holders.append(first)
    assert first.holding() == ("0", "0")
    second = Holder()
    holders.append(second)
    assert second.holding() == ("1", "1")

    third = Holder()
    holders.append(third)
    wait = third.expect("gpu wait:")
    assert "0,1" in wait and str(lock_dir) in wait
    with pytest.raises(AssertionError):  # still waiting while both are held
        third.holding(timeout=1)
    first.release()
    assert third.holding() == ("0", "0")
    second.release()
    third.release()


def test_claim_sets_one_device_and_restores_everything_on_exit(lock_dir, caplog):
    caplog.set_level(logging.INFO, logger="maskleak.gpus")
    with pytest.raises(RuntimeError), gpus.claim_gpu() as device:
        assert device == "0" and os.environ["CUDA_VISIBLE_DEVICES"] == "0"
        raise RuntimeError("job failed")
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1"
    # The failed job's lock was released: the next claim gets the same device.
    with gpus.claim_gpu() as device:
        assert device == "0"
    events = [CLAIM.search(m) for m in caplog.messages]
    assert [(e.group(1), e.group(2)) for e in events if e] == [
        ("claim", "0"),
        ("release", "0"),
    ] * 2


def test_inside_slurm_nothing_is_claimed(lock_dir, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="maskleak.gpus")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    with gpus.claim_gpu() as device:
        assert device is None and os.environ["CUDA_VISIBLE_DEVICES"] == "3"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "3"
    assert not lock_dir.exists()
    assert "Slurm job 4242" in caplog.text and "CUDA_VISIBLE_DEVICES=3" in caplog.text


@pytest.mark.parametrize(("device", "visible"), [("cpu", "0,1"), ("auto", ""), ("auto", "-1")])
def test_cpu_or_no_visible_gpu_claims_nothing(lock_dir, monkeypatch, device, visible):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    with gpus.claim_gpu(device) as claimed:
        assert claimed is None and os.environ["CUDA_VISIBLE_DEVICES"] == visible
    assert os.environ["CUDA_VISIBLE_DEVICES"] == visible
    assert not lock_dir.exists()


@pytest.mark.parametrize(
    ("visible", "ids"),
    [
        ("0,1", ["0", "1"]),
        ("GPU-8f2a, GPU-11c0", ["GPU-8f2a", "GPU-11c0"]),
        ("", []),
        ("-1", []),
        ("2,-1,3", ["2"]),
    ],
)
def test_visible_devices_parse_like_cuda(visible, ids):
    assert gpus.visible_devices({"CUDA_VISIBLE_DEVICES": visible}) == ids


def test_counting_gpus_does_not_initialise_cuda(monkeypatch):
    """After counting, narrowing CUDA_VISIBLE_DEVICES must still take effect: hiding every
    GPU then leaves torch none. (Trivially true on a machine without GPUs.)"""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    script = (
        "import os, torch\n"
        "from maskleak.gpus import visible_devices\n"
        "n = len(visible_devices())\n"
        "os.environ['CUDA_VISIBLE_DEVICES'] = ''\n"
        "print(n, torch.cuda.is_initialized(), torch.cuda.is_available())\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    count, initialised, available = run.stdout.split()
    assert int(count) >= 0 and initialised == "False" and available == "False"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a folder another user owns")
def test_default_lock_dir_of_another_user_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv(gpus.LOCK_DIR_ENV, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    planted = gpus.default_lock_dir()
    planted.mkdir()
    os.chown(planted, 12345, 12345)
    with pytest.raises(InputError, match="belongs to user id 12345"):
        gpus.lock_dir()


@pytest.mark.slow
def test_workstation_profile_gives_overlapping_jobs_different_gpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """4 inpaint jobs, 2 at a time, 2 GPUs: every job claims one, overlapping jobs never
    share one, and both are used."""
    workdir = copy_workflow(tmp_path)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setenv(gpus.LOCK_DIR_ENV, str(tmp_path / "locks"))
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    config = yaml.safe_load(yaml.safe_dump(SMALL))
    config["images"] = {
        "land": {"kind": "procedural", "seed": 3, "width": 64, "height": 32},
        "hill": {"kind": "procedural", "seed": 4, "width": 64, "height": 32},
    }
    config["models"] = {m: config["models"][m] for m in ("tiny9", "tiny4")}
    config["inpaint"] = {"steps": 2}
    config["experiments"] = {
        "strength_sweep": {"radius_pct": [60], "strengths": [0.5], "seeds": [0]}
    }
    config["figures"] = {}
    manifests = [
        str(
            (results_dir(workdir, config) / f"inpainted/{model}/{image}/manifest.json").relative_to(
                workdir
            )
        )
        for model in config["models"]
        for image in config["images"]
    ]
    run = snakemake(workdir, config, "--profile", "profiles/workstation", *manifests)
    assert run.returncode == 0, run.stderr[-4000:]

    jobs = {}
    for log in sorted((workdir / "logs").glob("*/inpaint/*/*.log")):
        events = [CLAIM.search(line) for line in log.read_text().splitlines()]
        found = [(e.group(1), e.group(2), float(e.group(3))) for e in events if e]
        assert [kind for kind, _, _ in found] == ["claim", "release"], log
        (_, device, start), (_, released, end) = found
        assert device == released and start <= end
        jobs[log] = (device, start, end)
    assert len(jobs) == 4
    for a, (dev_a, start_a, end_a) in jobs.items():
        for b, (dev_b, start_b, end_b) in jobs.items():
            if a != b and start_a < end_b and start_b < end_a:
                assert dev_a != dev_b, f"{a} and {b} shared GPU {dev_a} at once"
    assert {device for device, _, _ in jobs.values()} == {"0", "1"}
