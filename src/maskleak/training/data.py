"""Training data for the tiny models: images, random crops of them, random inpainting masks.

The tiny VAE and inpainting UNet are trained on two sources, neither of which is an
evaluation image (``config/config.yaml``: skimage astronaut, coffee, rocket, chelsea and
procedural landscapes 1 and 2):

* ``TRAIN_PHOTOS``: scikit-image sample photographs that ship inside its wheel (read
  offline, no pooch) and whose docstrings state CC0, public domain or no (known)
  copyright restrictions; ``PHOTO_LICENCES`` quotes those words. ``EXCLUDED_PHOTOS`` says
  why every other bundled or fetchable sample is left out.
* ``TRAIN_LANDSCAPE_SEEDS``: procedural landscapes (``maskleak.landscapes``) at seeds of
  100 and up; seeds below 100 are kept for evaluation and tests (the default config uses
  1 and 2, the tests 0 to 4).

Every image is 8-bit RGB (H, W, 3) ``uint8`` in 0..255, shrunk with PIL bicubic so its
short side is at most ``SHORT_SIDE_PX`` = 256. Why 256: the workflow shrinks the
evaluation images to a long side of 192 px (by 0.30 to 0.375 for their 512 to 640 px
sources); a 256 px short side shrinks 512 to 640 px sources by 0.40 to 0.53, so objects
and textures in a 64 to 128 px training crop appear at roughly the evaluation scale (1.3
to 1.8 times larger), while each image still offers many distinct crop positions.

All randomness is ``numpy.random.default_rng`` seeded by the caller: the same arguments
give identical arrays in any process on any platform."""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from maskleak.errors import InputError
from maskleak.images import check_int, to_rgb8
from maskleak.landscapes import generate_landscape
from maskleak.mask_families import STROKE_PRESETS, rectangle_mask, strokes_mask
from maskleak.provenance import pixel_sha256, sha256_bytes
from maskleak.sources import SKIMAGE_FILES

#: Short side, in px, that every training image is shrunk to (never enlarged).
SHORT_SIDE_PX = 256

#: Training photographs (``skimage.data`` function names) and their licence as the
#: function's docstring in scikit-image 0.26 states it, word for word (reStructuredText
#: link markup and line breaks removed; a test checks the words are there). All are bundled
#: in the wheel (``maskleak.sources.SKIMAGE_FILES``), so they load offline. Greyscale
#: ones are replicated to RGB.
PHOTO_LICENCES: dict[str, str] = {
    "brick": (
        "The original image was downloaded from CC0Textures and licensed under the "
        "Creative Commons CC0 License."
    ),
    "camera": "No copyright restrictions. CC0 by the photographer (Lav Varshney).",
    "cell": (
        "This image is CC0, dedicated to the public domain. You may copy, modify, or "
        "distribute it without asking permission."
    ),
    "clock": "Released into the public domain by the photographer (Stefan van der Walt).",
    "coins": "No known copyright restrictions.",
    "grass": (
        "The original image was downloaded from DeviantArt and licensed under the "
        "Creative Commons CC0 License."
    ),
    "gravel": (
        "The original image was downloaded from CC0Textures and licensed under the "
        "Creative Commons CC0 License."
    ),
    "hubble_deep_field": (
        "The image was captured by NASA and may be freely used in the public domain."
    ),
    "immunohistochemistry": "No known copyright restrictions.",
    "retina": (
        "This file is made available under the Creative Commons CC0 1.0 Universal "
        "Public Domain Dedication."
    ),
    "text": "No known copyright restrictions, released into the public domain.",
}
TRAIN_PHOTOS: tuple[str, ...] = tuple(PHOTO_LICENCES)

#: The evaluation photographs of the default config, never trained on. ``cat`` is
#: scikit-image's other name for ``chelsea`` (the same pixels).
EVAL_PHOTOS: frozenset[str] = frozenset({"astronaut", "coffee", "rocket", "chelsea", "cat"})

#: Every other ``skimage.data`` image sample, and why it is not trained on.
EXCLUDED_PHOTOS: dict[str, str] = {
    **{name: "evaluation image of config/config.yaml" for name in sorted(EVAL_PHOTOS)},
    "microaneurysms": "CC0, but 102x102 px: smaller than a useful training crop",
    "horse": "CC0, but a binary clip-art silhouette, not a photograph",
    "logo": "no licence stated in its docstring",
    "colorwheel": "no licence stated in its docstring",
    "moon": "no licence stated in its docstring",
    "page": "no licence stated in its docstring",
    "binary_blobs": "synthetic blobs, not a photograph",
    "checkerboard": "synthetic; no licence stated in its docstring",
    "shepp_logan_phantom": "synthetic; no licence stated in its docstring",
    "stereo_motorcycle": "Middlebury benchmark; no licence stated in its docstring",
    "lfw_subset": "face data set; no licence stated in its docstring",
    **{
        name: "CC0 or public domain, but downloaded by pooch: not available offline"
        for name in ("eagle", "human_mitosis", "kidney", "lily", "skin", "vortex")
    },
    **{
        name: "no licence stated in its docstring; downloaded by pooch"
        for name in ("brain", "cells3d", "nickel_solidification", "palisades_of_vogt")
    },
    "protein_transport": "no licence stated in its docstring; downloaded by pooch",
}

#: Procedural landscape seeds trained on. Seeds below ``FIRST_TRAIN_LANDSCAPE_SEED`` are
#: reserved for evaluation (the default config's 1 and 2) and tests (0 to 4).
FIRST_TRAIN_LANDSCAPE_SEED = 100
TRAIN_LANDSCAPE_SEEDS: tuple[int, ...] = tuple(range(FIRST_TRAIN_LANDSCAPE_SEED, 164))

#: Sizes (width, height) in px a training landscape is generated at, before it is shrunk
#: to ``SHORT_SIDE_PX``: the evaluation landscapes' 640x480 and three other aspects, so
#: the ridge, lake and shore shapes vary in proportion as well as with the seed.
LANDSCAPE_SIZES_PX: tuple[tuple[int, int], ...] = ((640, 480), (720, 480), (768, 432), (512, 512))

#: Mask families drawn by ``random_masks``, each with probability 1/3.
MASK_KINDS: tuple[str, ...] = ("disc", "box", "strokes")
#: Every mask's inpainted share of the crop lies in this closed range.
MASK_AREA_RANGE: tuple[float, float] = (0.05, 0.60)
#: Smallest crop side, in px, ``random_masks`` accepts (smaller ones cannot hold a 5 %
#: brush stroke reliably).
MIN_MASK_SIDE_PX = 8
#: Width, as a share of the crop, of the window a strokes mask must land in.
STROKES_AREA_WINDOW = 0.10
#: Draws per mask before ``random_masks`` gives up (never reached at 8 px and up).
MAX_MASK_TRIES = 1000
#: Box aspect ratios (width / height of the box in fractions of the crop's sides) are
#: log-uniform in [1 / BOX_MAX_ASPECT, BOX_MAX_ASPECT].
BOX_MAX_ASPECT = 3.0


# ------------------------------------------------------------------------------- images


def short_side_size(width: int, height: int, short_side: int = SHORT_SIDE_PX) -> tuple[int, int]:
    """(width, height) scaled so the short side is ``short_side`` px, never enlarged:
    the long side is ``floor(long * short_side / short + 1/2)`` in exact arithmetic."""
    width = check_int(width, "width", 1)
    height = check_int(height, "height", 1)
    short_side = check_int(short_side, "short_side", 1)
    short = min(width, height)
    if short <= short_side:
        return width, height
    scale = Fraction(short_side, short)
    return math.floor(width * scale + Fraction(1, 2)), math.floor(height * scale + Fraction(1, 2))


def shrink(rgb: np.ndarray, short_side: int = SHORT_SIDE_PX) -> np.ndarray:
    """``rgb`` (H, W, 3) uint8 shrunk with one PIL bicubic step to ``short_side_size``;
    an image already small enough is returned as an untouched copy."""
    height, width = rgb.shape[:2]
    size = short_side_size(width, height, short_side)
    if size == (width, height):
        return rgb.copy()
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BICUBIC)).copy()


def load_photo(name: str) -> np.ndarray:
    """Training photo ``name`` at its bundled size as (H, W, 3) uint8 RGB (greyscale
    replicated to the three channels), read offline from scikit-image's wheel."""
    if name not in PHOTO_LICENCES:
        reason = EXCLUDED_PHOTOS.get(name, "not a scikit-image sample")
        raise InputError(f"training photo {name!r} is not one of TRAIN_PHOTOS ({reason})")
    import skimage.data

    array = np.asarray(getattr(skimage.data, name)())
    if array.dtype != np.uint8 or array.ndim not in (2, 3):
        raise InputError(f"training photo {name!r} is {array.dtype} {array.shape}, not 8-bit")
    return np.asarray(to_rgb8(Image.fromarray(array), f"training photo {name!r}"))


def landscape_size(landscape_seed: int, seed: int = 0) -> tuple[int, int]:
    """The (width, height) in px from ``LANDSCAPE_SIZES_PX`` that landscape
    ``landscape_seed`` is generated at, drawn by ``default_rng([seed, landscape_seed])``
    so a landscape's size does not depend on which other landscapes are used."""
    rng = np.random.default_rng([seed, landscape_seed])
    return LANDSCAPE_SIZES_PX[int(rng.integers(len(LANDSCAPE_SIZES_PX)))]


def training_images(
    seed: int = 0, landscape_seeds: Sequence[int] = TRAIN_LANDSCAPE_SEEDS
) -> tuple[list[np.ndarray], dict[str, Any]]:
    """All training images and where they came from.

    Returns ``(images, provenance)``. ``images``: the ``TRAIN_PHOTOS`` in that order,
    then one procedural landscape per ``landscape_seeds`` entry in that order, each an
    (H, W, 3) uint8 RGB array shrunk (``shrink``) to a short side of ``SHORT_SIDE_PX``.
    A landscape is generated at ``landscape_size(landscape_seed, seed)`` and shrunk like
    the photos, as the workflow shrinks its evaluation landscapes. ``seed`` (>= 0) only
    picks those generation sizes; the photos do not depend on it.

    ``provenance``: JSON-able; ``images`` holds one entry per returned image, in order,
    with its source, licence (photos), source file hash, sizes and pixel hash. Landscape
    seeds below ``FIRST_TRAIN_LANDSCAPE_SEED`` (evaluation and test seeds) are refused."""
    seed = check_int(seed, "seed", 0)
    seeds = [check_int(s, "landscape seed", 0) for s in landscape_seeds]
    reserved = sorted(s for s in seeds if s < FIRST_TRAIN_LANDSCAPE_SEED)
    if reserved:
        raise InputError(
            f"landscape seeds {reserved} are below {FIRST_TRAIN_LANDSCAPE_SEED}, "
            "reserved for evaluation and tests"
        )
    import skimage.data

    images: list[np.ndarray] = []
    records: list[dict[str, Any]] = []
    for name in TRAIN_PHOTOS:
        photo = load_photo(name)
        small = shrink(photo)
        source = Path(skimage.data.data_dir) / SKIMAGE_FILES[name]
        images.append(small)
        records.append(
            {
                "kind": "skimage",
                "name": name,
                "licence": PHOTO_LICENCES[name],
                "source_file": source.name,
                "source_sha256": sha256_bytes(source.read_bytes()),
                "source_size": [photo.shape[1], photo.shape[0]],
                "size": [small.shape[1], small.shape[0]],
                "pixel_sha256": pixel_sha256(small),
            }
        )
    for landscape_seed in seeds:
        width, height = landscape_size(landscape_seed, seed)
        rgb, _ = generate_landscape(landscape_seed, width, height)
        small = shrink(rgb)
        images.append(small)
        records.append(
            {
                "kind": "procedural",
                "seed": landscape_seed,
                "licence": "generated by maskleak.landscapes (no third-party content)",
                "source_size": [width, height],
                "size": [small.shape[1], small.shape[0]],
                "pixel_sha256": pixel_sha256(small),
            }
        )
    provenance = {
        "stage": "training_images",
        "seed": seed,
        "size_rng": "numpy.random.default_rng([seed, landscape_seed])",
        "short_side_px": SHORT_SIDE_PX,
        "resample": "bicubic",
        "landscape_sizes_px": [list(s) for s in LANDSCAPE_SIZES_PX],
        "excluded_photos": dict(EXCLUDED_PHOTOS),
        "reserved_landscape_seeds": f"below {FIRST_TRAIN_LANDSCAPE_SEED}",
        "images": records,
    }
    return images, provenance


#: Mean absolute difference (0..255) below which two images count as copies of each
#: other (:func:`copy_distance`): copies measure 0 (skimage's cat against the evaluation
#: chelsea, a regenerated landscape 1 against landscape_1), unrelated pairs 15 and up.
COPY_MAD = 8.0


def copy_distance(train: np.ndarray, other: np.ndarray) -> float:
    """Mean |train - other| over pixels and channels, in 8-bit levels, after resizing
    ``other`` (uint8 (H, W, 3)) to ``train``'s size with PIL bicubic: near 0 when one is
    a resized copy of the other, whatever their sizes. Below :data:`COPY_MAD` an
    evaluation image would not be held out."""
    size = (train.shape[1], train.shape[0])
    resized = np.asarray(Image.fromarray(other).resize(size, Image.Resampling.BICUBIC))
    return float(np.abs(train.astype(np.int64) - resized).mean())


# -------------------------------------------------------------------------------- crops


def _check_images(images: Sequence[np.ndarray], height: int, width: int) -> None:
    if len(images) == 0:
        raise InputError("training images: the list is empty; nothing to crop")
    for i, image in enumerate(images):
        if not (
            isinstance(image, np.ndarray)
            and image.dtype == np.uint8
            and image.ndim == 3
            and image.shape[2] == 3
        ):
            what = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image)
            raise InputError(f"training image {i} is {what}, not (H, W, 3) uint8")
        h, w = image.shape[:2]
        if h < height or w < width:
            raise InputError(
                f"training image {i} is {w}x{h} px, smaller than the {width}x{height} px crop"
            )


def crop_batch(
    images: Sequence[np.ndarray], n: int, height: int, width: int, seed: int | Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random crops and where each came from.

    Returns ``(crops, positions)``: ``crops`` (n, height, width, 3) uint8;
    ``positions`` (n, 4) int64 with columns (image index, top row, left column, flipped
    0/1), so ``crops[k]`` is ``images[i][top:top + height, left:left + width]``, mirrored
    left-right when flipped. Draws from ``default_rng(seed)``, in this order: all n image
    indices (uniform over the images, whatever their size), all n top rows, all n left
    columns (each uniform over the positions that keep the crop inside its image), all n
    flips (probability 1/2). Every image must be at least ``height`` x ``width``
    (``images`` of (H, W, 3) uint8, as ``training_images`` returns them)."""
    n = check_int(n, "n", 0)
    height = check_int(height, "crop height", 1)
    width = check_int(width, "crop width", 1)
    _check_images(images, height, width)
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(images), size=n)
    heights = np.array([images[i].shape[0] for i in index], dtype=np.int64)
    widths = np.array([images[i].shape[1] for i in index], dtype=np.int64)
    top = rng.integers(0, heights - height + 1) if n else np.zeros(0, np.int64)
    left = rng.integers(0, widths - width + 1) if n else np.zeros(0, np.int64)
    flipped = rng.random(n) < 0.5
    crops = np.empty((n, height, width, 3), np.uint8)
    for k in range(n):
        crop = images[index[k]][top[k] : top[k] + height, left[k] : left[k] + width]
        crops[k] = crop[:, ::-1] if flipped[k] else crop
    positions = np.stack([index, top, left, flipped.astype(np.int64)], axis=1).astype(np.int64)
    return crops, positions


def random_crops(
    images: Sequence[np.ndarray], n: int, height: int, width: int, seed: int | Sequence[int]
) -> np.ndarray:
    """(n, height, width, 3) uint8 random crops of ``images``: ``crop_batch`` without the
    positions (uniform image choice, uniform position, left-right flip with p = 1/2)."""
    return crop_batch(images, n, height, width, seed)[0]


def balanced_crops(
    photos: Sequence[np.ndarray],
    landscapes: Sequence[np.ndarray],
    n: int,
    size: int,
    seed: int,
    step: int,
    permute_channels: bool = True,
) -> np.ndarray:
    """Training step ``step``'s batch for the VAE: (n, size, size, 3) uint8 crops
    (``random_crops``) of the photos at odd steps and of the landscapes at even ones, the
    three colour channels of the whole batch shuffled (one permutation, all 6 equally
    likely) if ``permute_channels``. Crops draw from ``default_rng([seed, step])``, the
    permutation from ``default_rng([seed, step, 1])``.

    Why: the landscapes outnumber the photos 64 to 11 and 8 of the photos are grey, so
    uniform sampling shows the model almost no colour photographs; alternating gives each
    source half the steps, and the channel shuffle teaches every hue from every colour
    image (a trained VAE should not care which channel is red)."""
    step = check_int(step, "step", 0)
    source = photos if step % 2 else landscapes
    crops = crop_batch(source, n, size, size, [seed, step])[0]
    if not permute_channels:
        return crops
    order = np.random.default_rng([seed, step, 1]).permutation(3)
    return np.ascontiguousarray(crops[..., order])


# -------------------------------------------------------------------------------- masks


def _disc(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, dict[str, Any]]:
    """A disc of target area uniform in ``MASK_AREA_RANGE``, centre uniform over the
    crop, clipped by the crop's border (so its drawn area can be below the target).
    Pixel (row y, column x) is inside when its centre (x + 1/2, y + 1/2) is within
    ``radius_px`` of the disc's centre."""
    target = rng.uniform(*MASK_AREA_RANGE)
    radius = math.sqrt(target * height * width / math.pi)
    cx, cy = rng.uniform(0, width), rng.uniform(0, height)
    ys = np.arange(height, dtype=np.float64)[:, None] + 0.5
    xs = np.arange(width, dtype=np.float64)[None, :] + 0.5
    mask = (xs - cx) ** 2 + (ys - cy) ** 2 <= radius**2
    record = {"centre_x_px": cx, "centre_y_px": cy, "radius_px": radius}
    return mask, record


def _box(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, dict[str, Any]]:
    """A box (``maskleak.mask_families.rectangle_mask``) of target area uniform in
    ``MASK_AREA_RANGE``, aspect log-uniform in [1/3, 3], placed uniformly inside."""
    target = rng.uniform(*MASK_AREA_RANGE)
    aspect = math.exp(rng.uniform(-math.log(BOX_MAX_ASPECT), math.log(BOX_MAX_ASPECT)))
    w_frac = min(1.0, math.sqrt(target * aspect))
    h_frac = min(1.0, math.sqrt(target / aspect))
    x0, y0 = rng.uniform(0, 1 - w_frac), rng.uniform(0, 1 - h_frac)
    box = (x0, y0, min(1.0, x0 + w_frac), min(1.0, y0 + h_frac))
    try:
        mask, _ = rectangle_mask(width, height, box)
    except InputError:  # covers no pixel after rounding: redrawn like any miss
        return np.zeros((height, width), bool), {"box": list(box)}
    return mask == 255, {"box": list(box)}


def _strokes(
    rng: np.random.Generator, height: int, width: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """Brush strokes (``maskleak.mask_families.strokes_mask``): a preset uniform over
    ``STROKE_PRESETS``, a seed drawn from ``rng``, and ``area_frac`` overridden to
    ``(lo, lo + STROKES_AREA_WINDOW)`` with ``lo`` uniform in [0.05, 0.50], so the
    drawn share lands in that window (the preset's own 10-30 % would leave the large
    masks out)."""
    preset = sorted(STROKE_PRESETS)[int(rng.integers(len(STROKE_PRESETS)))]
    stroke_seed = int(rng.integers(0, 2**63 - 1))
    lo = rng.uniform(MASK_AREA_RANGE[0], MASK_AREA_RANGE[1] - STROKES_AREA_WINDOW)
    area = (lo, lo + STROKES_AREA_WINDOW)
    record = {
        "preset": preset,
        "seed": stroke_seed,
        "area_frac_range": list(area),
        "max_attempts": 300,
    }
    try:
        mask, _ = strokes_mask(width, height, stroke_seed, preset, area_frac=area, max_attempts=300)
    except InputError:  # the window was not reached: redrawn like any miss
        return np.zeros((height, width), bool), record
    return mask == 255, record


_DRAW = {"disc": _disc, "box": _box, "strokes": _strokes}


def mask_batch(
    n: int, height: int, width: int, seed: int
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """``n`` random inpainting masks and the record of each.

    Returns ``(masks, records)``: ``masks`` (n, height, width) bool, True = inpaint;
    ``records[k]`` is JSON-able: ``kind`` (one of ``MASK_KINDS``), ``area_frac`` (the
    drawn share of True pixels), ``tries`` (draws it took) and the parameters that redraw
    it: disc ``centre_x_px``, ``centre_y_px``, ``radius_px``; box ``box`` (x0, y0, x1,
    y1 fractions for ``rectangle_mask``); strokes ``preset``, ``seed``,
    ``area_frac_range`` and ``max_attempts`` for ``strokes_mask`` (its ``area_frac``).

    Distribution: each mask's family is uniform over ``MASK_KINDS``. Discs and boxes
    target an area uniform in ``MASK_AREA_RANGE`` (5-60 %; discs are clipped by the
    border, so their drawn areas lean lower), strokes land in a 10-point window whose
    lower end is uniform in 5-50 %. A draw whose area falls outside 5-60 % is redrawn
    (same family, fresh random numbers), so every mask's area is in ``MASK_AREA_RANGE``.
    All draws come from ``default_rng(seed)``. Sides must be >= ``MIN_MASK_SIDE_PX``."""
    n = check_int(n, "n", 0)
    height = check_int(height, "mask height", MIN_MASK_SIDE_PX)
    width = check_int(width, "mask width", MIN_MASK_SIDE_PX)
    rng = np.random.default_rng(seed)
    lo, hi = MASK_AREA_RANGE
    masks = np.zeros((n, height, width), bool)
    records: list[dict[str, Any]] = []
    for k in range(n):
        kind = MASK_KINDS[int(rng.integers(len(MASK_KINDS)))]
        tries = 0
        while True:
            if tries == MAX_MASK_TRIES:
                raise InputError(
                    f"random masks: no {kind} mask with {lo:.0%}-{hi:.0%} area in "
                    f"{MAX_MASK_TRIES} draws at {width}x{height} px"
                )
            tries += 1
            mask, params = _DRAW[kind](rng, height, width)
            share = float(mask.mean())
            if lo <= share <= hi:
                break
        masks[k] = mask
        records.append({"kind": kind, "area_frac": share, "tries": tries, **params})
    return masks, records


def random_masks(n: int, height: int, width: int, seed: int) -> np.ndarray:
    """(n, height, width) bool random inpainting masks, True = inpaint: ``mask_batch``
    without the records (discs, boxes and brush strokes, each 5-60 % of the crop)."""
    return mask_batch(n, height, width, seed)[0]
