"""Give each inpaint job a GPU of its own on a machine with several.

Snakemake counts ``gpu`` resources (``--resources gpu=N`` runs at most N inpaint jobs at
once) but never says which device a job should use, so every job would use cuda:0. A job
therefore claims a device itself: it takes an exclusive ``flock`` on that device's lock
file, and narrows ``CUDA_VISIBLE_DEVICES`` to it before CUDA is initialised. The kernel
drops a flock when its process dies, so a killed job never leaves a device claimed.

Inside a Slurm job nothing is claimed: Slurm already gives each job its own GPUs through
``CUDA_VISIBLE_DEVICES``, and jobs of other users or nodes would not see our lock files.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from maskleak.errors import InputError

log = logging.getLogger("maskleak.gpus")

#: Overrides the lock directory, e.g. to share claims between users of one workstation.
LOCK_DIR_ENV = "MASKLEAK_GPU_LOCK_DIR"
VISIBLE_ENV = "CUDA_VISIBLE_DEVICES"

#: Devices that may be claimed; "cuda:N" names a device itself, "cpu"/"mps" need none.
CLAIMING_DEVICES = ("auto", "cuda")


def nvml_device_count() -> int:
    """Number of NVIDIA GPUs the driver reports, or 0 without a driver.

    Asks NVML, not CUDA: CUDA reads ``CUDA_VISIBLE_DEVICES`` once, when it is initialised,
    and asking it anything (``torch.cuda.is_available()`` included) initialises it. NVML is
    the driver's management library and leaves CUDA alone; torch's own
    ``torch.cuda.device_count()`` uses it for the same reason (to avoid initialising CUDA
    before a fork), but falls back to CUDA itself when NVML fails, so it is not used here.
    NVML ignores ``CUDA_VISIBLE_DEVICES``, which is only consulted when that is unset."""
    try:
        nvml = ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return 0  # no NVIDIA driver on this machine
    status = nvml.nvmlInit_v2()
    if status != 0:
        log.warning("gpu count: NVML failed to initialise (status %d); assuming no GPU", status)
        return 0
    try:
        count = ctypes.c_uint(0)
        status = nvml.nvmlDeviceGetCount_v2(ctypes.byref(count))
        if status != 0:
            log.warning("gpu count: NVML could not count devices (status %d)", status)
            return 0
        return count.value
    finally:
        nvml.nvmlShutdown()


def visible_devices(env: Mapping[str, str] | None = None) -> list[str]:
    """Device ids a job may use: those in ``CUDA_VISIBLE_DEVICES`` when it is set (indices,
    ``GPU-``/``MIG-`` UUIDs; empty means none), else every GPU the driver reports."""
    env = os.environ if env is None else env
    value = env.get(VISIBLE_ENV)
    if value is None:
        return [str(i) for i in range(nvml_device_count())]
    ids = []
    for item in value.split(","):
        item = item.strip()
        # As CUDA parses it: the list ends at the first empty or negative entry ("-1" is
        # the usual way to hide every GPU).
        if not item or item.startswith("-"):
            break
        ids.append(item)
    return ids


def default_lock_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"maskleak-gpu-locks-{os.getuid()}"


def lock_dir() -> Path:
    """The lock directory, created if needed. The default one is private to this user: in
    a world-writable temporary directory, another user could otherwise plant it."""
    override = os.environ.get(LOCK_DIR_ENV)
    if override:
        folder = Path(override)
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    folder = default_lock_dir()
    folder.mkdir(mode=0o700, exist_ok=True)
    owner = folder.stat().st_uid
    if owner != os.getuid():
        raise InputError(
            f"{folder}: GPU lock directory belongs to user id {owner}, not to this user "
            f"({os.getuid()}); remove it or set {LOCK_DIR_ENV} to a folder of your own"
        )
    return folder


def _lock_path(folder: Path, device: str) -> Path:
    # Old-style MIG ids contain "/"; keep lock names plain file names.
    return folder / f"gpu-{re.sub(r'[^A-Za-z0-9._-]', '_', device)}.lock"


def _try_lock(path: Path) -> int | None:
    """An open descriptor holding an exclusive flock on ``path``, or None if it is held.

    The file is opened read-only: flock needs no write access, so with a shared
    ``MASKLEAK_GPU_LOCK_DIR`` other users can lock files this user created. Lock files are
    never deleted: deleting one while another job opens it would let two jobs lock
    different files for the same device."""
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _claim_first_free(folder: Path, candidates: list[str], poll_s: float) -> tuple[str, int]:
    """Lock the first free device of ``candidates``, waiting while none is free."""
    waiting = False
    while True:
        for candidate in candidates:
            fd = _try_lock(_lock_path(folder, candidate))
            if fd is not None:
                return candidate, fd
        if not waiting:
            log.info(
                "gpu wait: devices %s are all claimed by other jobs (locks in %s); "
                "retrying every %g s",
                ",".join(candidates),
                folder,
                poll_s,
            )
            waiting = True
        time.sleep(poll_s)


@contextlib.contextmanager
def claim_gpu(device: str = "auto", poll_s: float = 1.0) -> Iterator[str | None]:
    """Hold one visible GPU for the duration of the block, waiting while all are held.

    Yields the claimed device id, or None where nothing is claimed (inside a Slurm job,
    for a device other than "auto"/"cuda", or with no visible GPU). While claimed,
    ``CUDA_VISIBLE_DEVICES`` names only that device, so it is ``cuda:0`` to this process;
    enter the block before anything initialises CUDA. Logs one ``gpu claim:`` and one
    ``gpu release:`` line with the device id and the wall-clock time (``at=``)."""
    slurm_job = os.environ.get("SLURM_JOB_ID")
    if slurm_job:
        log.info(
            "gpu claim skipped: inside Slurm job %s, which set %s=%s",
            slurm_job,
            VISIBLE_ENV,
            os.environ.get(VISIBLE_ENV, "(unset)"),
        )
        yield None
        return
    if device not in CLAIMING_DEVICES:
        log.info("gpu claim skipped: device=%s is set explicitly", device)
        yield None
        return
    candidates = visible_devices()
    if not candidates:
        log.info("gpu claim skipped: no visible GPU (%s=%r)", VISIBLE_ENV, os.getenv(VISIBLE_ENV))
        yield None
        return

    claimed, fd = _claim_first_free(lock_dir(), candidates, poll_s)
    previous = os.environ.get(VISIBLE_ENV)
    os.environ[VISIBLE_ENV] = claimed
    log.info("gpu claim: device=%s at=%.3f", claimed, time.time())
    try:
        yield claimed
    finally:
        # Logged while the lock is still held, so logged intervals of one device never
        # overlap.
        log.info("gpu release: device=%s at=%.3f", claimed, time.time())
        if previous is None:
            os.environ.pop(VISIBLE_ENV, None)
        else:
            os.environ[VISIBLE_ENV] = previous
        # Unlocked explicitly: a process forked inside the block shares the descriptor.
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
