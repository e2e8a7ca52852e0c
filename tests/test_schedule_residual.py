"""The schedule's own residual noise: a perfect model under SD 1.5's PNDM at 10 steps
ends far from the clean latents at strength 0.2 (its warm-up redo eats a timestep of the
cut schedule), at the final step's floor elsewhere and at 50 steps; DDIM has no warm-up."""

from __future__ import annotations

import math

import pytest
import torch

from maskleak.errors import InputError
from maskleak.schedule_residual import perfect_output, residual_rms
from maskleak.tiny_models import sd15_scheduler


def floor() -> float:
    """The last step's own noise: the sample ends at ᾱ = alphas_cumprod[0]."""
    return math.sqrt(1 - float(sd15_scheduler().alphas_cumprod[0]))


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_pndm_at_10_steps_leaves_noise_at_strength_0_2(prediction_type: str) -> None:
    s = sd15_scheduler(prediction_type)
    at_full = residual_rms(s, 10, 1.0)
    assert at_full == pytest.approx(floor(), rel=0.05)
    # Timesteps [201, 101, 1]: Euler 201 -> 101, its Heun redo at 101, then the sample,
    # still at t = 101's noise, is stepped as if at t = 1.
    assert residual_rms(s, 10, 0.2) > 5 * at_full
    # Enough steps and the cut schedule keeps its warm-up clear of the end.
    for strength in (0.1, 0.2, 0.4, 1.0):
        assert residual_rms(s, 50, strength) == pytest.approx(floor(), rel=0.1)


def test_ddim_switched_in_from_sd15_settings_has_no_warm_up_and_no_clipping() -> None:
    from diffusers import DDIMScheduler

    ddim = DDIMScheduler.from_config(sd15_scheduler().config)
    assert ddim.config.clip_sample is False  # as SD 1.5's scheduler_config.json says
    for strength in (0.2, 1.0):
        assert residual_rms(ddim, 10, strength) == pytest.approx(floor(), rel=0.1)
    with pytest.raises(InputError, match="DDIMScheduler runs no step at strength 0"):
        residual_rms(ddim, 10, 0.0)


def test_perfect_output_is_the_noise_or_the_velocity() -> None:
    s = sd15_scheduler("v_prediction")
    clean, noise = torch.randn(1, 4, 2, 2), torch.randn(1, 4, 2, 2)
    t = 301
    sample = s.add_noise(clean, noise, torch.tensor([t]))
    alpha = s.alphas_cumprod[t]
    velocity = alpha.sqrt() * noise - (1 - alpha).sqrt() * clean
    assert torch.allclose(perfect_output(s, sample, clean, t), velocity, atol=1e-5)
    assert torch.allclose(perfect_output(sd15_scheduler(), sample, clean, t), noise, atol=1e-5)


def test_schedulers_without_alphas_are_refused() -> None:
    from diffusers import EulerDiscreteScheduler

    euler = EulerDiscreteScheduler.from_config(sd15_scheduler().config)
    del euler.alphas_cumprod
    with pytest.raises(InputError, match="no alphas_cumprod"):
        perfect_output(euler, torch.zeros(1), torch.zeros(1), 1)
