"""Compute an inpaint job's missing PNGs: its pipeline calls, merged on GPUs, pass by pass.

Each PNG to make is an :class:`Item`: one pass of one task's inpainting. Pass 1 starts
from the image, pass k from pass k-1's output (computed in this job, or read from its
PNG). Items that differ only in paste-back share one pipeline result (its raw key); the
pipeline calls group items by strength and by the mechanisms a call applies, and each
round (pass number) runs its calls merged or one at a time as before.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from maskleak import mechanism_hooks, merged_calls, pipeline_choice, progress, study_pipeline
from maskleak.batch_size import resolve_batch_size
from maskleak.images import read_pixels
from maskleak.mechanisms import PASTE_NONE, Mechanisms
from maskleak.pipeline_choice import Settings
from maskleak.provenance import save_png

log = logging.getLogger("maskleak.inpaint")

T = TypeVar("T")

MODE_DENOISE = "denoise"
#: Strengths too small for one denoising step: the image only passes through the VAE.
MODE_VAE_ROUNDTRIP = "vae_roundtrip"


@dataclass(frozen=True)
class Item:
    """One PNG of a job: pass ``pass_number`` of an inpainting."""

    path: str
    key: str
    #: The key of the pipeline result before paste-back: items sharing it share a call.
    raw_key: str
    pass_number: int
    previous_path: str | None  # the pass this one starts from (None: the image)
    strength: float
    seed: int  # the generator's seed for this pass
    mask_path: str
    mechanisms: Mechanisms
    record: Mapping[str, Any]  # what the PNG's record says beyond the job's common part

    @property
    def call_group(self) -> Hashable:
        """What one pipeline call must share: strength and the mechanisms it applies."""
        diffusion = replace(self.mechanisms, paste_back=PASTE_NONE, paste_blur_px=0.0, passes=1)
        return (self.strength, diffusion)


def compute(
    pipe: Any,
    image: Image.Image,
    masks: Mapping[str, np.ndarray],
    todo: Sequence[Item],
    settings: Settings,
    device: str,
    common: Mapping[str, Any],
    pipeline_info: Mapping[str, Any],
    roundtrip: Callable[[], Image.Image],
) -> tuple[float, dict[str, Any]]:
    """Compute and save ``todo`` (passes in order); returns the seconds it took and how
    it was batched. ``roundtrip()``: the image's VAE round trip, for pass-1 items that run
    no step."""
    started = time.perf_counter()
    outputs: dict[str, Image.Image] = {}  # this job's results that a later pass starts from
    needed = {item.previous_path for item in todo if item.previous_path is not None}
    batching: dict[str, Any] = {}
    for pass_number in sorted({item.pass_number for item in todo}):
        items = [item for item in todo if item.pass_number == pass_number]
        sharing: dict[str, list[Item]] = defaultdict(list)
        for item in items:
            sharing[item.raw_key].append(item)

        def source(item: Item) -> Image.Image:
            if item.previous_path is None:
                return image
            if item.previous_path in outputs:
                return outputs[item.previous_path]
            return Image.fromarray(read_pixels(item.previous_path, "RGB", "previous pass"))

        def deliver(
            raw_key: str, raw: Image.Image, sharing: Mapping[str, list[Item]] = sharing
        ) -> None:
            # Saved as soon as its call ends: a job killed mid-way keeps what it finished.
            for item in sharing[raw_key]:
                mask = Image.fromarray(masks[item.mask_path])
                result = mechanism_hooks.paste_back(source(item), raw, mask, item.mechanisms)
                record = {"stage": "inpaint", **common, "pipeline": dict(pipeline_info)}
                save_png(result, item.path, {**record, **item.record})
                if item.path in needed:
                    outputs[item.path] = result

        _pipeline_calls(
            pipe, image, masks, items, source, deliver, settings, device, roundtrip, batching
        )
    return time.perf_counter() - started, batching


def _pipeline_calls(
    pipe: Any,
    image: Image.Image,
    masks: Mapping[str, np.ndarray],
    items: Sequence[Item],
    source: Callable[[Item], Image.Image],
    deliver: Callable[[str, Image.Image], None],
    settings: Settings,
    device: str,
    roundtrip: Callable[[], Image.Image],
    batching: dict[str, Any],
) -> None:
    """Run one round's ``items`` through the pipeline, each raw key once, handing each
    result (before paste-back) to ``deliver(raw_key, image)`` as soon as its call ends;
    adds the round's batching to ``batching``."""
    unique: dict[str, Item] = {}
    for item in items:
        unique.setdefault(item.raw_key, item)
    groups: dict[Hashable, list[Item]] = defaultdict(list)
    roundtrips = [item for item in unique.values() if item.record["mode"] == MODE_VAE_ROUNDTRIP]
    for item in unique.values():
        if item.record["mode"] != MODE_VAE_ROUNDTRIP:
            groups[item.call_group].append(item)

    # The study's pipeline has its own timesteps (PNDM's extra one at every strength);
    # merged or not, it runs exactly as it runs alone.
    study = settings.pipeline == study_pipeline.PIPELINE
    denoise = pipeline_choice.denoise_study if study else pipeline_choice.denoise
    schedule_of = study_pipeline.schedule if study else merged_calls.schedule
    size = resolve_batch_size(settings.batch_size, device, pipe, image.width * image.height)
    calls: list[tuple[float, Sequence[Item]]] = []
    for group in groups.values():
        calls += pipeline_calls({group[0].strength: group}, size)
    merge = merged_calls.should_merge(size, len(calls))
    if merge:
        calls.sort(key=lambda call: -call[0])  # stable: see pipeline_calls
    strengths = {strength for strength, _ in calls}
    schedules = {s: schedule_of(pipe.scheduler, settings.steps, s) for s in strengths}
    planned = [(schedules[s], len(chunk)) for s, chunk in calls]
    tracker = progress.plan_compute(pipe, settings.guidance_scale, len(roundtrips), planned, size)
    for item in roundtrips:
        start = source(item)
        deliver(
            item.raw_key,
            roundtrip() if start is image else pipeline_choice.vae_roundtrip(pipe, start),
        )
    if roundtrips:
        tracker.finished(len(roundtrips))

    def call(strength: float, chunk: Sequence[Item], p: Any) -> None:
        images = [source(item) for item in chunk]
        mask_images = [Image.fromarray(masks[item.mask_path]) for item in chunk]
        seeds = [item.seed for item in chunk]
        mechanisms = chunk[0].call_group[1]  # type: ignore[index]
        out = denoise(p, images, mask_images, strength, seeds, settings, mechanisms)
        for item, result in zip(chunk, out, strict=True):
            deliver(item.raw_key, result)
        # Merged calls' evaluations are shared; the merger reports them as they happen.
        tracker.finished(len(chunk), 0 if merge else len(schedules[strength]))

    batching["batch_size"] = size
    batching["pipeline_calls"] = batching.get("pipeline_calls", 0) + len(calls)
    if merge:
        stats = merged_calls.run_merged(
            pipe,
            calls,
            size,
            settings.steps,
            call,
            on_evaluation=tracker.evaluated,
            schedule_of=schedule_of,
        )
        log.info(
            "merged %d pipeline calls: %d UNet evaluations of %.1f images on average",
            len(calls),
            stats["unet_evaluations"],
            stats["unet_images"] / max(stats["unet_evaluations"], 1),
        )
        for name, value in stats.items():
            batching[name] = batching.get(name, 0) + value
    else:
        for strength, chunk in calls:
            call(strength, chunk, pipe)


def pipeline_calls(
    by_strength: Mapping[float, Sequence[T]], size: int
) -> list[tuple[float, Sequence[T]]]:
    """run_job's pipeline calls for items grouped by strength, in the order it makes them:
    one call per strength (it sets the timesteps) and chunk of at most ``size`` items.
    Merged calls start longest schedule (highest strength) first, so the calls that start
    later join a running batch; chunks of one strength keep their order."""
    calls = [
        (strength, group[start : start + size])
        for strength, group in sorted(by_strength.items())
        for start in range(0, len(group), size)
    ]
    if merged_calls.should_merge(size, len(calls)):
        calls.sort(key=lambda call: -call[0])
    return calls
