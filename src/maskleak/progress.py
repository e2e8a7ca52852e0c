"""An inpaint job's plan and live progress, as lines of its log.

A job can run for hours, and its log is what ``tail -f`` shows while it runs. It opens
with what the job will compute and what it reuses, then gets a line each time a unit of
work finishes (a pipeline call; the VAE round trip of the strength-0 inpaintings):
inpaintings done of those to compute, UNet evaluations done of those planned, the rate
in inpaintings per second, the time elapsed since computing started, and the time left.

The time left is projected from UNet evaluations, the work that dominates and that
differs between inpaintings (strength 0.1 evaluates the UNet a tenth as often as
strength 1, and calls made one at a time go lowest strength first), so a projection from
inpaintings alone would be off by a factor of several. Calls made one at a time add a fixed cost
each (prompt, VAE, PNG), which at low strengths is as large as the UNet's part: their
finished calls' durations are fitted as ``fixed + per_evaluation * evaluations``. Merged
calls overlap that cost with other calls' UNet work, and finish in waves (every call
running at once ends at the schedule's last timestep): their time left is proportional
to the evaluations left, and between waves a line is also written when ``heartbeat_s``
passed without one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger("maskleak.progress")

#: Seconds of silence after which a UNet evaluation of merged calls writes a line.
HEARTBEAT_S = 60.0


def duration(seconds: float) -> str:
    """``H:MM:SS``, rounded to the second; hours are not wrapped into days."""
    whole = max(0, round(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def rate(per_s: float) -> str:
    """Two decimals, or two significant digits below 0.1/s (a big model on a CPU)."""
    return f"{per_s:.2f}/s" if per_s >= 0.1 else f"{per_s:.2g}/s"


def progress_line(
    items_done: int, items: int, evals_done: int, evals: int, elapsed: float, left: float | None
) -> str:
    """One progress line, e.g. ``progress 12/40 inpaintings (30 %), 45/90 UNet
    evaluations, 0.85/s, elapsed 0:00:14, ETA 0:00:14``; ``left``: seconds, None if
    unknown yet."""
    percent = 100 * items_done // items if items else 100
    per_s = rate(items_done / elapsed) if elapsed > 0 else "?/s"
    eta = "?" if left is None else duration(left)
    return (
        f"progress {items_done}/{items} inpaintings ({percent} %), {evals_done}/{evals} UNet "
        f"evaluations, {per_s}, elapsed {duration(elapsed)}, ETA {eta}"
    )


def fitted_left(
    calls: Sequence[tuple[int, float]], calls_left: int, evals_left: int
) -> float | None:
    """Seconds for ``calls_left`` more calls, made one at a time, that evaluate the UNet
    ``evals_left`` times, from finished calls' (evaluations, seconds) fitted as
    ``fixed + per_evaluation * evaluations`` by least squares; None where that fit is
    undetermined (fewer than two distinct evaluation counts) or has a negative part."""
    n = len(calls)
    sx = sum(e for e, _ in calls)
    sy = sum(t for _, t in calls)
    det = n * sum(e * e for e, _ in calls) - sx * sx
    if det <= 0:
        return None
    per_eval = (n * sum(e * t for e, t in calls) - sx * sy) / det
    fixed = (sy - per_eval * sx) / n
    if per_eval < 0 or fixed < 0:
        return None
    return fixed * calls_left + per_eval * evals_left


class Progress:
    """Counts a job's finished inpaintings and UNet evaluations and logs a line for each
    finished unit. Thread-safe: merged calls finish in threads of their own.

    Args:
        items: inpaintings to compute.
        evaluations: UNet evaluations planned.
        calls: pipeline calls planned.
        merged: whether the calls run merged (else one at a time).
        clock: seconds, monotonic (injected by tests).
        heartbeat_s: see :meth:`evaluated`; None: :data:`HEARTBEAT_S`.
    """

    def __init__(
        self,
        items: int,
        evaluations: int,
        calls: int,
        merged: bool = False,
        clock: Callable[[], float] = time.monotonic,
        heartbeat_s: float | None = None,
        logger: logging.Logger = log,
    ) -> None:
        self.items, self.evaluations, self.calls, self.merged = items, evaluations, calls, merged
        self.clock, self.logger = clock, logger
        self.heartbeat_s = HEARTBEAT_S if heartbeat_s is None else heartbeat_s
        self.items_done = self.evaluations_done = 0
        #: Calls made one at a time: (UNet evaluations, seconds) of each finished one.
        self.timed_calls: list[tuple[int, float]] = []
        self.started = self._last_line = self._last_unit = clock()
        self._lock = threading.Lock()

    def finished(self, items: int, evaluations: int = 0) -> str:
        """A unit of work is done: ``items`` more inpaintings saved, after ``evaluations``
        more UNet evaluations (a call made one at a time; merged calls report theirs
        through :meth:`evaluated`, the VAE round trip has none)."""
        with self._lock:
            now = self.clock()
            if evaluations and not self.merged:
                self.timed_calls.append((evaluations, now - self._last_unit))
            self._last_unit = now
            self.items_done += items
            self.evaluations_done += evaluations
            return self._write(now)

    def evaluated(self, total: int) -> str | None:
        """``total`` UNet evaluations are done: a line only if none was written for
        ``heartbeat_s`` seconds."""
        with self._lock:
            self.evaluations_done = total
            now = self.clock()
            return self._write(now) if now - self._last_line >= self.heartbeat_s else None

    def left(self, elapsed: float) -> float | None:
        """Seconds left, None if unknown yet."""
        if self.items_done >= self.items:
            return 0.0
        evals_left = self.evaluations - self.evaluations_done
        if not self.merged:
            calls_left = self.calls - len(self.timed_calls)
            fitted = fitted_left(self.timed_calls, calls_left, evals_left)
            if fitted is not None:
                return fitted
        if self.evaluations:
            return elapsed * evals_left / self.evaluations_done if self.evaluations_done else None
        return (
            elapsed * (self.items - self.items_done) / self.items_done if self.items_done else None
        )

    def _write(self, now: float) -> str:
        self._last_line = now
        elapsed = now - self.started
        line = progress_line(
            self.items_done,
            self.items,
            self.evaluations_done,
            self.evaluations,
            elapsed,
            self.left(elapsed),
        )
        # Written under the lock, so lines come in the order of their counts.
        self.logger.info("%s", line)
        return line


def job_plan_line(
    paths: Sequence[str], to_compute: int, model: str, image: str, device: str, dtype: str
) -> str:
    """The job's first line: what it computes and what it reuses, for inpaintings listed
    with their PNG ``paths`` (experiments may share one)."""
    listed, files = len(paths), len(set(paths))
    shared = f" ({files} distinct: experiments share the rest)" if files != listed else ""
    return (
        f"plan: {listed} inpaintings{shared} for model {model} on image {image}: "
        f"{to_compute} to compute, {files - to_compute} reused from PNGs whose key matches; "
        f"device {device}, dtype {dtype}"
    )


def compute_plan_line(
    roundtrips: int,
    denoised: int,
    calls: int,
    batch_size: int,
    merged: bool,
    evaluations: int,
    call_evaluations: int,
) -> str:
    """What computing will do, once the model is loaded and the batch size known.
    ``call_evaluations``: the UNet evaluations of the calls made one at a time."""
    parts = []
    if roundtrips:
        parts.append(f"{roundtrips} VAE round trips (strengths below one step; one VAE pass)")
    if denoised:
        if merged:
            how = (
                f"{denoised} denoised in {calls} pipeline calls run merged, {evaluations} UNet "
                f"evaluations of up to {batch_size} images ({call_evaluations} unmerged)"
            )
        else:
            how = f"{denoised} denoised in {calls} pipeline calls, {evaluations} UNet evaluations"
        parts.append(how)
    return f"plan: batch size {batch_size}: " + ("; ".join(parts) or "nothing to compute")


def plan_compute(
    pipe: Any,
    guidance_scale: float,
    roundtrips: int,
    calls: Sequence[tuple[Sequence[float], int]],
    batch_size: int,
) -> Progress:
    """Log what computing will do and return its :class:`Progress`: ``roundtrips`` VAE
    round trips, and pipeline ``calls`` given as (timesteps, images), run merged or one
    at a time as run_job runs them. Merged, the UNet evaluations are counted by the real
    merger (:func:`maskleak.merged_calls.planned_evaluations`)."""
    from maskleak import merged_calls

    merged = merged_calls.should_merge(batch_size, len(calls))
    call_evaluations = sum(len(timesteps) for timesteps, _ in calls)
    evaluations = call_evaluations
    if merged:
        # The pipeline's do_classifier_free_guidance: each image evaluated twice at once.
        cfg = guidance_scale > 1 and pipe.unet.config.time_cond_proj_dim is None
        evaluations = merged_calls.planned_evaluations(calls, batch_size, 2 if cfg else 1)
    denoised = sum(images for _, images in calls)
    log.info(
        "%s",
        compute_plan_line(
            roundtrips, denoised, len(calls), batch_size, merged, evaluations, call_evaluations
        ),
    )
    return Progress(roundtrips + denoised, evaluations, len(calls), merged)
