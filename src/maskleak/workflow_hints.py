"""One-line hints for the ways a rerun can get stuck, printed where the user looks."""

from __future__ import annotations

import json
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


def missing_inpaintings(manifest: str | os.PathLike[str]) -> list[str]:
    """PNGs an existing manifest lists (inpaintings, and the VAE round trip where it names
    one) that are no longer on disk (an unreadable manifest counts as nothing missing: its
    inpaint job is rerun anyway)."""
    try:
        with open(manifest, encoding="utf-8") as handle:
            record = json.load(handle)
        listed = [entry["inpainted_path"] for entry in record["inpaintings"]]
        listed += [record["vae_roundtrip_path"]] if "vae_roundtrip_path" in record else []
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [path for path in listed if not os.path.exists(path)]


def missing_inpaintings_hint(
    manifests: Sequence[str], configfiles: Sequence[str | os.PathLike[str]] = ()
) -> str | None:
    """A hint when inpainted PNGs were deleted after their job finished. Snakemake cannot
    see it (a job's manifest is its only declared output, see maskleak.inpaint), so it
    would not rerun anything; forcing the manifests' jobs recomputes just those PNGs."""
    stale = {m: missing_inpaintings(m) for m in manifests if os.path.exists(m)}
    stale = {m: missing for m, missing in stale.items() if missing}
    if not stale:
        return None
    n_missing = sum(len(missing) for missing in stale.values())
    first = next(iter(stale.values()))[0]
    command = rerun_command("--forcerun", *stale, configfiles=configfiles)
    return (
        f"maskleak: {n_missing} inpainted PNG(s) listed in {len(stale)} manifest(s) are "
        f"missing (e.g. {first}); recompute just those with `{command}`"
    )
