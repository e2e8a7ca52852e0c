"""The study's centred circular masks: white (255) = inpaint, black (0) = keep."""

from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image, ImageDraw

from maskleak.errors import InputError

INPAINT = 255
KEEP = 0


def circle_radius_px(width: int, height: int, radius_pct: float) -> int:
    """The study's radius: ``r = floor(p/100 * min(w, h) / 2)`` in pixels."""
    if not 0 < radius_pct <= 100:
        raise InputError(f"radius_pct must be in (0, 100], got {radius_pct!r}")
    return math.floor(radius_pct / 100 * min(width, height) / 2)


def circle_mask(width: int, height: int, radius_pct: float) -> Image.Image:
    """An 8-bit ``L`` mask with a filled centred disc, drawn exactly as the study did:
    PIL ``ImageDraw.ellipse((w/2-r, h/2-r, w/2+r, h/2+r))`` on a black canvas."""
    if width <= 0 or height <= 0:
        raise InputError(f"mask size must be positive, got {width}x{height}")
    r = circle_radius_px(width, height, radius_pct)
    mask = Image.new("L", (width, height), KEEP)
    box = (width / 2 - r, height / 2 - r, width / 2 + r, height / 2 + r)
    ImageDraw.Draw(mask).ellipse(box, fill=INPAINT)
    return mask


def inpaint_region(mask: np.ndarray | Image.Image) -> np.ndarray:
    """Boolean (H, W) array, True where the mask asks for inpainting (value > 127)."""
    arr = np.asarray(mask)
    if arr.ndim == 3:
        arr = arr[..., 0]
    return arr > 127


def area_frac(mask: np.ndarray | Image.Image) -> float:
    """Share of the image's pixels that the mask asks to inpaint (disc area / image area),
    counted on the drawn pixels rather than pi*r^2 so it matches what was inpainted."""
    region = inpaint_region(mask)
    return float(region.sum() / region.size)


def check_mask(
    pixels: np.ndarray | Image.Image,
    radius_pct: float,
    path: str | os.PathLike[str],
    *,
    image_size: tuple[int, int] | None = None,
) -> None:
    """Refuse a mask file whose pixels are not what the mask rule draws for
    ``radius_pct`` at its size (``circle_mask``, the function ``write_masks`` uses): a
    mask replaced by hand would otherwise be measured under this radius's label.

    ``pixels`` is the decoded file (``L``, or RGB with equal channels, or a PIL image);
    ``image_size`` (width, height), if given, is the size of the image it masks. Raises
    InputError naming ``path``."""
    arr = np.asarray(pixels)
    if arr.dtype == bool:
        arr = np.where(arr, INPAINT, KEEP).astype(np.uint8)
    grey = arr[..., 0] if arr.ndim == 3 else arr
    where = f"{os.fspath(path)}: not drawn by the mask rule"
    redraw = "delete it to redraw it"
    if grey.ndim != 2 or grey.shape[0] == 0 or grey.shape[1] == 0:
        raise InputError(f"{where} (pixel array of shape {arr.shape}); {redraw}")
    height, width = grey.shape
    if image_size is not None and (width, height) != tuple(image_size):
        iw, ih = image_size
        raise InputError(
            f"{where}: the mask is {width}x{height} px but its image is {iw}x{ih} px; {redraw}"
        )
    expected = np.asarray(circle_mask(width, height, radius_pct))
    differ = int((grey != expected).sum())
    if arr.ndim == 3:
        differ = max(differ, int((arr != expected[..., None]).any(axis=-1).sum()))
    if differ:
        raise InputError(
            f"{where} for radius_pct={radius_pct:g}: {differ} of {width * height} pixels "
            f"differ from its {width}x{height} px disc; {redraw}"
        )


def write_masks(image_path: str, radius_pct: dict[str, float], out_paths: list[str]) -> None:
    """One disc mask PNG per radius percentage, sized like the image at ``image_path``,
    through the mask rule's own writer (:func:`maskleak.mask_specs.write_mask_files`).

    ``radius_pct`` maps each file label to its exact value; ``out_paths`` are in the
    same order. The exact value, not the rounded label, sets the radius."""
    from maskleak.mask_specs import disc_record, write_mask_files

    if len(radius_pct) != len(out_paths):
        raise InputError(f"{len(radius_pct)} radii but {len(out_paths)} mask paths")
    write_mask_files(image_path, [disc_record(pct) for pct in radius_pct.values()], out_paths)
