"""Print what a perfect model leaves of the schedule's own noise (latent RMS, unit-std
latents) after an inpainting call with SD 1.5's scheduler settings, by scheduler, steps
and strength; given a default run's results folder, also the trained 9-channel model's
outside-mask MSE at strength 0.2 with 10 and 50 steps, on its r80 masks, seed 0:
``python bench/schedule_residual.py [results/default]``. The README quotes both."""

import sys

from diffusers import DDIMScheduler

from maskleak.errors import InputError
from maskleak.schedule_residual import residual_rms
from maskleak.tiny_models import sd15_scheduler

STRENGTHS = (0.0, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0)


def cell(scheduler, steps, strength):
    try:
        return f"{residual_rms(scheduler, steps, strength):6.3f}"
    except InputError:  # no step to run
        return "   n/a"


def trained_tiny9(results, images=("landscape_1", "astronaut")):
    import numpy as np
    import torch
    from PIL import Image

    from maskleak.trained_models import TRAINED_DIR, assemble_pipeline

    pipe = assemble_pipeline(TRAINED_DIR, 9)
    pipe.set_progress_bar_config(disable=True)
    for name in images:
        image = Image.open(f"{results}/images/{name}.png").convert("RGB")
        mask = Image.open(f"{results}/masks/{name}/r80.png").convert("L")
        kept = np.asarray(mask) < 128
        for steps in (10, 50):
            out = pipe(
                prompt="",
                image=image,
                mask_image=mask,
                height=image.height,
                width=image.width,
                strength=0.2,
                num_inference_steps=steps,
                guidance_scale=0.0,
                generator=torch.Generator().manual_seed(0),
                output_type="np",
            ).images[0]
            error = (np.round(out * 255) - np.asarray(image, dtype=np.float64)) ** 2
            print(f"tiny9 {name} strength 0.2, {steps} steps: mse_outside {error[kept].mean():.1f}")


pndm = sd15_scheduler()
ddim = DDIMScheduler.from_config(pndm.config)
print("scheduler steps " + " ".join(f"{s:>6}" for s in STRENGTHS))
for name, scheduler in (("pndm", pndm), ("ddim", ddim)):
    for steps in (10, 50, 200):
        row = " ".join(cell(scheduler, steps, s) for s in STRENGTHS)
        print(f"{name:9} {steps:5} {row}")
if len(sys.argv) > 1:
    trained_tiny9(sys.argv[1])
