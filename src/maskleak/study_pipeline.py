"""The study's inpainting pipeline, re-implemented on today's diffusers components.

The study (``../shared/STUDY.md``) ran ``StableDiffusionInpaintPipelineLegacy`` of diffusers
0.11.1, which differs from today's ``StableDiffusionInpaintPipeline`` with a 4-channel UNet
in ways that change the pixels outside the mask:

* the mask is shrunk to latent size with PIL ``NEAREST`` (the pixel near each 8x8 block's
  centre), not torch ``nearest`` (the block's top-left pixel);
* the image latents are a posterior *sample* drawn from the call's generator, not the mode;
* the timesteps are ``scheduler.timesteps[t_start:]``, so with PNDM (which has one more
  timestep than steps) strength 0 still runs one UNet step;
* after every step the kept latents are the original noised to the *current* timestep,
  and nothing pastes the clean latents back after the loop (diffusers 0.13 added that).

:func:`study_inpaint` follows 0.11.1's ``__call__`` stage by stage (same generator draws
in the same order), using the modules of a pipeline loaded with today's diffusers, so one
model folder serves both pipelines. It is checked against the real diffusers 0.11.1 by
``tests/test_study_pipeline.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from maskleak.errors import InputError

if TYPE_CHECKING:
    import torch

#: 0.11.1 hard-codes SD's latent scale instead of reading ``vae.config.scaling_factor``.
LATENT_SCALE = 0.18215
#: 0.11.1 floors image and mask sides to a multiple of this before anything else.
SIDE_MULTIPLE = 32


def check_inputs(pipe: Any, strength: float, steps: int) -> None:
    """The study's pipeline blends latents outside the mask, which needs a plain
    4-channel UNet; strength in [0, 1]; at least one step."""
    channels = pipe.unet.config.in_channels
    if channels != 4:
        raise InputError(
            f"the study pipeline needs a 4-channel UNet (plain Stable Diffusion); this model's "
            f"UNet takes {channels} channels (an inpainting checkpoint regenerates every latent "
            "and cannot run the Legacy pipeline the study used)"
        )
    if not 0.0 <= strength <= 1.0:
        raise InputError(f"strength must be in [0, 1], got {strength}")
    if steps < 1:
        raise InputError(f"steps must be >= 1, got {steps}")


def preprocess_image(image: Image.Image) -> torch.Tensor:
    """0.11.1's ``preprocess_image``: sides floored to a multiple of 32, LANCZOS resize
    (a no-op for sides already on it), [0, 255] -> [-1, 1]. Shape (1, 3, H, W), float32."""
    import torch

    w, h = (side - side % SIDE_MULTIPLE for side in image.size)
    resized = image.resize((w, h), resample=Image.Resampling.LANCZOS)
    pixels = np.array(resized).astype(np.float32) / 255.0
    return 2.0 * torch.from_numpy(pixels[None].transpose(0, 3, 1, 2)) - 1.0


def preprocess_mask(mask: Image.Image, scale_factor: int = 8) -> torch.Tensor:
    """0.11.1's ``preprocess_mask``: greyscale, sides floored to a multiple of 32, PIL
    NEAREST down to latent size, tiled to 4 channels, inverted so 1 = keep. Shape
    (1, 4, H/8, W/8), float32 in [0, 1]."""
    import torch

    grey = mask.convert("L")
    w, h = (side - side % SIDE_MULTIPLE for side in grey.size)
    small = grey.resize((w // scale_factor, h // scale_factor), resample=Image.Resampling.NEAREST)
    values = np.array(small).astype(np.float32) / 255.0
    return torch.from_numpy(1 - np.tile(values, (4, 1, 1))[None])


def study_timesteps(scheduler: Any, steps: int, strength: float) -> torch.Tensor:
    """0.11.1's ``get_timesteps``: the last ``int(steps * strength)`` steps' timesteps
    *plus everything after them* in ``scheduler.timesteps`` (PNDM has steps + 1), so the
    number of UNet evaluations is ``len(result)``, not ``int(steps * strength)``."""
    init_timestep = min(int(steps * strength), steps)
    t_start = max(steps - init_timestep, 0)
    return scheduler.timesteps[t_start:]


def study_inpaint(
    pipe: Any,
    image: Image.Image,
    mask: Image.Image,
    strength: float,
    steps: int,
    generator: torch.Generator,
    prompt: str = "",
    guidance_scale: float = 0.0,
) -> tuple[Image.Image, int]:
    """Inpaint ``image`` (RGB) where ``mask`` (L, white = inpaint) is white, exactly as the
    study's diffusers 0.11.1 Legacy pipeline did, with ``pipe``'s modules and scheduler.

    Returns the inpainted image (sides floored to a multiple of 32) and the number of
    UNet steps run. ``pipe.scheduler`` is used and left in its final state: give each call
    its own copy, as merged calls do."""
    import torch

    # 1. Check inputs
    check_inputs(pipe, strength, steps)
    device = pipe.device
    do_cfg = guidance_scale > 1.0  # 0.11.1's rule: guidance 1 means none

    with torch.inference_mode():
        # 2. Encode the prompt (today's encoder call; same CLIP forward as 0.11.1's)
        positive, negative = pipe.encode_prompt(prompt, device, 1, do_cfg)
        text = torch.cat([negative, positive]) if do_cfg else positive

        # 3. Preprocess image and mask
        pixels = preprocess_image(image).to(device=device, dtype=text.dtype)
        keep = preprocess_mask(mask, pipe.vae_scale_factor).to(device=device, dtype=text.dtype)

        # 4. Timesteps
        pipe.scheduler.set_timesteps(steps, device=device)
        timesteps = study_timesteps(pipe.scheduler, steps, strength)
        latent_timestep = timesteps[:1].repeat(1)

        # 5. Latents: a posterior sample, then noise, both from the call's generator
        posterior = pipe.vae.encode(pixels).latent_dist
        init_latents = LATENT_SCALE * posterior.sample(generator=generator)
        noise = torch.randn(
            init_latents.shape, generator=generator, device=device, dtype=init_latents.dtype
        )
        latents = pipe.scheduler.add_noise(init_latents, noise, latent_timestep)

        # 6. Denoising loop: after each step, the kept latents are the original noised
        #    to the current timestep (not the next one, and never clean)
        extra = pipe.prepare_extra_step_kwargs(generator, 0.0)
        for t in timesteps:
            model_input = torch.cat([latents] * 2) if do_cfg else latents
            model_input = pipe.scheduler.scale_model_input(model_input, t)
            noise_pred = pipe.unet(model_input, t, encoder_hidden_states=text).sample
            if do_cfg:
                uncond, cond = noise_pred.chunk(2)
                noise_pred = uncond + guidance_scale * (cond - uncond)
            latents = pipe.scheduler.step(noise_pred, t, latents, **extra).prev_sample
            proper = pipe.scheduler.add_noise(init_latents, noise, torch.tensor([t]))
            latents = proper * keep + latents * (1 - keep)

        # 7. Decode the whole latent image; no paste of the clean latents
        decoded = pipe.vae.decode(latents / LATENT_SCALE).sample
        decoded = (decoded / 2 + 0.5).clamp(0, 1)
        array = decoded.cpu().permute(0, 2, 3, 1).float().numpy()[0]
    return Image.fromarray((array * 255).round().astype("uint8")), len(timesteps)
