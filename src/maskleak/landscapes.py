"""Procedural landscapes with a known answer to "which pixels are flat, which textured".

The study suspects that inpainting leaks differently into smooth areas (sky, water)
than into detailed ones (rock, grass). Real photographs give no ground truth for that
split, so these synthetic scenes carry a per-pixel region map alongside the picture.

Only integer-seeded PCG64 draws, +, -, *, / and scipy's box filter (itself only
additions) touch the pixels: no sin/exp, whose last-bit results can differ between
CPUs and so between runs of the same seed on different machines."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import ndimage

from maskleak.errors import InputError
from maskleak.schema import validate_spec

SKY = 0
WATER = 1
RIDGE = 2
GRASS = 3
REGION_NAMES: dict[int, str] = {SKY: "sky", WATER: "water", RIDGE: "ridge", GRASS: "grass"}
FLAT: frozenset[int] = frozenset({SKY, WATER})
TEXTURED: frozenset[int] = frozenset({RIDGE, GRASS})

#: Smallest side for which all four regions are guaranteed to be present; the schema's
#: minimum ``width`` and ``height`` of a procedural image (a test keeps them equal).
MIN_SIDE = 16


def _smoothstep(t: np.ndarray) -> np.ndarray:
    return t * t * (3.0 - 2.0 * t)


def _value_noise_1d(rng: np.random.Generator, n: int, cells: int) -> np.ndarray:
    """Smooth random curve in [0, 1] over ``n`` samples with ``cells`` random knots."""
    knots = rng.random(cells + 1)
    pos = np.arange(n, dtype=np.float64) * (cells / n)
    i = np.minimum(pos.astype(np.int64), cells - 1)
    t = _smoothstep(pos - i)
    return knots[i] * (1.0 - t) + knots[i + 1] * t


def _fractal_1d(rng: np.random.Generator, n: int, base_cells: int, octaves: int) -> np.ndarray:
    """Sum of octaves of 1-D value noise, normalised to roughly [-1, 1]."""
    total = np.zeros(n)
    amp, norm = 1.0, 0.0
    for o in range(octaves):
        total += amp * (_value_noise_1d(rng, n, base_cells * 2**o) - 0.5)
        norm += amp * 0.5
        amp *= 0.5
    return total / norm


def _value_noise_2d(
    rng: np.random.Generator, h: int, w: int, cy: int, cx: int, row0: int = 0
) -> np.ndarray:
    """Rows ``row0:h`` of a smooth (h, w) random field in [0, 1] on a ``cy`` x ``cx``
    grid of random knots (rows above ``row0`` are never needed, so never computed).

    Interpolated separably (first along x on the small knot grid, then along y by
    gathering whole rows), which is several times cheaper than a 4-corner gather."""
    knots = rng.random((cy + 1, cx + 1), dtype=np.float32)
    px = np.arange(w, dtype=np.float32) * np.float32(cx / w)
    ix = np.minimum(px.astype(np.int64), cx - 1)
    tx = _smoothstep(px - ix)
    along_x = knots[:, ix] + (knots[:, ix + 1] - knots[:, ix]) * tx  # (cy + 1, w)
    py = np.arange(row0, h, dtype=np.float32) * np.float32(cy / h)
    iy = np.minimum(py.astype(np.int64), cy - 1)
    ty = _smoothstep(py - iy)[:, None]
    top = along_x[iy]
    out = along_x[iy + 1]
    out -= top
    out *= ty
    out += top
    return out


def _fractal_2d(
    rng: np.random.Generator,
    h: int,
    w: int,
    base_cells: int,
    octaves: int,
    gain: float = 0.55,
    row0: int = 0,
) -> np.ndarray:
    """Rows ``row0:h`` of fractal (fBm) value noise, roughly in [-1, 1]."""
    total = np.zeros((h - row0, w), dtype=np.float32)
    amp, norm = 1.0, 0.0
    for o in range(octaves):
        cy = max(1, min(h, base_cells * 2**o))
        cx = max(1, min(w, round(cy * w / h)))
        layer = _value_noise_2d(rng, h, w, cy, cx, row0)
        layer -= np.float32(0.5)
        layer *= np.float32(amp)
        total += layer
        norm += amp * 0.5
        amp *= gain
    total *= np.float32(1.0 / norm)
    return total


def _lerp_colour(
    a: tuple[float, float, float], b: tuple[float, float, float], t: np.ndarray
) -> np.ndarray:
    """Per-pixel blend of two RGB colours; adds a trailing colour axis to ``t``."""
    ca = np.asarray(a, dtype=np.float32)
    cb = np.asarray(b, dtype=np.float32)
    return ca + (cb - ca) * t[..., None]


def generate_landscape(seed: int, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded synthetic scene and its region map: ``(rgb uint8 HxWx3, regions uint8 HxW)``.

    Top to bottom: a smooth sky gradient, a far snowy range and near wooded hills (both
    ``RIDGE``; the ridge lines vary with the seed), a calm lake whose level varies with
    the seed, and a grassy bank. Sky and water are deliberately smooth (``FLAT``); rock,
    forest and grass carry detail down to single pixels (``TEXTURED``), so a metric can
    be split by a known flat/textured truth. The same (seed, width, height) gives the
    same arrays in any process. The arguments are checked as the schema checks a
    procedural image (integers, seed >= 0, sides of ``MIN_SIDE`` to 8192 px)."""
    spec = {"kind": "procedural", "seed": seed, "width": width, "height": height}
    validate_spec(spec, "image_source", "generate_landscape", prefix="")
    h, w = int(height), int(width)
    rng = np.random.default_rng(int(seed))
    f32 = np.float32

    # Layout as fractions of the height, drawn first so every seed moves them.
    water_level = rng.uniform(0.56, 0.70)
    shore_level = rng.uniform(water_level + 0.12, 0.88)
    back_base = rng.uniform(0.22, 0.36)
    front_base = rng.uniform(back_base + 0.10, water_level - 0.06)
    has_snow = rng.random() < 0.75

    # Ridge lines. The far range uses "ridged" noise (1 - |n|) for sharp peaks.
    ridged = 1.0 - np.abs(_fractal_1d(rng, w, 3, 7))
    back_line = back_base + 0.06 - 0.20 * ridged * ridged
    front_line = front_base + 0.06 * _fractal_1d(rng, w, 4, 6)
    shore_line = shore_level + 0.02 * _fractal_1d(rng, w, 6, 5)
    water_row = round(water_level * h)
    back_row = np.clip(np.round(back_line * h), 1, water_row - 2).astype(np.int64)
    front_row = np.clip(np.round(front_line * h), back_row + 1, water_row - 1).astype(np.int64)
    shore_row = np.clip(np.round(shore_line * h), water_row + 2, h - 2).astype(np.int64)

    rows = np.arange(h)[:, None]
    regions = np.full((h, w), SKY, dtype=np.uint8)
    regions[rows >= back_row[None, :]] = RIDGE
    regions[water_row:] = WATER
    regions[rows >= shore_row[None, :]] = GRASS

    # Everything below the highest peak is textured or water; noise above it is unused.
    r0 = int(back_row.min())
    coarse = _fractal_2d(rng, h, w, 3, 3, row0=r0)
    detail = _fractal_2d(rng, h, w, 12, 5, gain=0.7, row0=r0)
    grain = rng.standard_normal((h - r0, w), dtype=f32)
    ys = (np.arange(h, dtype=f32) + f32(0.5)) / f32(h)

    out = np.empty((h, w, 3), dtype=f32)

    # Sky: depends on the row only; deep blue overhead to pale haze at the horizon.
    sky_top = (rng.uniform(35, 70), rng.uniform(85, 120), rng.uniform(165, 210))
    sky_low = (rng.uniform(190, 220), rng.uniform(205, 228), rng.uniform(222, 245))
    sky_t = np.clip(ys / f32(water_level), 0, 1)
    sky_t = sky_t * (f32(0.35) + f32(0.65) * sky_t)
    out[:] = _lerp_colour(sky_top, sky_low, sky_t)[:, None, :]

    # Mountains: light/shadow from the slope of a coarse field, plus fine detail.
    band = slice(r0, water_row)
    nb = water_row - r0
    y_band = ys[band][:, None]
    d_band = detail[:nb]
    slope = np.zeros((nb, w), dtype=f32)
    slope[:, 1:] = np.diff(coarse[:nb], axis=1)
    slope *= f32(w * 0.05)
    np.clip(slope, -1, 1, out=slope)
    # Faces climbing towards a peak from the left catch the light, the others are in
    # shade; the effect fades with distance below the ridge line.
    smooth_line = ndimage.uniform_filter1d(back_line, size=max(3, w // 40) | 1, mode="nearest")
    facing = np.zeros(w, dtype=f32)
    facing[1:] = np.clip(-np.diff(smooth_line) * (w * 3.0), -1, 1)
    # Look the light up at a noise-displaced column so the lit/shaded boundary wanders
    # down the face instead of running straight down the image.
    cols = np.arange(w)[None, :] + (d_band * f32(w * 0.06)).astype(np.int64)
    np.clip(cols, 0, w - 1, out=cols)
    fade = np.clip(1 - (y_band - back_line.astype(f32)[None, :]) / f32(0.35), 0, 1)
    rock_t = facing[cols]
    rock_t *= fade
    rock_t *= f32(0.3)
    rock_t += 0.45 + 0.35 * d_band + 0.2 * slope
    np.clip(rock_t, 0, 1, out=rock_t)
    # One colour ramp per kind of ground (far rock, snow, near forest), picked per pixel
    # from a small palette so every pixel's colour is computed once.
    kind = np.zeros((nb, w), dtype=np.intp)  # 0: far rock
    if has_snow:
        snow_line = float(back_line.min()) + rng.uniform(0.04, 0.08)
        kind[y_band < f32(snow_line) + f32(0.05) * d_band] = 1
    is_near = rows[band] >= front_row[None, :]
    kind[is_near] = 2
    front_frac = (front_row.astype(f32) / f32(h))[None, :]
    depth = np.clip((y_band - front_frac) / f32(water_level - front_base), 0, 1)
    near_t = np.clip(0.55 + 0.45 * d_band + 0.25 * slope - 0.35 * depth, 0, 1)
    np.copyto(rock_t, near_t, where=is_near)
    dark = np.array([(88, 98, 125), (200, 208, 222), (22, 40, 24)], dtype=f32)
    light = np.array([(165, 172, 190), (245, 247, 252), (95, 110, 70)], dtype=f32)
    grain_amp = np.array([9, 5, 14], dtype=f32)
    rock = (light - dark)[kind]
    rock *= rock_t[..., None]
    rock += dark[kind]
    rock += (grain_amp[kind] * grain[:nb])[..., None]
    np.copyto(out[band], rock, where=(regions[band] == RIDGE)[..., None])

    # Water: a tint that darkens towards the shore, with a soft-edged reflection of the
    # mountains' silhouette (blurred by construction, so the lake stays smooth).
    w1 = int(shore_row.max())
    nw = w1 - water_row
    soft = f32(max(2.0, h / 30))
    peak = ndimage.uniform_filter1d(
        (water_row - back_row).astype(f32), size=max(3, w // 30) | 1, mode="nearest"
    )
    below_line = np.arange(nw, dtype=f32)[:, None]
    mirror = np.clip((f32(0.6) * peak[None, :] - below_line) / soft + f32(0.5), 0, 1)
    water_t = np.clip((ys[water_row:w1] - f32(water_level)) / f32(shore_level - water_level), 0, 1)
    tint = _lerp_colour(
        (sky_low[0] * 0.72, sky_low[1] * 0.80, sky_low[2] * 0.86), (55, 82, 100), water_t
    )[:, None, :]
    reflected = np.array([-30, -26, -18], dtype=f32)  # mountains are darker than sky
    water = tint + reflected * mirror[..., None]
    np.copyto(out[water_row:w1], water, where=(regions[water_row:w1] == WATER)[..., None])

    # Grass: blotches, short vertical blade streaks and per-pixel noise.
    g0 = int(shore_row.min())
    gband = slice(g0, h)
    gg = grain[g0 - r0 :]
    blades = gg.copy()
    blades[1:] += gg[:-1]
    blades[2:] += gg[:-2]
    depth_g = np.clip((ys[gband] - f32(shore_level)) / f32(1 - shore_level), 0, 1)[:, None]
    grass_t = 0.35 * coarse[g0 - r0 :] + 0.2 * detail[g0 - r0 :]
    grass_t += 0.12 * blades
    grass_t += 0.45 + 0.25 * depth_g
    np.clip(grass_t, 0, 1, out=grass_t)
    lawn = _lerp_colour((125, 155, 60), (30, 80, 22), grass_t)
    lawn += f32(8) * gg[..., None]
    np.copyto(out[gband], lawn, where=(regions[gband] == GRASS)[..., None])

    np.clip(out, 0, 255, out=out)
    np.rint(out, out=out)
    return out.astype(np.uint8), regions


def write_region_map(
    spec: Mapping[str, Any], image_path: str | os.PathLike[str], dest: str | os.PathLike[str]
) -> None:
    """The ground-truth region labels of a procedural image, at the size of its
    downsampled version ``image_path`` (nearest-neighbour, so labels stay labels)."""
    from PIL import Image

    from maskleak.provenance import save_png

    if spec.get("kind") != "procedural":
        raise InputError(f"region maps exist only for procedural images, not {spec.get('kind')!r}")
    _, regions = generate_landscape(spec["seed"], spec["width"], spec["height"])
    with Image.open(image_path) as img:
        size = img.size
    labels = Image.fromarray(regions).resize(size, Image.Resampling.NEAREST)
    record = {
        "stage": "regions",
        "source": dict(spec),
        "size": list(size),
        "codes": {str(code): name for code, name in REGION_NAMES.items()},
        "flat": sorted(FLAT),
        "textured": sorted(TEXTURED),
    }
    save_png(labels, dest, record)
