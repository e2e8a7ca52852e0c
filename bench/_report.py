"""Helpers shared by the benchmarks: one JSON line per measurement (for machines) and a
fixed-width table (for people), so every part prints the same way; quiet libraries; a
work folder."""

from __future__ import annotations

import json
import os
import statistics
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def quiet() -> None:
    """Silence progress bars (one per model load, dozens per run) and transformers' nag
    about torchvision, which the pipeline does not use; diffusers' warnings still show."""
    # Read when transformers first imports, which diffusers' import triggers.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


def emit(row: Mapping[str, Any]) -> None:
    # Flushed at once: a long GPU run killed at its time limit still leaves its rows.
    print(json.dumps(row), flush=True)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> None:
    """Print ``rows`` under ``columns`` (key, heading); missing values print as '-'."""
    cells = [[_cell(row.get(key)) for key, _ in columns] for row in rows]
    widths = [
        max([len(head)] + [len(line[i]) for line in cells]) for i, (_, head) in enumerate(columns)
    ]
    print()
    print("  ".join(head.rjust(w) for (_, head), w in zip(columns, widths, strict=True)))
    for line in cells:
        print("  ".join(text.rjust(w) for text, w in zip(line, widths, strict=True)))
    print(flush=True)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def spread(times: Sequence[float]) -> dict[str, float]:
    """Best and median of repeated timings. Other processes share this machine's cores, so
    the best run is the closest to the code's own speed; the median shows the noise."""
    return {"best_s": round(min(times), 4), "median_s": round(statistics.median(times), 4)}


@contextmanager
def work_folder(path: str | None) -> Iterator[Path]:
    """``path`` if given (kept, so its models are reused next time), else a temporary
    folder removed afterwards: SD 1.5's folder alone is 4 GB of float32 weights."""
    if path:
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix="maskleak-bench-") as tmp:
        yield Path(tmp)
