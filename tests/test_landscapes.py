from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
from scipy import ndimage

from maskleak.errors import InputError
from maskleak.landscapes import (
    FLAT,
    GRASS,
    MIN_SIDE,
    REGION_NAMES,
    RIDGE,
    SKY,
    TEXTURED,
    WATER,
    generate_landscape,
)
from maskleak.provenance import pixel_sha256


def test_region_constants():
    assert (SKY, WATER, RIDGE, GRASS) == (0, 1, 2, 3)
    assert set(REGION_NAMES) == {SKY, WATER, RIDGE, GRASS}
    assert {SKY, WATER} == FLAT
    assert {RIDGE, GRASS} == TEXTURED
    assert not FLAT & TEXTURED


def test_shapes_dtypes_and_all_regions_present():
    rgb, regions = generate_landscape(3, 640, 480)
    assert rgb.shape == (480, 640, 3) and rgb.dtype == np.uint8
    assert regions.shape == (480, 640) and regions.dtype == np.uint8
    assert set(np.unique(regions)) == {SKY, WATER, RIDGE, GRASS}


@pytest.mark.parametrize("size", [(MIN_SIDE, MIN_SIDE), (17, 300), (300, 17), (1000, 40)])
def test_all_regions_present_even_when_small(size):
    for seed in range(10):
        _, regions = generate_landscape(seed, *size)
        assert set(np.unique(regions)) == {SKY, WATER, RIDGE, GRASS}, (seed, size)


def test_layout_top_to_bottom():
    _, regions = generate_landscape(5, 320, 240)
    assert (regions[0] == SKY).all()
    assert (regions[-1] == GRASS).all()
    # every column reads sky, then ridge, then water, then grass, never going back
    assert (np.diff(_rank(regions), axis=0) >= 0).all()


def _rank(regions: np.ndarray) -> np.ndarray:
    order = np.zeros(4, dtype=np.int8)
    order[[SKY, RIDGE, WATER, GRASS]] = [0, 1, 2, 3]
    return order[regions]


def test_deterministic_for_same_seed_and_different_for_other_seeds():
    a_rgb, a_reg = generate_landscape(11, 200, 150)
    b_rgb, b_reg = generate_landscape(11, 200, 150)
    assert np.array_equal(a_rgb, b_rgb) and np.array_equal(a_reg, b_reg)
    c_rgb, c_reg = generate_landscape(12, 200, 150)
    assert not np.array_equal(a_rgb, c_rgb)
    assert not np.array_equal(a_reg, c_reg)


def test_deterministic_across_processes():
    code = (
        "from maskleak.landscapes import generate_landscape;"
        "from maskleak.provenance import pixel_sha256;"
        "rgb, reg = generate_landscape(7, 160, 120);"
        "print(pixel_sha256(rgb), pixel_sha256(reg))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rgb, reg = generate_landscape(7, 160, 120)
    assert out.stdout.split() == [pixel_sha256(rgb), pixel_sha256(reg)]


def test_water_level_and_ridge_line_vary_with_seed():
    water_rows, ridge_tops = set(), set()
    for seed in range(8):
        _, regions = generate_landscape(seed, 200, 200)
        water_rows.add(int(np.argmax((regions == WATER).any(axis=1))))
        ridge_tops.add(tuple(np.argmax(regions == RIDGE, axis=0)[::20]))
    assert len(water_rows) >= 5
    assert len(ridge_tops) == 8


def _interior(regions: np.ndarray, code: int) -> np.ndarray:
    """Pixels of ``code`` at least 3 px from any other region (edges are not texture)."""
    return ndimage.binary_erosion(regions == code, iterations=3)


def test_flat_regions_are_much_smoother_than_textured():
    for seed in (0, 1, 2):
        rgb, regions = generate_landscape(seed, 512, 384)
        gray = rgb.astype(np.float64).mean(axis=2)
        lap = np.abs(ndimage.laplace(gray))
        level = {code: lap[_interior(regions, code)].mean() for code in REGION_NAMES}
        assert all(_interior(regions, code).sum() > 500 for code in REGION_NAMES)
        worst_flat = max(level[c] for c in FLAT)
        least_textured = min(level[c] for c in TEXTURED)
        assert worst_flat < 1.5, level
        assert least_textured > 20 * worst_flat, level


def test_not_a_flat_or_uniform_picture():
    rgb, regions = generate_landscape(4, 320, 240)
    means = {code: rgb[regions == code].astype(float).mean(axis=0) for code in REGION_NAMES}
    # sky bluish, grass greenish: the regions are told apart by colour too
    assert means[SKY][2] > means[SKY][0] + 40
    assert means[GRASS][1] > means[GRASS][2] + 40
    assert rgb.std() > 30


@pytest.mark.parametrize(
    ("args", "key"),
    [
        ((-1, 64, 64), "seed"),
        ((1.5, 64, 64), "seed"),
        ((True, 64, 64), "seed"),
        ((1, MIN_SIDE - 1, 64), "width"),
        ((1, 64, 8), "height"),
        ((1, 64.0, 64), "width"),
    ],
)
def test_rejects_bad_arguments(args, key):
    with pytest.raises(InputError, match=rf"^generate_landscape\.{key}: "):
        generate_landscape(*args)


def test_arguments_are_checked_by_the_schema():
    """One source of truth: the generator's smallest side is the schema's minimum for
    procedural images, and its argument errors are the schema's messages."""
    from maskleak.schema import load_schema

    branches = load_schema()["definitions"]["image_source"]["oneOf"]
    procedural = next(b for b in branches if b["properties"]["kind"]["const"] == "procedural")
    for side in ("width", "height"):
        assert procedural["properties"][side]["minimum"] == MIN_SIDE
    with pytest.raises(InputError, match=r"^generate_landscape\.width: must be >= 16, got 15$"):
        generate_landscape(0, 15, 64)
    generate_landscape(np.int64(1), np.int64(MIN_SIDE), MIN_SIDE)  # numpy integers are fine


def test_fast_enough():
    generate_landscape(0, 1024, 768)  # warm-up
    best = min(_timed(seed) for seed in (1, 2, 3))
    assert best < 0.5  # budget 0.2 s; generous margin for loaded CI machines


def _timed(seed: int) -> float:
    start = time.perf_counter()
    generate_landscape(seed, 1024, 768)
    return time.perf_counter() - start


def test_write_region_map_matches_downsampled_size(tmp_path):
    from PIL import Image

    from maskleak.landscapes import write_region_map
    from maskleak.provenance import read_png_record

    spec = {"kind": "procedural", "seed": 4, "width": 160, "height": 96}
    small = tmp_path / "small.png"
    Image.new("RGB", (64, 32)).save(small)
    dest = tmp_path / "regions.png"
    write_region_map(spec, small, dest)
    labels = np.asarray(Image.open(dest))
    assert labels.shape == (32, 64)
    _, full = generate_landscape(4, 160, 96)
    expected = np.asarray(Image.fromarray(full).resize((64, 32), Image.Resampling.NEAREST))
    assert (labels == expected).all()
    assert set(np.unique(labels)) <= {0, 1, 2, 3}
    assert read_png_record(dest)["flat"] == [0, 1]
    with pytest.raises(InputError, match="procedural"):
        write_region_map({"kind": "skimage", "name": "astronaut"}, small, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
