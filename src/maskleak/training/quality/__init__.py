"""Quality of a (trained) tiny inpainting pipeline on held-out images: issue 12's UNet bars.

Any diffusers inpainting folder is measured the same way, 4- or 9-channel UNet alike: at
strength 1.0, 10 steps, guidance 0, the empty prompt and the folder's own scheduler, with
one seeded CPU generator per inpainting and height/width passed explicitly, through the
very call the inpaint rule makes (:func:`maskleak.pipeline_choice.denoise`, the pipeline
as it ships). That call asks diffusers for ``output_type="pil"``, which diffusers makes
from the ``"np"`` float array in [0, 1] as ``(x * 255).round()`` to uint8; the outputs
here are those uint8 (H, W, 3) arrays. As shipped, today's pipeline encodes the image
to a posterior sample drawn with the call's generator; the VAE floor below uses the mode,
as the metrics' ``mse_outside_vae`` does.

Two reports, one row per image x mask x seed:

* :func:`inside_fill_report`: the inpainted hole against the original (``mse_inside``),
  against the cheapest plausible fill, the kept pixels' mean colour
  (``mse_inside_mean_fill``), and against an untrained reference pipeline's hole. Bars:
  ``mse_inside`` at most :data:`INSIDE_OVER_MEAN_FILL_BAR` times the mean fill's (a
  diffusion sample is a sample, not a mean, so it may be worse than the mean, but not by
  much), and at most :data:`FAR_BELOW_REFERENCE_FACTOR` times the untrained model's.
* :func:`outside_report`: the kept pixels' error (``mse_outside``), as PSNR both per
  element (this project's definition) and as BrushBench computes it, beside the VAE floor
  (the posterior-mode round trip's error on the same pixels) and BrushBench's range for
  SD 1.5 inpainting (:data:`BRUSHBENCH_BB_PSNR_RANGE_DB`).

:func:`quality_report` gives both column sets from one pipeline call per row;
:func:`write_quality` writes the rows as Parquet with the parameters recorded, and a JSON
summary (means, pass/fail per bar) beside it.

Units (as in ``workflow/schemas/metrics.columns.yaml``): images are uint8 (H, W, 3) in
0..255, H and W multiples of 8; masks are bool (H, W), True = inpaint ("inside"), False =
keep ("outside"); every MSE is per ELEMENT (squared 8-bit differences summed over the
selected pixels and their 3 channels, divided by pixels x 3), in 8-bit levels^2.
"""

from maskleak.training.quality.measures import (
    BB_PSNR_IDENTICAL,
    BRUSHBENCH_BB_PSNR_RANGE_DB,
    BRUSHBENCH_SD15_INPAINTING_BB_PSNR_DB,
    BRUSHBENCH_SOURCE,
    bb_psnr_db,
    bb_psnr_to_mse,
    masked_mse,
    mean_fill,
    psnr_db,
)
from maskleak.training.quality.report import (
    DEFAULT_MASKS,
    DEFAULT_SEEDS,
    GUIDANCE_SCALE,
    PROMPT,
    STEPS,
    STRENGTH,
    inpaint,
    inside_fill_report,
    outside_report,
    quality_report,
    study_masks,
    vae_roundtrip,
)
from maskleak.training.quality.summary import (
    COLUMNS,
    FAR_BELOW_REFERENCE_FACTOR,
    INSIDE_OVER_MEAN_FILL_BAR,
    settings_record,
    summarize,
    write_quality,
)

__all__ = [
    "BB_PSNR_IDENTICAL",
    "BRUSHBENCH_BB_PSNR_RANGE_DB",
    "BRUSHBENCH_SD15_INPAINTING_BB_PSNR_DB",
    "BRUSHBENCH_SOURCE",
    "COLUMNS",
    "DEFAULT_MASKS",
    "DEFAULT_SEEDS",
    "FAR_BELOW_REFERENCE_FACTOR",
    "GUIDANCE_SCALE",
    "INSIDE_OVER_MEAN_FILL_BAR",
    "PROMPT",
    "STEPS",
    "STRENGTH",
    "bb_psnr_db",
    "bb_psnr_to_mse",
    "inpaint",
    "inside_fill_report",
    "masked_mse",
    "mean_fill",
    "outside_report",
    "psnr_db",
    "quality_report",
    "settings_record",
    "study_masks",
    "summarize",
    "vae_roundtrip",
    "write_quality",
]
