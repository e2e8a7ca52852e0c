"""How a pipeline shrinks the pixel mask to the latent grid it blends and conditions on.

A latent cell covers ``factor x factor`` pixels (8 for Stable Diffusion's VAE). A cell the
latent mask marks is repainted; every outside pixel in it changes with it. The rules:

* ``torch_nearest``: ``torch.nn.functional.interpolate(mode="nearest")``, today's diffusers
  (``prepare_mask_latents``): the cell takes its top-left pixel (offset 0 of 8).
* ``pil_nearest``: ``PIL.Image.resize(resample=NEAREST)``, the study's diffusers 0.11.1
  (``preprocess_mask``): the cell takes the pixel just past its centre (offset 4 of 8).
* ``cover``: a cell is repainted if any of its pixels is (no inside pixel is kept latent).
* ``inner``: a cell is repainted only if all of its pixels are (no outside pixel is).

Pixels count as inpaint where the mask PNG is above 127 (:func:`maskleak.masks.inpaint_region`),
which is also where diffusers' mask processor binarizes an 8-bit mask.

This module is the one definition: the pipelines' hooks (:func:`latent_mask_torch`) and the
metrics' latent footprint (:func:`footprint`) both use it, and a test checks the torch
and numpy forms against ``interpolate`` and PIL themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from maskleak.errors import InputError

if TYPE_CHECKING:
    import torch

TORCH_NEAREST = "torch_nearest"
PIL_NEAREST = "pil_nearest"
COVER = "cover"
INNER = "inner"
RULES = (TORCH_NEAREST, PIL_NEAREST, COVER, INNER)

#: Pixel offset inside a cell that the nearest-neighbour rules sample.
_NEAREST_OFFSET = {TORCH_NEAREST: 0, PIL_NEAREST: 4}
#: Stable Diffusion's VAE downsamples by 8 (``pipe.vae_scale_factor``).
FACTOR = 8


def check_rule(rule: str, where: str = "latent_mask") -> str:
    """``rule`` if it is one of :data:`RULES`, else InputError naming ``where``."""
    if rule not in RULES:
        raise InputError(f"{where}: unknown latent mask rule {rule!r} (use one of {RULES})")
    return rule


def _check_shape(height: int, width: int, factor: int) -> None:
    if height % factor or width % factor:
        raise InputError(
            f"the mask is {width}x{height} px, not a multiple of the latent factor {factor}"
        )


def latent_cells(inpaint: np.ndarray, rule: str, factor: int = FACTOR) -> np.ndarray:
    """The latent cells ``rule`` repaints: bool (H/f, W/f) from the bool (H, W) inpaint
    region (True = inpaint). H and W must be multiples of ``factor``."""
    check_rule(rule)
    height, width = inpaint.shape
    _check_shape(height, width, factor)
    if rule in _NEAREST_OFFSET:
        offset = _NEAREST_OFFSET[rule] * factor // FACTOR
        return np.ascontiguousarray(inpaint[offset::factor, offset::factor])
    blocks = inpaint.reshape(height // factor, factor, width // factor, factor)
    cells = blocks.any(axis=(1, 3)) if rule == COVER else blocks.all(axis=(1, 3))
    return np.asarray(cells, dtype=bool)


def footprint(inpaint: np.ndarray, rule: str, factor: int = FACTOR) -> np.ndarray:
    """Bool (H, W): the pixels whose latent cell ``rule`` repaints (the cells of
    :func:`latent_cells` blown back up to pixels). The outside pixels in it are the
    latent footprint of the mask: the pipeline repaints them though the mask keeps them."""
    cells = latent_cells(inpaint, rule, factor)
    return np.repeat(np.repeat(cells, factor, axis=0), factor, axis=1)


def latent_mask_torch(mask: torch.Tensor, rule: str, factor: int = FACTOR) -> torch.Tensor:
    """The latent mask a pipeline blends with, by ``rule``: float (B, C, H/f, W/f) in
    {0, 1} (1 = repaint) from a mask (B, C, H, W) in [0, 1] (1 = inpaint), on the mask's
    device and dtype. ``torch_nearest`` is exactly ``interpolate``'s default and keeps the
    mask's values as they are (as diffusers does); the other rules see the mask binarized
    at 0.5 (diffusers' mask processor has already binarized it)."""
    import torch

    check_rule(rule)
    height, width = mask.shape[-2:]
    _check_shape(int(height), int(width), factor)
    size = (int(height) // factor, int(width) // factor)
    if rule == TORCH_NEAREST:
        return torch.nn.functional.interpolate(mask, size=size)
    binary = (mask >= 0.5).to(mask.dtype)
    if rule == PIL_NEAREST:
        offset = _NEAREST_OFFSET[PIL_NEAREST] * factor // FACTOR
        return binary[..., offset::factor, offset::factor].contiguous()
    if rule == COVER:
        return torch.nn.functional.max_pool2d(binary, factor)
    return -torch.nn.functional.max_pool2d(-binary, factor)
