"""A real single-node Slurm cluster on localhost, for tests: start it, stop it.

Needs root and Debian's slurmctld, slurmd, slurm-client and munge packages (`.ci/run`
installs them). The node has two GPUs as a generic resource, backed by fake character
devices, and two partitions named like the shipped profile's (`cpu`, `gpu`). There is no
accounting database, so the plugin's status command must be `squeue` and finished jobs
stay visible to `scontrol` for MinJobAge seconds.

Also a command line for trying the profile by hand:

    python tests/slurm_cluster.py start /tmp/slurm   # prints the cluster's folder
    python tests/slurm_cluster.py stop /tmp/slurm
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

SLURM_ETC = Path("/etc/slurm")
#: Written into every file this module puts in /etc/slurm, so that it never touches a
#: configuration it did not write (a developer's real cluster).
MARKER = "# written by maskleak tests/slurm_cluster.py"
PACKAGES = ("slurmctld", "slurmd", "sinfo", "munged")
N_GPUS = 2
#: munged runs as user munge, which cannot enter a root-only temporary folder.
MUNGE_RUN = Path("/run/munge")
MUNGE_PID = MUNGE_RUN / "maskleak-munged.pid"
#: Seconds Slurm keeps a finished job's record (tests read it back with scontrol).
MIN_JOB_AGE_S = 900


class ClusterUnavailable(RuntimeError):
    """This machine cannot run the test cluster (no packages, not root, foreign config)."""


def unavailable_reason() -> str | None:
    missing = [p for p in PACKAGES if shutil.which(p) is None]
    if missing:
        return (
            f"Slurm not installed ({', '.join(missing)} missing): apt-get install "
            "slurmctld slurmd slurm-client munge (.ci/run does)"
        )
    if os.geteuid() != 0:
        return "the test Slurm cluster needs root (it writes /etc/slurm)"
    conf = SLURM_ETC / "slurm.conf"
    if conf.exists() and MARKER not in conf.read_text(errors="replace"):
        return f"{conf} belongs to another Slurm set-up; not overwriting it"
    return None


def _mem_mb() -> int:
    total_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    # Below physical memory, or slurmd marks the node invalid.
    return int(total_kb / 1024 * 0.75)


def slurm_conf(root: Path, cpus: int, mem_mb: int) -> str:
    return f"""{MARKER}
ClusterName=maskleak-ci
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
MinJobAge={MIN_JOB_AGE_S}
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb} Gres=gpu:{N_GPUS} \
  State=UNKNOWN
PartitionName=cpu Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=localhost MaxTime=INFINITE State=UP
"""


def _run(*cmd: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kwargs)


def start(root: Path) -> Path:
    """Start munge, slurmctld and slurmd with their state under ``root``; wait until the
    node is idle. Returns ``root``. Raises ClusterUnavailable if this machine cannot."""
    reason = unavailable_reason()
    if reason:
        raise ClusterUnavailable(reason)
    root = root.resolve()
    stop(root)
    for sub in ("state", "spool", "devices"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    # Slurm drops a GPU gres without a device file, and refuses a regular file: fake
    # character devices (like /dev/null) stand in for /dev/nvidia*.
    for i in range(N_GPUS):
        dev = root / "devices" / f"nvidia{i}"
        if not dev.exists():
            os.mknod(dev, 0o666 | 0o020000, os.makedev(1, 3))

    cpus = os.cpu_count() or 1
    (root / "slurm.conf").write_text(slurm_conf(root, cpus, _mem_mb()))
    (root / "gres.conf").write_text(
        f"{MARKER}\nAutoDetect=off\n"
        f"NodeName=localhost Name=gpu File={root}/devices/nvidia[0-{N_GPUS - 1}]\n"
    )
    # Job steps read /etc/slurm, whatever SLURM_CONF says (the jobstep plugin strips
    # SLURM_* variables before its inner srun), so the config must be linked there.
    SLURM_ETC.mkdir(exist_ok=True)
    for name in ("slurm.conf", "gres.conf"):
        link = SLURM_ETC / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(root / name)

    MUNGE_RUN.mkdir(parents=True, exist_ok=True)
    shutil.chown(MUNGE_RUN, "munge", "munge")
    _check(
        _run(
            "runuser", "-u", "munge", "--", "munged",
            "--pid-file", str(MUNGE_PID), "--log-file", str(MUNGE_RUN / "maskleak-munged.log"),
        ),
        "munged",
    )  # fmt: skip
    _check(_run("slurmctld", "-c"), "slurmctld")
    _check(_run("slurmd", "-N", "localhost"), "slurmd")

    deadline = time.monotonic() + 60
    state = ""
    while time.monotonic() < deadline and _alive(root / "slurmctld.pid"):
        state = _run("sinfo", "-h", "-N", "-o", "%T").stdout.strip()
        if state.splitlines() and all(s == "idle" for s in state.splitlines()):
            return root
        time.sleep(0.5)
    logs = "\n".join(_tail(root / f) for f in ("slurmctld.log", "slurmd.log"))
    stop(root)
    raise RuntimeError(f"Slurm node not idle (state {state!r}):\n{logs}")


def stop(root: Path) -> None:
    """Stop the daemons started by ``start(root)`` (by their pidfiles, read before any
    kill) and remove the /etc/slurm links this module made."""
    root = root.resolve()
    if _read_pid(root / "slurmctld.pid") is not None and shutil.which("scancel"):
        # Jobs' processes (slurmstepd) outlive slurmd: end them while Slurm still can.
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            _run("scancel", "--full", "--partition=cpu,gpu")
            time.sleep(1)
    pidfiles = [root / "slurmd.pid", root / "slurmctld.pid", MUNGE_PID]
    pids = [_read_pid(p) for p in pidfiles]
    for pid in pids:
        if pid is not None:
            _kill(pid)
    for name in ("slurm.conf", "gres.conf"):
        link = SLURM_ETC / name
        if link.is_symlink() and Path(os.readlink(link)).parent == root:
            link.unlink()


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pidfile: Path) -> bool:
    pid = _read_pid(pidfile)
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _kill(pid: int, grace_s: float = 10.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _check(run: subprocess.CompletedProcess, what: str) -> None:
    if run.returncode != 0:
        raise RuntimeError(f"{what} failed to start: {run.stderr or run.stdout}")


def _tail(path: Path, n: int = 20) -> str:
    try:
        return f"--- {path}\n" + "\n".join(path.read_text().splitlines()[-n:])
    except OSError:
        return f"--- {path}: not written"


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        sys.exit("usage: slurm_cluster.py start|stop DIR")
    if sys.argv[1] == "start":
        print(start(Path(sys.argv[2])))
    else:
        stop(Path(sys.argv[2]))
