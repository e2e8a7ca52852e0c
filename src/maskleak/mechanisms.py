"""The mechanisms of the leak, each a switch: what a pipeline variant changes.

Every inpainting is made by a pipeline (``diffusers`` or ``study``) with one value of each
mechanism below. A pipeline has its own values (:data:`PIPELINE_DEFAULTS`); a config
``variants`` entry names the ones it changes, and the inpaint job applies them
(:mod:`maskleak.mechanism_hooks`). The metrics read the values back from the manifests.

* ``latent_encoding``: the image latents are a posterior ``sample`` or its ``mode``.
* ``latent_mask``: how the pixel mask is shrunk to the latent grid
  (:data:`maskleak.latent_mask.RULES`).
* ``final_latent_paste``: after the last step the kept latents are the clean original's
  (today's diffusers, 4-channel) or what the last blend left (the study's 0.11.1). A
  9-channel UNet blends nothing: the switch changes nothing there.
* ``paste_back``: the output's outside pixels replaced by the original's: ``none``,
  ``hard`` (the mask as alpha, as ``VaeImageProcessor.apply_overlay``) or ``soft`` (the
  mask blurred by a Gaussian of ``paste_blur_px`` px, as ``mask_processor.blur``).
* ``passes``: the output fed back as the next input this many times; each pass is kept.
* ``dtype``: the weights' and activations' dtype; None = the run's ``inpaint.dtype``.

This module imports no model code: the metrics read its defaults, and their code hash
must not follow the model code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from maskleak import latent_mask
from maskleak.errors import InputError

SAMPLE, MODE = "sample", "mode"
LATENT_ENCODINGS = (SAMPLE, MODE)
PASTE_NONE, PASTE_HARD, PASTE_SOFT = "none", "hard", "soft"
PASTE_BACKS = (PASTE_NONE, PASTE_HARD, PASTE_SOFT)
#: The fields of paste-back, done after the pipeline: variants differing only in them
#: share one pipeline result.
PASTE_FIELDS = ("paste_back", "paste_blur_px")
#: ``mask_processor.blur``'s default blur_factor, used when ``soft`` names no radius.
DEFAULT_BLUR_PX = 4.0
DTYPES = ("float32", "float16", "bfloat16")

#: The variant every experiment has: each pipeline as it ships.
BASELINE = "baseline"

#: The pipeline names, spelled once here (a module without model code, so the metrics
#: can read them without their code hash following the model code):
#: :data:`maskleak.pipeline_choice.DEFAULT_PIPELINE` and
#: :data:`maskleak.study_pipeline.PIPELINE` are these.
DIFFUSERS, STUDY = "diffusers", "study"


@dataclass(frozen=True)
class Mechanisms:
    """One value per mechanism (see the module docstring)."""

    latent_encoding: str = SAMPLE
    latent_mask: str = latent_mask.TORCH_NEAREST
    final_latent_paste: bool = True
    paste_back: str = PASTE_NONE
    paste_blur_px: float = 0.0
    passes: int = 1
    dtype: str | None = None

    def record(self) -> dict[str, Any]:
        """Plain values for manifests and tables."""
        return asdict(self)


#: What each pipeline does when no variant changes it.
PIPELINE_DEFAULTS: dict[str, Mechanisms] = {
    DIFFUSERS: Mechanisms(),
    STUDY: Mechanisms(latent_mask=latent_mask.PIL_NEAREST, final_latent_paste=False),
}

NAMES = tuple(f.name for f in fields(Mechanisms))


def pipeline_defaults(pipeline: str) -> Mechanisms:
    try:
        return PIPELINE_DEFAULTS[pipeline]
    except KeyError:
        raise InputError(
            f"unknown pipeline {pipeline!r} (use one of {tuple(PIPELINE_DEFAULTS)})"
        ) from None


def check_variant(spec: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A config ``variants.<name>`` entry, checked beyond the schema (which checks each
    value's type and choices): ``paste_blur_px`` only with soft paste-back. Returns the
    entry with soft's default radius filled in. ``where``: the config key, for messages."""
    values = dict(spec)
    unknown = set(values) - set(NAMES)
    if unknown:
        raise InputError(f"config key {where}: unknown mechanisms {sorted(unknown)} (use {NAMES})")
    if "paste_blur_px" in values and values.get("paste_back") != PASTE_SOFT:
        raise InputError(
            f"config key {where}.paste_blur_px: only soft paste-back blurs (set paste_back: soft)"
        )
    if values.get("paste_back") == PASTE_SOFT:
        values["paste_blur_px"] = float(values.get("paste_blur_px", DEFAULT_BLUR_PX))
        if values["paste_blur_px"] <= 0:
            raise InputError(f"config key {where}.paste_blur_px: must be > 0 px")
    return values


def effective(pipeline: str, changes: Mapping[str, Any]) -> Mechanisms:
    """The mechanisms of ``pipeline`` with a variant's ``changes`` applied."""
    return replace(pipeline_defaults(pipeline), **dict(changes))


def differences(pipeline: str, mechanisms: Mechanisms) -> dict[str, Any]:
    """The mechanisms that differ from ``pipeline``'s own, but ``passes`` (each pass is
    an inpainting of its own, and pass k is the same whatever the number of passes):
    what an inpainting's key and file name record, so two variants that come to the same
    pipeline share their inpaintings and the pipeline's own keep the keys they had."""
    base = pipeline_defaults(pipeline).record()
    return {
        name: value
        for name, value in mechanisms.record().items()
        if name != "passes" and value != base[name]
    }


def value_label(value: Any) -> str:
    """A mechanism value as file names, legends and the why page write it: ``on``/``off``
    for a switch, ``4`` for 4.0, ``default`` for an unset value (None, NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "default"
    # numpy's bool (a table's value) is no bool subclass: known by its type's name.
    if type(value).__name__ in ("bool", "bool_"):
        return "on" if bool(value) else "off"
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        return f"{float(value):g}"
    return str(value)


def file_suffix(diff: Mapping[str, Any], pass_number: int) -> str:
    """What an inpainting's file name adds for its mechanism ``diff`` (from
    :func:`differences`) and its pass: ``""`` for the pipeline as it ships, else e.g.
    ``~latent_mask-cover``, ``~paste_back-soft4``, ``~pass2``."""
    parts = []
    for name, value in diff.items():
        if name == "paste_blur_px":
            continue  # part of paste_back's label
        label = value_label(value)
        if name == "paste_back" and value == PASTE_SOFT:
            label += value_label(diff["paste_blur_px"])
        parts.append(f"~{name}-{label}")
    if pass_number > 1:
        parts.append(f"~pass{pass_number}")
    return "".join(parts)
