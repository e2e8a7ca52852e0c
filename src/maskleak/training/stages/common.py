"""What every step of ``snakemake train_tiny_models`` shares: folders that appear whole or
not at all, the torch thread count, loss histories as Parquet, and the training log."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from maskleak.provenance import public_mode, write_parquet

LOG = logging.getLogger("maskleak.training")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``path``; on success it replaces
    ``path`` in one rename, on any exception it is removed and ``path`` left as it was."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        yield tmp
        public_mode(tmp, directory=True)  # mkdtemp made it private
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def set_threads(threads: int) -> int:
    """Use ``threads`` torch threads (the rule's); returned for the record, since the
    same seed gives bit-identical weights only at the same thread count."""
    import torch

    torch.set_num_threads(max(int(threads), 1))
    return torch.get_num_threads()


def write_history(
    history: list[dict[str, float]], path: str | os.PathLike[str], record: Mapping[str, Any]
) -> None:
    """One row per optimizer step (``vae.HISTORY_FIELDS`` or the UNet's) to Parquet."""
    write_parquet(pd.DataFrame(history), path, record)


def write_trained(
    model: Any,
    folder: str | os.PathLike[str],
    history: list[dict[str, float]],
    history_path: str | os.PathLike[str],
    record: Mapping[str, Any],
) -> None:
    """A trained component's folder (``save_component``, with ``record``) and its loss
    history (with ``record`` less its bulky ``data`` entry)."""
    from maskleak.training.folders import save_component

    with atomic_dir(folder) as tmp:
        save_component(model, tmp, record)
    write_history(history, history_path, {k: v for k, v in record.items() if k != "data"})
