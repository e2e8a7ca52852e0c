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

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from maskleak import latent_mask
from maskleak.errors import InputError
from maskleak.mechanisms import MODE, STUDY, Mechanisms, pipeline_defaults

if TYPE_CHECKING:
    import torch

#: The config's name for this pipeline (``inpaint.pipeline`` / ``models.<name>.pipeline``).
PIPELINE = STUDY

#: 0.11.1 hard-codes SD's latent scale instead of reading ``vae.config.scaling_factor``.
LATENT_SCALE = 0.18215
#: 0.11.1 floors image and mask sides to a multiple of this before anything else.
SIDE_MULTIPLE = 32


def check_unet_channels(channels: int, model: str, where: str = "") -> None:
    """The study's pipeline blends latents outside the mask, which needs a plain
    4-channel UNet: InputError otherwise, naming ``model`` and starting with ``where``
    (e.g. the config key). The config, the inpaint job and :func:`study_inpaint` all
    check it, each as early as it knows the channels."""
    if channels != 4:
        raise InputError(
            f"{where}the study pipeline needs a 4-channel UNet (plain Stable Diffusion); "
            f"{model} has a {channels}-channel one (its UNet takes {channels} channels: an "
            "inpainting checkpoint regenerates every latent, and the study's Legacy pipeline "
            "cannot run it)"
        )


def check_inputs(pipe: Any, strength: float, steps: int) -> None:
    """A 4-channel UNet (:func:`check_unet_channels`); strength in [0, 1]; at least one
    step."""
    check_unet_channels(pipe.unet.config.in_channels, "this model")
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


def preprocess_mask(
    mask: Image.Image, scale_factor: int = 8, rule: str = latent_mask.PIL_NEAREST
) -> torch.Tensor:
    """0.11.1's ``preprocess_mask``: greyscale, sides floored to a multiple of 32, PIL
    NEAREST down to latent size, tiled to 4 channels, inverted so 1 = keep. Shape
    (1, 4, H/8, W/8), float32 in [0, 1]. Another latent mask ``rule``
    (:mod:`maskleak.latent_mask`) replaces the PIL step, on the mask binarized at 127."""
    import torch

    grey = mask.convert("L")
    w, h = (side - side % SIDE_MULTIPLE for side in grey.size)
    if rule == latent_mask.PIL_NEAREST:
        small = grey.resize(
            (w // scale_factor, h // scale_factor), resample=Image.Resampling.NEAREST
        )
        values = np.array(small).astype(np.float32) / 255.0
    else:
        inpaint = np.array(grey)[:h, :w] > 127
        values = latent_mask.latent_cells(inpaint, rule, scale_factor).astype(np.float32)
    return torch.from_numpy(1 - np.tile(values, (4, 1, 1))[None])


def study_timesteps(scheduler: Any, steps: int, strength: float) -> torch.Tensor:
    """0.11.1's ``get_timesteps``: the last ``int(steps * strength)`` steps' timesteps
    *plus everything after them* in ``scheduler.timesteps`` (PNDM has steps + 1), so the
    number of UNet evaluations is ``len(result)``, not ``int(steps * strength)``."""
    init_timestep = min(int(steps * strength), steps)
    t_start = max(steps - init_timestep, 0)
    return scheduler.timesteps[t_start:]


def schedule(scheduler: Any, steps: int, strength: float) -> list[float]:
    """Timesteps the study pipeline evaluates the UNet at, in order, computed on a copy of
    ``scheduler`` (PNDM with skip_prk_steps: ``int(steps * strength) + 1`` of them)."""
    import copy

    probe = copy.deepcopy(scheduler)
    probe.set_timesteps(steps)
    return [float(t) for t in study_timesteps(probe, steps, strength)]


def steps_run(scheduler: Any, steps: int, strength: float) -> int:
    """UNet steps the study pipeline runs at ``strength``: ``len(schedule(...))``."""
    return len(schedule(scheduler, steps, strength))


def study_inpaint(
    pipe: Any,
    image: Image.Image | Sequence[Image.Image],
    masks: Sequence[Image.Image],
    strength: float,
    steps: int,
    generators: Sequence[torch.Generator],
    prompt: str = "",
    guidance_scale: float = 0.0,
    mechanisms: Mechanisms | None = None,
) -> tuple[list[Image.Image], int]:
    """Inpaint ``image`` (RGB; or one image per mask) once per mask (L, white = inpaint)
    and generator, exactly as the study's diffusers 0.11.1 Legacy pipeline did, with
    ``pipe``'s modules and scheduler.

    ``mechanisms`` (default: the study pipeline's own, :mod:`maskleak.mechanisms`) switches
    the encoding (``mode``: no sample is drawn, so the noise is the generator's first
    draw), the latent mask rule, and ``final_latent_paste`` (the clean latents pasted
    outside the latent mask after the loop, as diffusers >= 0.13 does). Paste-back and
    passes are the caller's (:mod:`maskleak.mechanism_hooks`).

    Each inpainting draws its posterior sample and its noise from its own generator, in
    0.11.1's order, so a batch gives the same draws as one call per inpainting (0.11.1
    itself took one generator per call; the study shared one unseeded generator between
    all calls, which made each result depend on the call order). Generators should be CPU
    generators: the draws are then the same on every device.

    Returns the inpainted images (sides floored to a multiple of 32, uint8 levels rounded as
    0.11.1 rounded them) and the number of UNet steps each ran (``len(study_timesteps)``).
    ``pipe.scheduler`` is used and left in its final state: give each concurrent call its
    own copy (:func:`maskleak.models.call_copy`), as merged calls
    (:func:`maskleak.merged_calls.run_merged`) do."""
    import torch
    from diffusers.utils.torch_utils import randn_tensor

    # 1. Check inputs
    check_inputs(pipe, strength, steps)
    if len(masks) != len(generators) or not masks:
        raise InputError(
            f"study_inpaint needs one generator per mask, got {len(masks)} masks and "
            f"{len(generators)} generators"
        )
    n = len(masks)
    images = [image] * n if isinstance(image, Image.Image) else list(image)
    if len(images) != n:
        raise InputError(f"study_inpaint needs one image per mask, got {len(images)} for {n}")
    mech = mechanisms or pipeline_defaults(STUDY)
    device = pipe.device
    generator_list = list(generators)
    do_cfg = guidance_scale > 1.0  # 0.11.1's rule: guidance 1 means none

    with torch.inference_mode():
        # 2. Encode the prompt (today's encoder call; same CLIP forward as 0.11.1's)
        positive, negative = pipe.encode_prompt(prompt, device, n, do_cfg)
        text = torch.cat([negative, positive]) if do_cfg else positive

        # 3. Preprocess image and masks: (n, 3, H, W) in [-1, 1]; (n, 4, H/8, W/8), 1 = keep
        if isinstance(image, Image.Image):
            pixels = preprocess_image(image).expand(n, -1, -1, -1)
        else:
            pixels = torch.cat([preprocess_image(item) for item in images])
        pixels = pixels.to(device=device, dtype=text.dtype)
        factor = pipe.vae_scale_factor
        keep = torch.cat([preprocess_mask(m, factor, mech.latent_mask) for m in masks])
        keep = keep.to(device=device, dtype=text.dtype)

        # 4. Timesteps
        pipe.scheduler.set_timesteps(steps, device=device)
        timesteps = study_timesteps(pipe.scheduler, steps, strength)
        if len(timesteps) == 0:
            raise InputError(
                f"the study pipeline runs no step at strength {strength} with "
                f"{type(pipe.scheduler).__name__} ({steps} steps): diffusers 0.11.1 fails "
                "there too (only PNDM's extra timestep makes strength 0 run one step)"
            )
        latent_timestep = timesteps[:1].repeat(n)

        # 5. Latents: a posterior sample, then noise, each from the inpainting's generator
        #    (0.11.1 drew the sample in encode and the noise in prepare_latents, in this order)
        posterior = pipe.vae.encode(pixels).latent_dist
        if mech.latent_encoding == MODE:
            init_latents = LATENT_SCALE * posterior.mode()
        else:
            init_latents = LATENT_SCALE * posterior.sample(generator=generator_list)
        noise = randn_tensor(
            init_latents.shape, generator=generator_list, device=device, dtype=text.dtype
        )
        latents = pipe.scheduler.add_noise(init_latents, noise, latent_timestep)

        # 6. Denoising loop: after each step, the kept latents are the original noised
        #    to the current timestep (not the next one, and never clean)
        extra = pipe.prepare_extra_step_kwargs(generator_list, 0.0)
        for t in timesteps:
            model_input = torch.cat([latents] * 2) if do_cfg else latents
            model_input = pipe.scheduler.scale_model_input(model_input, t)
            # return_dict=False, as today's pipelines call it, so merged calls can share it
            noise_pred = pipe.unet(model_input, t, encoder_hidden_states=text, return_dict=False)[0]
            if do_cfg:
                uncond, cond = noise_pred.chunk(2)
                noise_pred = uncond + guidance_scale * (cond - uncond)
            latents = pipe.scheduler.step(noise_pred, t, latents, **extra).prev_sample
            proper = pipe.scheduler.add_noise(init_latents, noise, torch.tensor([t]))
            latents = proper * keep + latents * (1 - keep)

        # 7. Decode the whole latent image; 0.11.1 pasted no clean latents back first
        if mech.final_latent_paste:
            latents = init_latents * keep + latents * (1 - keep)
        decoded = pipe.vae.decode(latents / LATENT_SCALE).sample
        decoded = (decoded / 2 + 0.5).clamp(0, 1)
        array = decoded.cpu().permute(0, 2, 3, 1).float().numpy()
    levels = (array * 255).round().astype("uint8")
    return [Image.fromarray(item) for item in levels], len(timesteps)
