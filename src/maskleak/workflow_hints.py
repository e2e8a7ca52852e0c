"""One-line hints for the ways a rerun can get stuck, printed where the user looks."""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from pathlib import Path

#: Where Snakemake keeps its locks, relative to the working directory.
LOCK_DIR = Path(".snakemake/locks")


def rerun_command(*options: str, configfiles: Sequence[str | os.PathLike[str]] = ()) -> str:
    """The snakemake command line that repeats this run's config with ``options``."""
    words = ["snakemake", *options]
    for path in configfiles:
        relative = os.path.relpath(path)
        words += ["--configfile", os.fspath(path) if relative.startswith("..") else relative]
    return shlex.join(words)


def unlock_hint(
    configfiles: Sequence[str | os.PathLike[str]] = (), lock_dir: Path = LOCK_DIR
) -> str | None:
    """A hint when an earlier Snakemake process left its lock behind (killed, or out of
    power): Snakemake then refuses to run until ``--unlock``. None without a lock."""
    if not lock_dir.is_dir() or not any(lock_dir.glob("*.lock")):
        return None
    command = rerun_command("--unlock", configfiles=configfiles)
    return (
        f"maskleak: {lock_dir} holds a lock; if no other Snakemake runs in this folder "
        f"now, it is left from a killed run: clear it with `{command}`, then rerun"
    )
