"""Mask shape numbers (maskleak.metrics.mask_shape) on hand-drawn masks."""

from __future__ import annotations

import numpy as np
import pytest

from maskleak import latent_mask
from maskleak.masks import circle_mask, inpaint_region
from maskleak.metrics.mask_shape import mask_shape, n_components, perimeter_px


def drawn(height: int, width: int, *pixels: tuple[int, int]) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)
    for y, x in pixels:
        mask[y, x] = True
    return mask


def test_perimeter_counts_unit_edges_between_inside_and_outside() -> None:
    square = np.zeros((8, 8), dtype=bool)
    square[2:4, 2:4] = True  # 2 x 2: 2 unit edges on each of 4 sides
    assert perimeter_px(square) == 8
    # Two pixels touching at a corner share no edge: 4 + 4.
    assert perimeter_px(drawn(8, 8, (1, 1), (2, 2))) == 8
    # An L of 3 pixels: (1,1), (2,1), (2,2). Edges: top of (1,1), left of both (1,1) and
    # (2,1), right of (1,1), bottom of (2,1) and (2,2), right and top of (2,2) = 8.
    assert perimeter_px(drawn(6, 6, (1, 1), (2, 1), (2, 2))) == 8
    # The image's border is not a boundary: a 3-pixel bar on the left edge has only its
    # right side (3) and its bottom (1).
    assert perimeter_px(drawn(6, 6, (0, 0), (1, 0), (2, 0))) == 4
    assert perimeter_px(np.zeros((4, 4), dtype=bool)) == 0
    assert perimeter_px(np.ones((4, 4), dtype=bool)) == 0


@pytest.mark.parametrize("radius_pct", [10, 35, 80])
def test_a_drawn_disc_has_the_crack_length_of_its_bounding_box(radius_pct: float) -> None:
    """A disc is convex along rows and columns, so its staircase boundary has exactly
    2 (w + h) unit edges, w and h its bounding box: PIL draws 2r + 1 pixels across."""
    mask = inpaint_region(circle_mask(192, 128, radius_pct))
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    assert height == width  # 2r + 1
    assert perimeter_px(mask) == 2 * (height + width)


def test_components_are_8_connected() -> None:
    assert n_components(drawn(8, 8, (1, 1), (2, 2))) == 1  # diagonal: one stroke
    assert n_components(drawn(8, 8, (1, 1), (1, 3))) == 2  # a gap of one pixel
    assert n_components(np.zeros((4, 4), dtype=bool)) == 0


def test_latent_footprint_counts_outside_pixels_in_repainted_cells() -> None:
    # One inpaint pixel in the first 8x8 cell: at (0, 0) torch nearest samples it, at
    # (4, 4) PIL nearest does; cover repaints the cell for either, inner for neither.
    corner, centre = drawn(16, 16, (0, 0)), drawn(16, 16, (4, 4))
    expected = {
        (latent_mask.TORCH_NEAREST, "corner"): 63,
        (latent_mask.TORCH_NEAREST, "centre"): 0,
        (latent_mask.PIL_NEAREST, "corner"): 0,
        (latent_mask.PIL_NEAREST, "centre"): 63,
        (latent_mask.COVER, "corner"): 63,
        (latent_mask.COVER, "centre"): 63,
        (latent_mask.INNER, "corner"): 0,
        (latent_mask.INNER, "centre"): 0,
    }
    for (rule, where), n in expected.items():
        mask = corner if where == "corner" else centre
        shape = mask_shape(mask, rule)
        assert shape.n_outside_footprint == n, (rule, where)
        # The corner pixel's top and left edges are the image's border: not counted.
        perimeter = 2 if where == "corner" else 4
        assert (shape.area_px, shape.perimeter_px, shape.n_components) == (
            1,
            perimeter,
            1,
        )
    # A whole cell inpainted: no outside pixel in it, for every rule.
    cell = np.zeros((16, 16), dtype=bool)
    cell[8:16, 0:8] = True
    assert {mask_shape(cell, rule).n_outside_footprint for rule in latent_mask.RULES} == {0}
