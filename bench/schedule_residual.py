"""Print what a perfect model leaves of the schedule's own noise (latent RMS, unit-std
latents) after an inpainting call with SD 1.5's scheduler settings, by scheduler, steps
and strength: ``python bench/schedule_residual.py``. The README quotes it."""

from diffusers import DDIMScheduler

from maskleak.errors import InputError
from maskleak.schedule_residual import residual_rms
from maskleak.tiny_models import sd15_scheduler

STRENGTHS = (0.0, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0)
pndm = sd15_scheduler()
ddim = DDIMScheduler.from_config(pndm.config)
print("scheduler steps " + " ".join(f"{s:>6}" for s in STRENGTHS))


def cell(scheduler, steps, strength):
    try:
        return f"{residual_rms(scheduler, steps, strength):6.3f}"
    except InputError:  # no step to run
        return "   n/a"


for name, scheduler in (("pndm", pndm), ("ddim", ddim)):
    for steps in (10, 50, 200):
        row = " ".join(cell(scheduler, steps, s) for s in STRENGTHS)
        print(f"{name:9} {steps:5} {row}")
