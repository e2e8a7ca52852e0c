"""Local texture of an original image: the luminance standard deviation in each 8x8
latent cell, the scale at which the VAE sees the image.

Luminance is ITU-R BT.601 luma, ``Y = 0.299 R + 0.587 G + 0.114 B`` on the stored 0-255
(gamma-encoded) values, not skimage's ``rgb2gray`` (BT.709 weights on linearised values).
It is computed in integers (``1000 Y``), so a cell's variance is an exact integer ratio and
its standard deviation one correctly rounded square root: the same value on every machine,
0.0 exactly for a flat cell."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maskleak.latent_mask import FACTOR

#: BT.601 luma weights in thousandths (R, G, B).
LUMA_PERMILLE = (299, 587, 114)


@dataclass(frozen=True)
class CellTexture:
    """An image's texture: ``values`` float64 (rows, cols), the population standard
    deviation of luma (0-255 units) over each cell's pixels; ``cell_of_pixel`` intp
    (H*W,), row-major, the index of each pixel's cell in ``values.ravel()``."""

    values: np.ndarray
    cell_of_pixel: np.ndarray

    def per_pixel(self) -> np.ndarray:
        """Float64 (H*W,): each pixel's cell texture."""
        return self.values.ravel()[self.cell_of_pixel]


def cell_texture(pixels: np.ndarray, cell_px: int = FACTOR) -> CellTexture:
    """The :class:`CellTexture` of uint8 (H, W, 3) ``pixels`` in ``cell_px`` x
    ``cell_px`` cells from the top-left corner (SD's latent grid); the last row and
    column of cells are partial when H or W is not a multiple of ``cell_px``."""
    height, width = pixels.shape[:2]
    luma = pixels.astype(np.int64) @ np.array(LUMA_PERMILLE, dtype=np.int64)  # 1000 Y
    row_starts = np.arange(0, height, cell_px)
    col_starts = np.arange(0, width, cell_px)

    def cell_sums(values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(np.add.reduceat(values, row_starts, axis=0), col_starts, axis=1)

    total = cell_sums(luma)
    squares = cell_sums(luma * luma)  # <= 64 * 255000^2 = 4.2e12: exact in int64
    rows = np.diff(row_starts, append=height)
    cols = np.diff(col_starts, append=width)
    count = np.outer(rows, cols)
    # n^2 var = n sum(y^2) - sum(y)^2, an exact integer (below 3e14 for 8x8 cells).
    scaled_variance = count * squares - total * total
    values = np.sqrt(scaled_variance.astype(np.float64)) / (count * 1000.0)
    cell_row = np.arange(height) // cell_px
    cell_col = np.arange(width) // cell_px
    cell_of_pixel = (cell_row[:, None] * len(col_starts) + cell_col[None, :]).reshape(-1)
    return CellTexture(values=values, cell_of_pixel=cell_of_pixel.astype(np.intp))
