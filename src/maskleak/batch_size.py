"""How many images one pipeline call, and one merged UNet evaluation, holds.

A GPU needs a batch to be busy: measured on an H200 with SD 1.5 at 640x416, float16, 200
steps (README "Performance"), a UNet evaluation of 16 images took 53 ms and one of 1
image 27 ms, 8x the throughput. Memory bounds it: peak GPU memory grew by 0.50 GiB per
image (2.65 GiB at batch 1, 10.17 GiB at 16, the weights 2.0 GiB of it), about 1010
float16 values per pixel (the VAE decoder's full-resolution activations dominate). So
``auto`` takes as many images as fit in a share of the GPU's memory, up to 16: at the
study's size 13 on a 16 GB T4 and 16 on GPUs of 24 GB or more; at 1024x1024, 3 on a
T4. On the CPU it stays 1: there merged batches gain ~1.4x on the tiny models and cost
memory."""

from __future__ import annotations

from typing import Any

from maskleak.errors import InputError

#: Largest batch ``auto`` picks; beyond it the H200 measurement gains little per image.
AUTO_MAX_BATCH = 16
#: GPU memory per image, in values per pixel (measured 1010, rounded up) times the
#: dtype's bytes.
ACTIVATION_VALUES_PER_PIXEL = 1024
#: Share of the GPU's memory the weights and activations may use: the caching allocator
#: reserves more than it hands out (22 GiB reserved for 10 GiB allocated at batch 16).
MEMORY_SHARE = 0.6


def auto_batch_size(total_memory: int, weight_bytes: int, pixels: int, dtype_bytes: int) -> int:
    """Images per batch that fit ``MEMORY_SHARE`` of ``total_memory`` (bytes) next to
    ``weight_bytes`` of weights, for images of ``pixels`` pixels; 1 to AUTO_MAX_BATCH."""
    free = MEMORY_SHARE * total_memory - weight_bytes
    per_image = pixels * ACTIVATION_VALUES_PER_PIXEL * dtype_bytes
    return max(1, min(AUTO_MAX_BATCH, int(free // per_image)))


def resolve_batch_size(requested: int | str, device: str, pipe: Any, pixels: int) -> int:
    """The job's batch size: ``requested`` if an integer; ``auto`` is 1 on the CPU and
    :func:`auto_batch_size` for the pipeline's GPU."""
    if requested == "auto":
        if not device.startswith("cuda"):
            return 1
        import torch

        total = torch.cuda.get_device_properties(torch.device(device)).total_memory
        modules = (pipe.unet, pipe.vae, pipe.text_encoder)
        weights = sum(p.numel() * p.element_size() for m in modules for p in m.parameters())
        return auto_batch_size(total, weights, pixels, pipe.unet.dtype.itemsize)
    if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
        raise InputError(f"inpaint.batch_size must be 'auto' or an integer >= 1, got {requested!r}")
    return requested
