"""The mechanism switches (:mod:`maskleak.mechanisms`) applied to a pipeline call.

Today's diffusers pipeline is run as it ships, with one method swapped per switch on the
pipeline object for the duration of a call (:func:`applied`), so a variant differs from
the pipeline users run in exactly the mechanism it names:

* ``latent_encoding: mode``: ``_encode_vae_image`` takes the posterior mode (diffusers'
  ``retrieve_latents(sample_mode="argmax")``) instead of a sample; the generator then
  draws nothing for it, so the noise comes from its first draw.
* ``latent_mask``: ``prepare_mask_latents`` receives the mask already at latent size,
  shrunk by the rule (:func:`maskleak.latent_mask.latent_mask_torch`); its own nearest
  interpolation is then the identity.
* ``final_latent_paste: off``: the scheduler's last step is remembered and, through
  ``callback_on_step_end``, replaces the latents the last blend pasted the clean original
  into, so the kept latents are the denoiser's.

The study's pipeline is maskleak's own code and takes the switches as arguments
(:func:`maskleak.study_pipeline.study_inpaint`). Paste-back is done after either pipeline
with diffusers' own ``VaeImageProcessor.apply_overlay`` (and ``blur`` for soft), what a
diffusers user calls (:func:`paste_back`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from PIL import Image

from maskleak import latent_mask
from maskleak.mechanisms import MODE, PASTE_HARD, PASTE_NONE, PASTE_SOFT, Mechanisms


@contextlib.contextmanager
def applied(pipe: Any, mechanisms: Mechanisms) -> Iterator[dict[str, Any]]:
    """Swap ``pipe``'s methods for ``mechanisms`` (today's diffusers pipeline) while the
    block runs; yields the extra keyword arguments the call needs. ``pipe`` must not be
    called by anyone else meanwhile (a merged call's own copy, or the job's only pipeline
    on one thread). A 9-channel UNet blends nothing, so final_latent_paste changes nothing
    there."""
    swapped: list[tuple[Any, str]] = []
    extra: dict[str, Any] = {}

    def swap(owner: Any, name: str, value: Any) -> None:
        object.__setattr__(owner, name, value)
        swapped.append((owner, name))

    if mechanisms.latent_encoding == MODE:
        swap(pipe, "_encode_vae_image", _mode_encoder(pipe))
    if mechanisms.latent_mask != latent_mask.TORCH_NEAREST:
        swap(pipe, "prepare_mask_latents", _mask_rule(pipe, mechanisms.latent_mask))
    if not mechanisms.final_latent_paste and pipe.unet.config.in_channels == 4:
        step, callback = _without_final_paste(pipe)
        swap(pipe.scheduler, "step", step)
        extra = {
            "callback_on_step_end": callback,
            "callback_on_step_end_tensor_inputs": ["latents"],
        }
    try:
        yield extra
    finally:
        for owner, name in reversed(swapped):
            object.__delattr__(owner, name)


def _mode_encoder(pipe: Any) -> Any:
    def encode(image: Any, generator: Any) -> Any:
        latents = pipe.vae.encode(image).latent_dist.mode()
        return pipe.vae.config.scaling_factor * latents

    return encode


def _mask_rule(pipe: Any, rule: str) -> Any:
    original = type(pipe).prepare_mask_latents

    def prepare(mask: Any, *args: Any, **kwargs: Any) -> Any:
        small = latent_mask.latent_mask_torch(mask, rule, pipe.vae_scale_factor)
        return original(pipe, small, *args, **kwargs)

    return prepare


def _without_final_paste(pipe: Any) -> tuple[Any, Any]:
    """A scheduler ``step`` that remembers its result, and the step-end callback that
    puts it back after the last blend."""
    original = type(pipe.scheduler).step
    last: dict[str, Any] = {}

    def step(*args: Any, **kwargs: Any) -> Any:
        out = original(pipe.scheduler, *args, **kwargs)
        last["latents"] = out[0] if isinstance(out, tuple) else out.prev_sample
        return out

    def callback(p: Any, i: int, t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        if i == p.num_timesteps - 1:
            return {"latents": last["latents"]}
        return {}

    return step, callback


def paste_back(
    original: Image.Image, inpainted: Image.Image, mask: Image.Image, mechanisms: Mechanisms
) -> Image.Image:
    """``inpainted`` with the original's pixels pasted back by ``mechanisms.paste_back``:
    ``hard`` composites with the mask as alpha (diffusers' ``apply_overlay``: the
    original's pixels exactly wherever the mask is black), ``soft`` with the mask first
    blurred by a Gaussian of ``paste_blur_px`` (diffusers' ``mask_processor.blur``), so
    the seam fades over a few pixels on both sides of the edge. All images RGB (L mask)
    of one size."""
    if mechanisms.paste_back == PASTE_NONE:
        return inpainted
    from diffusers.image_processor import VaeImageProcessor

    alpha = mask.convert("L")
    if mechanisms.paste_back == PASTE_SOFT:
        alpha = VaeImageProcessor.blur(alpha, mechanisms.paste_blur_px)
    elif mechanisms.paste_back != PASTE_HARD:
        raise ValueError(f"unknown paste_back {mechanisms.paste_back!r}")
    return VaeImageProcessor().apply_overlay(alpha, original, inpainted)
