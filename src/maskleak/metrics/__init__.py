"""How much an inpainting changed the pixels outside its mask.

All error metrics are in 0-255 pixel units and, unless a name says otherwise, are taken
per *element*: a squared error is averaged over pixels x 3 channels. (BrushBench sums the
squared error over channels before dividing by the pixel count, so its MSE is 3x ours.)

Two numbers exist only so that results can be set beside the thesis this pipeline
reproduces; both are computed on uint8 arrays exactly as its script did, and neither is a
true MSE (see :func:`pair_metrics`). The mask-size one also takes the disc's area as the
study did, ``pi r²`` from the radius formula (``disc``), and so does ``area_frac_thesis``,
the study's x axis; ``area_frac`` counts the drawn pixels.

The ``*_vae`` columns are the VAE floor: the same true MSEs between the original and its
VAE round trip (``vae_roundtrip.png``, which each inpaint job saves and its manifest
names), measured once per model, image and mask and set beside each inpainting; NaN for a
manifest written before the round trip existed.

Each row also says which pipeline variant and pass made it (the mechanisms of
:mod:`maskleak.mechanisms`, read from the manifests) and takes the outside error apart
(:mod:`maskleak.metrics.decompose`): the excess over the VAE floor, the latent footprint
and an exact three-part attribution, the seam just inside the mask, colour drift
(CIEDE2000), SSIM, the error's rank correlation with texture and BrushBench's background
MSE/PSNR. A second, long table, the profile, splits each row's outside error by distance
from the mask and by texture decile.

The tables are built either at once (:func:`metrics_tables`, :func:`metrics_table`,
:func:`write_metrics`) or one inpaint manifest at a time (:func:`write_image_metrics`)
and then merged (:func:`merge_metrics`, :func:`merge_profile`); both give the same
frames, bit for bit.

Modules: ``columns`` (column dtypes, row order), ``bands`` (the band at the mask edge),
``regions`` (per-mask pixel partition), ``disc`` (the study's analytic disc area),
``pairs`` (the arithmetic), ``decompose`` (the error taken apart), ``texture``,
``colour`` (L*a*b*, CIEDE2000), ``structure`` (SSIM), ``manifests``, ``table``
(manifests to rows), ``profile`` (the long table), ``parts`` and ``merge`` (parts to the
tables).
"""

from maskleak.metrics.columns import COLUMNS, DTYPES
from maskleak.metrics.merge import merge_metrics
from maskleak.metrics.pairs import pair_metrics
from maskleak.metrics.profile import merge_profile
from maskleak.metrics.table import (
    metrics_table,
    metrics_tables,
    write_image_metrics,
    write_metrics,
)

__all__ = [
    "COLUMNS",
    "DTYPES",
    "merge_metrics",
    "merge_profile",
    "metrics_table",
    "metrics_tables",
    "pair_metrics",
    "write_image_metrics",
    "write_metrics",
]
