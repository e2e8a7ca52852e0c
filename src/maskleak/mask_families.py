"""Mask families beyond the study's disc: rectangles, seeded free-form brush strokes and
the user's own mask files, plus dilation and the matching of mask files to images.

Every generator returns ``(mask, params)``: ``mask`` is a numpy ``uint8`` array of shape
(H, W) with 255 = inpaint and 0 = keep (the convention of ``maskleak.masks``), and
``params`` is a plain JSON-able dict recording everything that made the mask, meant for
the mask PNG's provenance record (``maskleak.provenance.save_png``)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError

from maskleak.errors import InputError
from maskleak.masks import INPAINT, KEEP

#: Grey level from which a user mask pixel asks for inpainting (``grey >= 128``).
USER_MASK_THRESHOLD = 128


def _half_up(value: float) -> int:
    """``floor(value + 0.5)``: halves round up (0.5 -> 1, 2.5 -> 3), unlike Python's
    ``round``, which rounds halves to even (2.5 -> 2)."""
    return math.floor(value + 0.5)


def _check_size(width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise InputError(f"mask size must be positive, got {width}x{height}")


# --------------------------------------------------------------------------- rectangles


def centred_box(w_frac: float, h_frac: float) -> tuple[float, float, float, float]:
    """The box ``(x0, y0, x1, y1)``, in fractions of the image's width and height, of a
    rectangle ``w_frac`` wide and ``h_frac`` high centred on the image."""
    for name, frac in (("w_frac", w_frac), ("h_frac", h_frac)):
        if not 0 < frac <= 1:
            raise InputError(f"centred box {name} must be in (0, 1], got {frac!r}")
    return (0.5 - w_frac / 2, 0.5 - h_frac / 2, 0.5 + w_frac / 2, 0.5 + h_frac / 2)


def rectangle_mask(
    width: int, height: int, box: Sequence[float]
) -> tuple[np.ndarray, dict[str, Any]]:
    """A filled axis-aligned rectangle.

    ``box = (x0, y0, x1, y1)`` in fractions of ``width`` and ``height``, each in [0, 1],
    with x0 < x1 and y0 < y1. The inpainted pixel columns are ``floor(x0*w + 0.5)`` to
    ``floor(x1*w + 0.5) - 1`` inclusive (halves round up, not to even as Python's
    ``round`` does), rows likewise with ``h``. A box that covers no pixel, or every pixel
    of the image (nothing outside to measure), is an InputError naming the box."""
    _check_size(width, height)
    if len(box) != 4:
        raise InputError(f"rectangle box must be (x0, y0, x1, y1), got {box!r}")
    x0, y0, x1, y1 = (float(v) for v in box)
    where = f"rectangle box (x0, y0, x1, y1) = {tuple(box)!r}"
    if not all(0.0 <= v <= 1.0 for v in (x0, y0, x1, y1)):
        raise InputError(f"{where}: every fraction must be in [0, 1]")
    if not (x0 < x1 and y0 < y1):
        raise InputError(f"{where}: needs x0 < x1 and y0 < y1")
    col0, col1 = _half_up(x0 * width), _half_up(x1 * width)  # col1 exclusive
    row0, row1 = _half_up(y0 * height), _half_up(y1 * height)
    if col1 <= col0 or row1 <= row0:
        raise InputError(f"{where} covers no pixel of a {width}x{height} image")
    if (col0, row0, col1, row1) == (0, 0, width, height):
        raise InputError(f"{where} covers the whole {width}x{height} image")
    mask = np.full((height, width), KEEP, np.uint8)
    mask[row0:row1, col0:col1] = INPAINT
    params = {
        "mask_kind": "rectangle",
        "width": width,
        "height": height,
        "box": [x0, y0, x1, y1],
        "rounding": "pixel index = floor(frac * size + 0.5); end index exclusive",
        "cols": [col0, col1 - 1],
        "rows": [row0, row1 - 1],
    }
    return mask, params


# ------------------------------------------------------------------------------ strokes

#: Stroke presets. Brush widths and segment lengths are fractions of the image's shorter
#: side; ``area_frac`` is the target range of the mask's inpainted share; turns follow
#: DeepFill v2 (mean 2*pi/5, spread 2*pi/15, alternating sign so strokes zig-zag).
STROKE_PRESETS: dict[str, dict[str, Any]] = {
    "thin": {"width_frac": (0.02, 0.04), "segment_frac": (0.08, 0.2)},
    "medium": {"width_frac": (0.05, 0.08), "segment_frac": (0.1, 0.25)},
    "thick": {"width_frac": (0.09, 0.13), "segment_frac": (0.12, 0.3)},
}
_STROKE_COMMON: dict[str, Any] = {
    "n_vertices": (4, 12),
    "area_frac": (0.1, 0.3),
    "mean_turn_rad": 2 * math.pi / 5,
    "turn_spread_rad": 2 * math.pi / 15,
    "max_attempts": 100,
}


def _stroke_settings(preset: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    if preset not in STROKE_PRESETS:
        raise InputError(f"strokes preset {preset!r} unknown; choose one of {list(STROKE_PRESETS)}")
    settings = {**_STROKE_COMMON, **STROKE_PRESETS[preset]}
    unknown = sorted(set(overrides) - set(settings))
    if unknown:
        raise InputError(f"strokes option(s) {unknown} unknown; known: {sorted(settings)}")
    settings.update(overrides)
    for key in ("width_frac", "segment_frac", "n_vertices", "area_frac"):
        lo, hi = settings[key]
        if not 0 <= lo <= hi:
            raise InputError(f"strokes {key} must be a range (lo, hi) with 0 <= lo <= hi")
        settings[key] = (lo, hi)
    if settings["area_frac"][1] > 1 or settings["n_vertices"][0] < 1:
        raise InputError("strokes area_frac must lie in [0, 1] and n_vertices be >= 1")
    if int(settings["max_attempts"]) < 1:
        raise InputError("strokes max_attempts must be >= 1")
    return settings


def _random_stroke(
    rng: np.random.Generator, width: int, height: int, s: Mapping[str, Any]
) -> tuple[int, list[list[int]]]:
    """One stroke: its brush width in px and its vertices ``[[x, y], ...]`` (a random walk
    of line segments, clipped to the image)."""
    short = min(width, height)
    brush_px = max(1, _half_up(rng.uniform(*s["width_frac"]) * short))
    lo, hi = s["n_vertices"]
    n_segments = int(rng.integers(lo, hi + 1))
    x, y = rng.uniform(0, width), rng.uniform(0, height)
    heading = rng.uniform(0, 2 * math.pi)
    vertices = [[_half_up(x), _half_up(y)]]
    for i in range(n_segments):
        turn = s["mean_turn_rad"] + rng.uniform(-1, 1) * s["turn_spread_rad"]
        heading += turn if i % 2 else -turn
        length = rng.uniform(*s["segment_frac"]) * short
        x = float(np.clip(x + length * math.cos(heading), 0, width - 1))
        y = float(np.clip(y + length * math.sin(heading), 0, height - 1))
        vertices.append([_half_up(x), _half_up(y)])
    return brush_px, vertices


def _draw_stroke(canvas: Image.Image, brush_px: int, vertices: list[list[int]]) -> None:
    draw = ImageDraw.Draw(canvas)
    points = [tuple(v) for v in vertices]
    draw.line(points, fill=INPAINT, width=brush_px, joint="curve")
    r = brush_px / 2
    for x, y in points:  # round caps and joints: a disc of the brush's width at each vertex
        draw.ellipse((x - r, y - r, x + r, y + r), fill=INPAINT)


def strokes_mask(
    width: int, height: int, seed: int, preset: str = "medium", **overrides: Any
) -> tuple[np.ndarray, dict[str, Any]]:
    """Seeded free-form brush strokes, as in the irregular masks of inpainting benchmarks.

    Adapted from DeepFill v2's ``brush_stroke_mask`` (Yu et al., "Free-Form Image
    Inpainting with Gated Convolution", arXiv:1806.03589; e.g. the copy in
    github.com/JiahuiYu/generative_inpainting) and LaMa's ``make_random_irregular_mask``
    (advimman/lama, ``saicinpainting/training/data/masks.py``): each stroke is a random
    walk of ``n_vertices`` line segments from a uniform start, turning by
    ``mean_turn_rad +- turn_spread_rad`` with alternating sign, each segment's length
    uniform in ``segment_frac`` of the shorter side, drawn with one brush width (uniform in
    ``width_frac`` of the shorter side, rounded half-up, at least 1 px) by PIL
    ``ImageDraw.line(joint="curve")`` plus a filled disc of the brush width at each vertex.
    Vertices are clipped to the image and rounded to whole pixels.

    Stopping rule: strokes are drawn one at a time; a stroke that would push the inpainted
    share above ``area_frac[1]`` is discarded (its random draws still consumed); once the
    share reaches ``area_frac[0]`` the mask is done. After ``max_attempts`` strokes
    (accepted or not) without reaching ``area_frac[0]`` it is an InputError, so it never
    loops forever. Randomness: ``numpy.random.default_rng(seed)`` only, identical on every
    platform. ``overrides`` replace any preset setting (``width_frac``, ``segment_frac``,
    ``n_vertices``, ``area_frac``, ``mean_turn_rad``, ``turn_spread_rad``,
    ``max_attempts``); ``params`` records all of them and every accepted stroke."""
    _check_size(width, height)
    s = _stroke_settings(preset, overrides)
    rng = np.random.default_rng(seed)
    area_min, area_max = s["area_frac"]
    canvas = Image.new("L", (width, height), KEEP)
    strokes: list[dict[str, Any]] = []
    share = 0.0
    attempts = 0
    while share < area_min or not strokes:
        if attempts >= s["max_attempts"]:
            raise InputError(
                f"strokes preset {preset!r} seed {seed}: {attempts} strokes tried without "
                f"reaching area_frac {area_min:g} (reached {share:.3f}) at {width}x{height}; "
                "widen area_frac or raise max_attempts"
            )
        attempts += 1
        brush_px, vertices = _random_stroke(rng, width, height, s)
        trial = canvas.copy()
        _draw_stroke(trial, brush_px, vertices)
        trial_share = float((np.asarray(trial) == INPAINT).mean())
        if trial_share > area_max:
            continue
        canvas, share = trial, trial_share
        strokes.append({"brush_px": brush_px, "vertices": vertices})
    mask = np.asarray(canvas).copy()
    params = {
        "mask_kind": "strokes",
        "width": width,
        "height": height,
        "seed": int(seed),
        "preset": preset,
        "rng": "numpy.random.default_rng",
        **{k: list(v) if isinstance(v, tuple) else v for k, v in s.items()},
        "attempts": attempts,
        "area_frac_drawn": share,
        "strokes": strokes,
    }
    return mask, params


# --------------------------------------------------------------------------- user masks


def read_user_mask(
    path: str | os.PathLike[str],
    size: tuple[int, int] | None = None,
    resize: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The user's mask file as a binary 255/0 mask.

    Any PIL mode is converted to greyscale ``L`` with PIL's ``convert("L")``: RGB(A) and
    palette images by the ITU-R 601-2 luma ``L = R*299/1000 + G*587/1000 + B*114/1000``,
    alpha dropped, mode ``1`` to 0/255, 16/32-bit integer modes clipped to 0..255. Then a
    pixel is inpainted where ``L >= 128`` and kept where ``L <= 127``.

    ``size = (width, height)``: the size the mask must have. If it differs, ``resize``
    False is an InputError naming the file and both sizes, worded so that the caller can
    append `` (image NAME)``; ``resize`` True resizes the grey mask with PIL ``NEAREST``
    before thresholding. Unreadable files and masks that inpaint nothing or everything
    are InputErrors naming the file."""
    where = os.fspath(path)
    try:
        with Image.open(where) as img:
            mode = img.mode
            grey = img.convert("L")
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise InputError(f"user mask {where} is not a readable image ({err})") from err
    original = grey.size
    resized = False
    if size is not None and tuple(size) != original:
        w, h = size
        if not resize:
            mw, mh = original
            raise InputError(
                f"user mask {where} is {mw}x{mh} px; set resize to resize it (nearest), "
                f"or give a mask of {w}x{h} px like its image"
            )
        grey = grey.resize((w, h), Image.Resampling.NEAREST)
        resized = True
    mask = np.where(np.asarray(grey) >= USER_MASK_THRESHOLD, INPAINT, KEEP).astype(np.uint8)
    n_inpaint = int((mask == INPAINT).sum())
    if n_inpaint in (0, mask.size):
        what = "no pixel" if n_inpaint == 0 else "every pixel"
        raise InputError(
            f"user mask {where} inpaints {what} (grey >= {USER_MASK_THRESHOLD} inpaints): "
            "nothing to measure"
        )
    params = {
        "mask_kind": "file",
        "path": where,
        "file_mode": mode,
        "file_size": list(original),
        "grey": 'PIL convert("L")',
        "threshold": USER_MASK_THRESHOLD,
        "rule": f"grey >= {USER_MASK_THRESHOLD} -> inpaint (255), else keep (0)",
        "resized": resized,
        "resample": "nearest" if resized else None,
        "width": mask.shape[1],
        "height": mask.shape[0],
    }
    return mask, params


# ----------------------------------------------------------------------------- dilation


def dilate(mask: np.ndarray, px: int) -> np.ndarray:
    """The mask grown by ``px`` pixels: binary dilation of its inpainted region (> 127)
    by the disc ``skimage.morphology.disk(px)`` (the pixels at Euclidean distance <= px
    from the centre), with nothing inpainted beyond the image border. Returns a new 255/0
    ``uint8`` array; ``px = 0`` returns the mask unchanged."""
    if px < 0 or int(px) != px:
        raise InputError(f"mask dilation must be a whole number of pixels >= 0, got {px!r}")
    arr = np.asarray(mask)
    if px == 0:
        return arr
    from scipy.ndimage import binary_dilation
    from skimage.morphology import disk

    grown = binary_dilation(arr > 127, structure=disk(int(px)))
    return np.where(grown, INPAINT, KEEP).astype(np.uint8)


# ------------------------------------------------------------------------------ matching


def match_masks_to_images(
    mask_files: Iterable[str | os.PathLike[str]],
    image_names: Iterable[str],
    *,
    folder: str | os.PathLike[str] | None = None,
) -> dict[str, str]:
    """Which mask file masks which image, for a folder of user masks.

    One mask file: it masks every image. Several: each image takes the mask whose file
    stem equals the image name (case-sensitive); masks that match no image are ignored.
    An image without a mask, or two masks with the same stem, is an InputError naming the
    folder (``folder``, else the first file's directory) and the image. Returns
    ``{image_name: mask_path}``."""
    files = sorted(os.fspath(f) for f in mask_files)
    names = list(image_names)
    if folder is None:
        folder = (os.path.dirname(files[0]) or ".") if files else "(none given)"
    folder = os.fspath(folder)
    if not files:
        raise InputError(f"mask folder {folder} holds no mask files")
    if len(files) == 1:
        return dict.fromkeys(names, files[0])
    by_stem: dict[str, list[str]] = {}
    for f in files:
        by_stem.setdefault(Path(f).stem, []).append(f)
    matched: dict[str, str] = {}
    for name in names:
        found = by_stem.get(name, [])
        if len(found) > 1:
            raise InputError(
                f"mask folder {folder}: {len(found)} masks for image {name} "
                f"({', '.join(os.path.basename(f) for f in found)}); keep one"
            )
        if not found:
            raise InputError(
                f"mask folder {folder} has no mask for image {name} "
                f"(expected a file named {name}.<ext>, or a single mask for all images)"
            )
        matched[name] = found[0]
    return matched
