"""What a sampler leaves of its own noise when the model is perfect.

An inpainting call at strength ``s`` noises the image latents to the first timestep the
pipeline keeps (``get_timesteps``: ``scheduler.timesteps[t_start * order:]``) and runs
the scheduler over the rest. Replace every UNet call by the exact answer (the noise, or
the velocity, that the sample holds at the noise level its timestep claims) and any
difference between the final sample and the clean latents is the schedule's own: what no
model, however good, removes. With diffusers' PNDM (SD 1.5's default) and few steps this
is large at low strength: PNDM spends its second timestep on a warm-up redo of its first
step, so a schedule cut short by ``strength`` ends with a sample still at the noise of
the step before, treated as clean.
"""

from __future__ import annotations

from typing import Any

from maskleak.errors import InputError

#: Latent shape of the probe: SD's 4 channels, 32 x 32 cells (a 256 px image).
PROBE_SHAPE = (1, 4, 32, 32)


def perfect_output(scheduler: Any, sample: Any, clean: Any, timestep: float) -> Any:
    """The model output a perfect UNet gives for ``sample`` (latents, any shape) whose
    clean latents are ``clean``, at ``timestep``: the noise ``(x - √ᾱ x0) / √(1 - ᾱ)``
    (``epsilon``) or the velocity ``√ᾱ ε - √(1 - ᾱ) x0`` (``v_prediction``), with ᾱ the
    scheduler's ``alphas_cumprod`` at ``timestep``."""
    alphas = getattr(scheduler, "alphas_cumprod", None)
    if alphas is None:
        raise InputError(
            f"{type(scheduler).__name__} has no alphas_cumprod: only DDPM-family "
            "schedulers (PNDM, DDIM, DDPM) can be probed"
        )
    alpha = alphas[int(timestep)]
    noise = (sample - alpha.sqrt() * clean) / (1 - alpha).sqrt()
    prediction = scheduler.config.prediction_type
    if prediction == "epsilon":
        return noise
    if prediction == "v_prediction":
        return alpha.sqrt() * noise - (1 - alpha).sqrt() * clean
    raise InputError(f"prediction_type {prediction!r} cannot be probed")


def residual_rms(scheduler: Any, steps: int, strength: float, seed: int = 0) -> float:
    """Root-mean-square distance, in latent units (unit-std latents), between clean
    latents and what ``scheduler`` ends on after an inpainting call of ``steps`` steps at
    ``strength`` whose every UNet call is answered by :func:`perfect_output`. The clean
    latents and the starting noise are standard normal of ``PROBE_SHAPE``, drawn with
    ``seed``. Its floor is the last step's own noise level, √(1 - ᾱ_final): 0.029 for
    SD 1.5's settings. A schedule with no step (DDIM at strength 0) is an InputError."""
    import copy

    import torch

    from maskleak.merged_calls import schedule

    probe = copy.deepcopy(scheduler)
    timesteps = schedule(probe, steps, strength)
    if not timesteps:
        # As the pipelines refuse it: DDIM at strength 0 has no step to run.
        raise InputError(f"{type(scheduler).__name__} runs no step at strength {strength}")
    probe.set_timesteps(steps)
    generator = torch.Generator().manual_seed(seed)
    clean = torch.randn(PROBE_SHAPE, generator=generator)
    noise = torch.randn(PROBE_SHAPE, generator=generator)
    sample = probe.add_noise(clean, noise, torch.tensor([int(timesteps[0])]))
    for t in timesteps:
        output = perfect_output(probe, sample, clean, t)
        sample = probe.step(output, int(t), sample).prev_sample
    return float((sample - clean).pow(2).mean().sqrt())
