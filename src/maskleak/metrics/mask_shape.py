"""What a mask's shape is, in the numbers the leak should follow (issue 11): its area, the
length of its edge, its pieces, and its latent footprint.

A disc has the least edge for its area, so if the leak is driven by the edge (the band at
the mask's boundary, the latent cells it straddles), circles understate it against brush
strokes and boxes of the same area. These columns let a fit decide whether the outside
error follows area or edge.

* ``perimeter_px``: the crack length of the boundary: the number of 4-neighbour pixel
  pairs with one pixel inside the mask and one outside (each unit pixel edge between them
  counts 1; the image's own border is not a boundary). It is the number of
  :func:`maskleak.metrics.seam.edge_pairs`, the pairs the seam is measured over, so the
  two agree by construction. The metrics table computes it once per mask file when it
  loads the mask (every row has it, with or without the decomposition, whose
  :class:`maskleak.metrics.decompose.MaskGeometry` finds the same pairs again for the
  seam). A digital disc's crack length exceeds its Euclidean perimeter (about 4/pi
  times it: staircase edges count their steps).
* ``n_components``: connected inside regions, 8-connected (diagonal neighbours join, as a
  brush stroke's pixels do).
* ``n_outside_footprint``: outside pixels whose latent cell the rule repaints
  (:func:`maskleak.latent_mask.footprint`): the kept pixels the pipeline changes anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from maskleak import latent_mask
from maskleak.metrics.seam import edge_pairs

#: 8-connectivity for :func:`n_components`.
_EIGHT = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class MaskShape:
    """The shape numbers of one mask (see the module docstring)."""

    area_px: int
    perimeter_px: int
    n_components: int
    n_outside_footprint: int


def perimeter_px(inpaint: np.ndarray) -> int:
    """Crack length of bool (H, W) ``inpaint``'s boundary, in pixel edges."""
    return int(edge_pairs(inpaint).shape[1])


def n_components(inpaint: np.ndarray) -> int:
    """Number of 8-connected inside regions of bool (H, W) ``inpaint``."""
    return int(ndimage.label(inpaint, structure=_EIGHT)[1])


def mask_shape(inpaint: np.ndarray, rule: str, factor: int = latent_mask.FACTOR) -> MaskShape:
    """The :class:`MaskShape` of bool (H, W) ``inpaint`` (True = inpaint) under latent
    mask ``rule`` (H and W multiples of ``factor``)."""
    footprint = latent_mask.footprint(inpaint, rule, factor)
    return MaskShape(
        area_px=int(np.count_nonzero(inpaint)),
        perimeter_px=perimeter_px(inpaint),
        n_components=n_components(inpaint),
        n_outside_footprint=int(np.count_nonzero(footprint & ~inpaint)),
    )
