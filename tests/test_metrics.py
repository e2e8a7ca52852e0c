"""Tests for maskleak.metrics. Every expected value is worked out by hand in a comment."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from maskleak.errors import InputError
from maskleak.metrics import COLUMNS, metrics_table, pair_metrics, write_metrics
from maskleak.provenance import read_parquet_record

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "metrics.columns.yaml"
OUTSIDE_KEYS = (
    "mse_outside",
    "mse_outside_thesis",
    "psnr_outside",
    "mae_outside",
    "max_abs_outside",
    "frac_changed_outside",
    "mse_whitedisc_thesis",
    "mse_outside_band",
    "mse_outside_far",
)
CONTENT_KEYS = {"n_outside_flat", "n_outside_textured", "mse_outside_flat", "mse_outside_textured"}
FLOOR_KEYS = {"mse_outside_vae", "mse_outside_band_vae", "mse_outside_far_vae"}
ALL_KEYS = (
    CONTENT_KEYS
    | FLOOR_KEYS
    | set(OUTSIDE_KEYS)
    | {"n_outside", "n_inside", "n_outside_band", "mse_inside"}
)


def block_mask() -> np.ndarray:
    """4x4, inpaint = rows 2-3 x cols 2-3 (4 pixels); outside = the other 12."""
    inpaint = np.zeros((4, 4), dtype=bool)
    inpaint[2:, 2:] = True
    return inpaint


def gray(value: int = 100, h: int = 4, w: int = 4) -> np.ndarray:
    return np.full((h, w, 3), value, dtype=np.uint8)


def constructed_pair() -> tuple[np.ndarray, np.ndarray]:
    """Original all 100. Inpainted differs (a - b) at:
    (0,0) ch0 +16, (0,1) ch1 +20, (1,1) ch2 -1, (2,1) ch0 -3  -- all outside,
    (2,2) all channels +100 (b = 0)                             -- inside."""
    a = gray()
    b = a.copy()
    b[0, 0, 0] = 84
    b[0, 1, 1] = 80
    b[1, 1, 2] = 101
    b[2, 1, 0] = 103
    b[2, 2, :] = 0
    return a, b


def test_pair_metrics_hand_computed_every_key() -> None:
    a, b = constructed_pair()
    m = pair_metrics(a, b, block_mask(), band_px=1)
    assert set(m) == ALL_KEYS
    assert m["n_outside"] == 12 and isinstance(m["n_outside"], int)
    assert m["n_inside"] == 4 and isinstance(m["n_inside"], int)
    # True squares: 16^2 + 20^2 + 1^2 + 3^2 = 256 + 400 + 1 + 9 = 666 over 12 px * 3 = 36.
    assert m["mse_outside"] == pytest.approx(666 / 36)  # 18.5
    # Thesis (uint8, wraps): 16 -> 256 mod 256 = 0; 20 -> 400 mod 256 = 144;
    # -1 -> 255, 255^2 = 65025 = 254*256 + 1 -> 1; -3 -> 253, 253^2 = 64009 = 250*256 + 9 -> 9.
    assert m["mse_outside_thesis"] == pytest.approx((0 + 144 + 1 + 9) / 36)
    # 65025 / 18.5 = 3514.86; log10(3500) = 3.54407, log10(3514.86 / 3500) = 0.00184.
    assert m["psnr_outside"] == pytest.approx(10 * math.log10(255**2 / 18.5))
    assert m["psnr_outside"] == pytest.approx(35.459, abs=1e-3)
    # |16| + |20| + |-1| + |-3| = 40 over 36 elements; max 20.
    assert m["mae_outside"] == pytest.approx(40 / 36)
    assert m["max_abs_outside"] == 20.0
    # 4 of the 12 outside pixels have some channel changed.
    assert m["frac_changed_outside"] == pytest.approx(4 / 12)
    # Inside: pixel (2,2) differs by 100 in 3 channels: 3 * 10000 over 4 px * 3 = 12.
    assert m["mse_inside"] == pytest.approx(30000 / 12)  # 2500
    # White disc: needs the disc's radius (the study divided by w*h - pi*r^2); none given.
    assert math.isnan(m["mse_whitedisc_thesis"])
    # band_px = 1: outside pixels at distance 1 from the block are (1,2), (1,3), (2,1),
    # (3,1); (1,1) is at sqrt(2) > 1 and so "far". Band holds only the -3 at (2,1).
    assert m["n_outside_band"] == 4
    assert m["mse_outside_band"] == pytest.approx(9 / (4 * 3))  # 0.75
    # Far: 8 pixels holding 16, 20, -1: (256 + 400 + 1) / 24.
    assert m["mse_outside_far"] == pytest.approx(657 / 24)
    # No VAE round trip given: its floor is unknown.
    for key in FLOOR_KEYS:
        assert math.isnan(m[key]), key


def roundtrip_of_gray() -> np.ndarray:
    """A VAE round trip of gray(100): (0,0) +3 in every channel (far at band 1), (2,1)
    ch2 -5 (in the band at band 1), (3,3) +10 in every channel (inside the block)."""
    roundtrip = gray()
    roundtrip[0, 0, :] = 97
    roundtrip[2, 1, 2] = 105
    roundtrip[3, 3, :] = 90
    return roundtrip


def test_vae_floor_hand_computed() -> None:
    a, b = constructed_pair()
    m = pair_metrics(a, b, block_mask(), band_px=1, vae_roundtrip=roundtrip_of_gray())
    # Outside (12 px, 36 elements): 3 x 3^2 at (0,0) and 5^2 at (2,1): (27 + 25) / 36;
    # the inside pixel (3,3) does not count.
    assert m["mse_outside_vae"] == 52 / 36
    # Band at 1 px: (1,2), (1,3), (2,1), (3,1) (12 elements) hold the 25.
    assert m["mse_outside_band_vae"] == 25 / 12
    # Far: the other 8 px (24 elements) hold the 27.
    assert m["mse_outside_far_vae"] == 27 / 24
    # The inpainting's own metrics do not depend on the round trip.
    without = pair_metrics(a, b, block_mask(), band_px=1)
    for key in ALL_KEYS - FLOOR_KEYS:
        assert m[key] == without[key] or math.isnan(m[key]) and math.isnan(without[key]), key
    # The floor of the original itself is 0; of the inpainting itself, its own MSEs.
    zero = pair_metrics(a, b, block_mask(), band_px=1, vae_roundtrip=a)
    assert [zero[k] for k in sorted(FLOOR_KEYS)] == [0.0, 0.0, 0.0]
    same = pair_metrics(a, b, block_mask(), band_px=1, vae_roundtrip=b)
    assert same["mse_outside_vae"] == m["mse_outside"]
    assert same["mse_outside_band_vae"] == m["mse_outside_band"]
    assert same["mse_outside_far_vae"] == m["mse_outside_far"]
    with pytest.raises(InputError, match="VAE round trip"):
        pair_metrics(a, b, block_mask(), vae_roundtrip=gray(h=4, w=5))
    with pytest.raises(InputError, match="VAE round trip image must be a uint8"):
        pair_metrics(a, b, block_mask(), vae_roundtrip=a.astype(np.int16))


def test_whitedisc_thesis_divides_by_the_analytic_outside_count() -> None:
    a, b = constructed_pair()
    # Inside set to 255 in both -> zeros; whole-image wrapped mean 154 / (16 px * 3) =
    # 3.2083; the study then divided by 16 - pi * r^2, not by the 12 counted outside px.
    for radius_px, count in ((1, 16 - math.pi), (2, 16 - 4 * math.pi), (0, 16.0)):
        m = pair_metrics(a, b, block_mask(), band_px=1, radius_px=radius_px)
        assert m["mse_whitedisc_thesis"] == 154 / 48 / count
        assert m["mse_outside"] == pytest.approx(666 / 36)  # the rest does not change
    assert pair_metrics(a, b, block_mask(), radius_px=np.int64(1))["mse_whitedisc_thesis"] == (
        154 / 48 / (16 - math.pi)
    )
    # pi * 3^2 = 28.3 >= 16 px: no outside count; negative or non-integer radii.
    for bad in (3, -1, 1.0, True, "1"):
        with pytest.raises(InputError, match="radius_px"):
            pair_metrics(a, b, block_mask(), radius_px=bad)


def test_band_width_uses_euclidean_distance() -> None:
    a, b = constructed_pair()
    m = pair_metrics(a, b, block_mask(), band_px=2)
    # Distances to the block rows 2-3 x cols 2-3: (1,1) sqrt2; (0,2), (0,3), (2,0), (3,0)
    # exactly 2; (1,2), (1,3), (2,1), (3,1) 1 -> 9 band pixels. Far: (0,0) sqrt8,
    # (0,1) sqrt5, (1,0) sqrt5.
    assert m["n_outside_band"] == 9
    assert m["mse_outside_band"] == pytest.approx((9 + 1) / 27)  # -3 at (2,1), -1 at (1,1)
    assert m["mse_outside_far"] == pytest.approx((256 + 400) / 9)  # +16 and +20
    # Band/far split never changes the whole-outside number.
    assert m["mse_outside"] == pytest.approx(666 / 36)


def test_band_zero_puts_everything_far() -> None:
    a, b = constructed_pair()
    m = pair_metrics(a, b, block_mask(), band_px=0)
    assert m["n_outside_band"] == 0
    assert math.isnan(m["mse_outside_band"])
    assert m["mse_outside_far"] == pytest.approx(666 / 36)


def test_thesis_mse_wraps_where_true_mse_does_not() -> None:
    inpaint = np.zeros((1, 2), dtype=bool)
    a = np.full((1, 2, 3), 50, dtype=np.uint8)
    # Every element differs by exactly 16: true MSE 256, thesis 0 (256 mod 256).
    m = pair_metrics(a, a - 16, inpaint)
    assert m["mse_outside"] == 256.0
    assert m["mse_outside_thesis"] == 0.0
    # Every element differs by 20: true 400, thesis 400 - 256 = 144.
    m = pair_metrics(a, a - 20, inpaint)
    assert m["mse_outside"] == 400.0
    assert m["mse_outside_thesis"] == 144.0
    # Every element differs by -20 (b > a): uint8 gives 236, 236^2 = 55696 = 217*256 + 144.
    m = pair_metrics(a, a + 20, inpaint)
    assert m["mse_outside"] == 400.0
    assert m["mse_outside_thesis"] == 144.0
    assert m["mae_outside"] == 20.0 and m["max_abs_outside"] == 20.0


def test_extreme_difference_does_not_overflow() -> None:
    # 0 vs 255 everywhere: true MSE 255^2 = 65025, PSNR 10 log10(1) = 0 dB;
    # thesis: 0 - 255 wraps to 1, 1^2 = 1.
    a = np.zeros((3, 3, 3), dtype=np.uint8)
    b = np.full((3, 3, 3), 255, dtype=np.uint8)
    m = pair_metrics(a, b, np.zeros((3, 3), dtype=bool))
    assert m["mse_outside"] == 65025.0
    assert m["psnr_outside"] == pytest.approx(0.0, abs=1e-12)
    assert m["mse_outside_thesis"] == 1.0
    assert m["mae_outside"] == 255.0


def test_matches_thesis_expression_literally() -> None:
    # The column must be exactly the thesis script's expression on uint8 arrays.
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
    inpaint = np.zeros((9, 7), dtype=bool)
    inpaint[3:6, 2:5] = True
    m = pair_metrics(a, b, inpaint)
    assert m["mse_outside_thesis"] == np.mean((a[~inpaint] - b[~inpaint]) ** 2)
    true = np.mean((a[~inpaint].astype(float) - b[~inpaint].astype(float)) ** 2)
    assert m["mse_outside"] == pytest.approx(true, rel=1e-12)
    assert m["mse_outside"] != pytest.approx(m["mse_outside_thesis"])


def test_changes_inside_do_not_touch_outside_metrics() -> None:
    a, b = constructed_pair()
    before = pair_metrics(a, b, block_mask(), band_px=1, radius_px=1)
    b2 = b.copy()
    b2[2:, 2:, :] = 7  # scramble the whole inpainted block
    after = pair_metrics(a, b2, block_mask(), band_px=1, radius_px=1)
    for key in OUTSIDE_KEYS:
        assert after[key] == before[key], key
    # Inside: all 4 px x 3 ch now differ by 93: 93^2 = 8649.
    assert after["mse_inside"] == pytest.approx(8649.0)


def test_identical_images() -> None:
    a = gray(37)
    m = pair_metrics(a, a.copy(), block_mask(), band_px=1, radius_px=1, vae_roundtrip=a)
    assert m["psnr_outside"] == math.inf
    for key in (
        ALL_KEYS - CONTENT_KEYS - {"psnr_outside", "n_outside", "n_inside", "n_outside_band"}
    ):
        assert m[key] == 0.0, key
    assert (m["n_outside"], m["n_inside"], m["n_outside_band"]) == (12, 4, 4)


def test_default_band_covers_small_image() -> None:
    # Default band 8 covers the whole 4x4 outside (largest distance sqrt8 < 8): far empty.
    a, b = constructed_pair()
    m = pair_metrics(a, b, block_mask())
    assert m["n_outside_band"] == 12
    assert m["mse_outside_band"] == pytest.approx(666 / 36)
    assert math.isnan(m["mse_outside_far"])


def test_identical_images_far_set_present() -> None:
    # 1x20 strip, inpaint pixel 0: with band 8, pixels 1..8 are band, 9..19 far.
    a = np.full((1, 20, 3), 9, dtype=np.uint8)
    inpaint = np.zeros((1, 20), dtype=bool)
    inpaint[0, 0] = True
    m = pair_metrics(a, a.copy(), inpaint)
    assert (m["n_outside"], m["n_inside"], m["n_outside_band"]) == (19, 1, 8)
    assert m["psnr_outside"] == math.inf
    assert m["mse_outside_band"] == 0.0 and m["mse_outside_far"] == 0.0


def test_empty_outside_gives_nan_not_crash() -> None:
    a, b = constructed_pair()
    m = pair_metrics(a, b, np.ones((4, 4), dtype=bool), radius_px=1, vae_roundtrip=b)
    assert (m["n_outside"], m["n_inside"], m["n_outside_band"]) == (0, 16, 0)
    for key in (*OUTSIDE_KEYS, *FLOOR_KEYS):
        assert math.isnan(m[key]), key
    # Inside now holds every change: 666 (outside ones) + 30000 (block) over 48 elements.
    assert m["mse_inside"] == pytest.approx(30666 / 48)


def test_empty_inside() -> None:
    a, b = constructed_pair()
    m = pair_metrics(a, b, np.zeros((4, 4), dtype=bool), band_px=8)
    assert (m["n_outside"], m["n_inside"], m["n_outside_band"]) == (16, 0, 0)
    assert math.isnan(m["mse_inside"])
    # No edge -> no band; everything is far: 666 + 30000 over 48.
    assert math.isnan(m["mse_outside_band"])
    assert m["mse_outside_far"] == pytest.approx(30666 / 48)
    assert m["mse_outside"] == pytest.approx(30666 / 48)


def test_shape_and_dtype_errors() -> None:
    a = gray()
    with pytest.raises(InputError, match="sizes differ"):
        pair_metrics(a, gray(h=4, w=5), block_mask())
    with pytest.raises(InputError, match="inpaint region"):
        pair_metrics(a, a.copy(), np.zeros((4, 5), dtype=bool))
    with pytest.raises(InputError, match="uint8"):
        pair_metrics(a.astype(np.int16), a.astype(np.int16), block_mask())


# ------------------------------------------------------------------------- metrics_table


def save(arr: np.ndarray, path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def entry(experiment: str, radius: float, strength: float, seed: int, mask: str, out: str):
    return {
        "experiment": experiment,
        "radius_pct": radius,
        "strength": strength,
        "seed": seed,
        "steps_run": int(10 * strength),
        "mode": "denoise",
        "mask_path": mask,
        "inpainted_path": out,
        "key": "ab12",
    }


def write_manifest(path: str, model: str, entries: list[dict], roundtrip: str = "") -> str:
    """A manifest; ``roundtrip`` is its vae_roundtrip_path (none if empty: as written
    before the inpaint job saved the round trip)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    manifest = {
        "model": model,
        "image": "astro",
        "image_path": "results/images/astro.png",
        "steps": 10,
        "inpaintings": entries,
        "extra": "ignored",
    }
    if roundtrip:
        manifest["vae_roundtrip_path"] = roundtrip
    Path(path).write_text(json.dumps(manifest))
    return path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Original 4 wide x 4 high, all 100. Masks: r50 = block rows 2-3 x cols 2-3
    (4 px, area 0.25); r80 = rows 1-3 x cols 1-3 (9 px, area 0.5625). The tiny9
    manifest names a VAE round trip that differs from the original (a - b) at (0,0) by -3
    in every channel, (3,0) ch1 +4, (2,1) ch2 -5, (3,3) -10 in every channel; the alpha
    manifest names none."""
    monkeypatch.chdir(tmp_path)
    save(gray(), "results/images/astro.png")
    r50 = np.zeros((4, 4), dtype=np.uint8)
    r50[2:, 2:] = 255
    r80 = np.zeros((4, 4), dtype=np.uint8)
    r80[1:, 1:] = 255
    save(r50, "results/masks/astro/r50.png")
    save(r80, "results/masks/astro/r80.png")

    plus2 = gray()
    plus2[0, 0, :] = 98  # outside of r80: 3 elements differ by 2
    plus2[3, 3, :] = 0  # inside of both masks
    save(plus2, "results/inpainted/tiny9/astro/r80_s0.5_seed0.png")
    save(gray(), "results/inpainted/tiny9/astro/r80_s0.25_seed0.png")
    sixteen = gray()
    sixteen[0, 0, 0] = 116  # a - b = -16: true 256, thesis 0
    save(sixteen, "results/inpainted/tiny9/astro/r50_s0.1_seed1.png")
    save(plus2, "results/inpainted/alpha/astro/r80_s0.5_seed0.png")
    roundtrip = gray()
    roundtrip[0, 0, :] = 103
    roundtrip[3, 0, 1] = 96
    roundtrip[2, 1, 2] = 105
    roundtrip[3, 3, :] = 110
    save(roundtrip, "results/inpainted/tiny9/astro/vae_roundtrip.png")

    m1 = write_manifest(
        "results/inpainted/tiny9/astro/manifest.json",
        "tiny9",
        [  # deliberately not in output order
            entry(
                "strength_sweep",
                80,
                0.5,
                0,
                "results/masks/astro/r80.png",
                "results/inpainted/tiny9/astro/r80_s0.5_seed0.png",
            ),
            entry(
                "mask_size_sweep",
                50.0,
                0.1,
                1,
                "results/masks/astro/r50.png",
                "results/inpainted/tiny9/astro/r50_s0.1_seed1.png",
            ),
            entry(
                "strength_sweep",
                80,
                0.25,
                0,
                "results/masks/astro/r80.png",
                "results/inpainted/tiny9/astro/r80_s0.25_seed0.png",
            ),
        ],
        roundtrip="results/inpainted/tiny9/astro/vae_roundtrip.png",
    )
    m2 = write_manifest(
        "results/inpainted/alpha/astro/manifest.json",
        "alpha",
        [
            entry(
                "strength_sweep",
                80,
                0.5,
                0,
                "results/masks/astro/r80.png",
                "results/inpainted/alpha/astro/r80_s0.5_seed0.png",
            )
        ],
    )
    return [m1, m2]


def test_metrics_table_values_order_and_dtypes(project: list[str]) -> None:
    df = metrics_table(project, band_px=1)
    assert tuple(df.columns) == COLUMNS
    # Sorted: mask_size_sweep first; then strength_sweep alpha; then tiny9 0.25, 0.5.
    assert list(zip(df["experiment"], df["model"], df["strength"], strict=True)) == [
        ("mask_size_sweep", "tiny9", 0.1),
        ("strength_sweep", "alpha", 0.5),
        ("strength_sweep", "tiny9", 0.25),
        ("strength_sweep", "tiny9", 0.5),
    ]
    assert list(df["area_frac"]) == [0.25, 0.5625, 0.5625, 0.5625]
    assert list(df["radius_pct"]) == [50.0, 80.0, 80.0, 80.0]
    # r = floor(p/100 * 4 / 2): floor(1.0) = floor(1.6) = 1; the thesis' disc area is
    # pi * 1^2 whatever the (block) mask files hold.
    assert list(df["radius_px"]) == [1, 1, 1, 1]
    assert list(df["area_frac_thesis"]) == [math.pi / 16] * 4
    # Neither manifest has a "pipeline" key: made before the choice existed.
    assert list(df["pipeline"]) == ["diffusers"] * 4
    assert list(df["seed"]) == [1, 0, 0, 0]
    assert list(df["steps"]) == [10, 10, 10, 10]
    assert list(df["steps_run"]) == [1, 5, 2, 5]
    assert list(df["width"]) == [4] * 4 and list(df["height"]) == [4] * 4
    assert list(df["n_outside"]) == [12, 7, 7, 7]
    assert list(df["n_inside"]) == [4, 9, 9, 9]
    # r50 band 1: (1,2), (1,3), (2,1), (3,1). r80 (rows/cols 1-3) band 1: (0,1), (0,2),
    # (0,3), (1,0), (2,0), (3,0); (0,0) is at sqrt2 -> far.
    assert list(df["n_outside_band"]) == [4, 6, 6, 6]
    assert list(df["band_px"]) == [1] * 4

    r50 = df.iloc[0]
    # One element differs by 16 at (0,0): 256 / 36; thesis 0; far (distance sqrt8).
    assert r50["mse_outside"] == pytest.approx(256 / 36)
    assert r50["mse_outside_thesis"] == 0.0
    assert r50["mae_outside"] == pytest.approx(16 / 36)
    assert r50["max_abs_outside"] == 16.0
    assert r50["frac_changed_outside"] == pytest.approx(1 / 12)
    assert r50["mse_inside"] == 0.0
    assert r50["mse_whitedisc_thesis"] == 0.0
    assert r50["mse_outside_band"] == 0.0
    assert r50["mse_outside_far"] == pytest.approx(256 / 24)

    for i in (1, 3):  # the two "plus2" inpaintings with r80
        row = df.iloc[i]
        # (0,0) differs by 2 in 3 channels: 12 / (7 * 3) = 4/7; no wrap below 16.
        assert row["mse_outside"] == pytest.approx(4 / 7)
        assert row["mse_outside_thesis"] == pytest.approx(4 / 7)
        assert row["psnr_outside"] == pytest.approx(10 * math.log10(65025 * 7 / 4))
        assert row["mae_outside"] == pytest.approx(6 / 21)
        assert row["max_abs_outside"] == 2.0
        assert row["frac_changed_outside"] == pytest.approx(1 / 7)
        # Inside: (3,3) differs by 100 in 3 channels: 30000 / 27.
        assert row["mse_inside"] == pytest.approx(30000 / 27)
        # Whole image wrapped mean 12 / 48, then / (16 - pi * 1^2), not / 7 counted.
        assert row["mse_whitedisc_thesis"] == 12 / 48 / (16 - math.pi)
        assert row["mse_outside_band"] == 0.0
        assert row["mse_outside_far"] == pytest.approx(12 / 3)  # only (0,0) is far
    identical = df.iloc[2]
    assert identical["mse_outside"] == 0.0 and identical["psnr_outside"] == math.inf

    # The VAE floor of tiny9 (alpha's manifest names no round trip: NaN, path "").
    # r50, band 1 = (1,2), (1,3), (2,1), (3,1): outside 3 x 3^2 + 4^2 + 5^2 = 68 over 36
    # elements; band 25 over 12; far (0,0) and (3,0): 27 + 16 = 43 over 24.
    # r80 (outside (0,0..3), (1,0), (2,0), (3,0); far only (0,0); (2,1) is inside):
    # outside 27 + 16 over 21; band 16 over 18; far 27 over 3.
    floors = df[["mse_outside_vae", "mse_outside_band_vae", "mse_outside_far_vae"]]
    assert floors.iloc[0].tolist() == [68 / 36, 25 / 12, 43 / 24]
    assert floors.iloc[1].isna().all()
    assert floors.iloc[2].tolist() == floors.iloc[3].tolist() == [43 / 21, 16 / 18, 9.0]
    assert list(df["vae_roundtrip_path"]) == [
        "results/inpainted/tiny9/astro/vae_roundtrip.png",
        "",
        "results/inpainted/tiny9/astro/vae_roundtrip.png",
        "results/inpainted/tiny9/astro/vae_roundtrip.png",
    ]

    assert df.loc[0, "inpainted_path"] == "results/inpainted/tiny9/astro/r50_s0.1_seed1.png"
    assert df.loc[0, "mask_path"] == "results/masks/astro/r50.png"
    assert set(df["image_path"]) == {"results/images/astro.png"}
    assert set(df["image"]) == {"astro"} and set(df["mode"]) == {"denoise"}

    schema = yaml.safe_load(SCHEMA.read_text())["columns"]
    assert {c["name"]: str(df[c["name"]].dtype) for c in schema} == {
        c["name"]: c["dtype"] for c in schema
    }


def test_metrics_table_threads_give_same_result(project: list[str]) -> None:
    pd.testing.assert_frame_equal(
        metrics_table(project, band_px=1, threads=1), metrics_table(project, band_px=1, threads=3)
    )


def test_metrics_table_empty_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = write_manifest("m.json", "tiny9", [])
    df = metrics_table([path])
    assert tuple(df.columns) == COLUMNS and len(df) == 0
    assert str(df["n_outside"].dtype) == "int64" and str(df["mse_outside"].dtype) == "float64"


def test_missing_inpainting_names_file_and_rule(project: list[str]) -> None:
    missing = "results/inpainted/tiny9/astro/r80_s0.25_seed0.png"
    Path(missing).unlink()
    with pytest.raises(InputError, match="inpaint rule") as info:
        metrics_table(project, threads=2)
    assert missing in str(info.value)


def test_missing_vae_roundtrip_names_file_manifest_and_rule(project: list[str]) -> None:
    missing = "results/inpainted/tiny9/astro/vae_roundtrip.png"
    Path(missing).unlink()
    with pytest.raises(InputError) as info:
        metrics_table(project, threads=2)
    message = str(info.value)
    assert f"VAE round trip {missing} not found (listed in manifest {project[0]})" in message
    assert "--forcerun" in message and "\n" not in message


def test_vae_roundtrip_size_mismatch(project: list[str]) -> None:
    victim = "results/inpainted/tiny9/astro/vae_roundtrip.png"
    save(gray(h=4, w=5), victim)
    with pytest.raises(InputError, match="rerun the inpaint rule") as info:
        metrics_table(project)
    assert f"VAE round trip {victim} is 5x4 but image results/images/astro.png is 4x4" in str(
        info.value
    )


@pytest.mark.parametrize(
    "victim",
    [
        "results/inpainted/tiny9/astro/r50_s0.1_seed1.png",
        "results/inpainted/tiny9/astro/vae_roundtrip.png",
        "results/masks/astro/r80.png",
        "results/images/astro.png",
    ],
)
def test_corrupt_png_names_file(project: list[str], victim: str) -> None:
    data = Path(victim).read_bytes()
    Path(victim).write_bytes(data[: len(data) // 2])  # truncated mid-stream
    with pytest.raises(InputError, match="not a readable PNG") as info:
        metrics_table(project)
    assert victim in str(info.value)


def test_garbage_file_names_file(project: list[str]) -> None:
    victim = "results/inpainted/alpha/astro/r80_s0.5_seed0.png"
    Path(victim).write_bytes(b"this is not a png")
    with pytest.raises(InputError, match="not a readable PNG") as info:
        metrics_table(project)
    assert victim in str(info.value)


def test_inpainted_size_mismatch(project: list[str]) -> None:
    victim = "results/inpainted/tiny9/astro/r80_s0.5_seed0.png"
    save(gray(h=4, w=5), victim)
    with pytest.raises(InputError, match="5x4 but image") as info:
        metrics_table(project)
    assert victim in str(info.value)


def test_mask_size_mismatch(project: list[str]) -> None:
    victim = "results/masks/astro/r50.png"
    save(np.zeros((8, 4), dtype=np.uint8), victim)
    with pytest.raises(InputError, match="4x8 but image results/images/astro.png is 4x4") as info:
        metrics_table(project)
    assert victim in str(info.value)


@pytest.mark.parametrize(
    ("change", "label"),
    [
        (lambda m: m["inpaintings"][0].pop("strength"), "inpaintings[0].strength"),
        (lambda m: m["inpaintings"][1].update(seed="one"), "inpaintings[1].seed"),
        (lambda m: m["inpaintings"][2].update(radius_pct=True), "inpaintings[2].radius_pct"),
        (lambda m: m.pop("model"), "'model'"),
        (lambda m: m.update(pipeline=["study"]), "'pipeline'"),
        (lambda m: m.update(vae_roundtrip_path=None), "'vae_roundtrip_path'"),
        (lambda m: m["inpaintings"][0].update(radius_pct=0), "radius_pct"),
        (lambda m: m.update(inpaintings={"a": 1}), "'inpaintings'"),
    ],
)
def test_malformed_manifest_names_manifest_and_key(project: list[str], change, label) -> None:
    manifest = json.loads(Path(project[0]).read_text())
    change(manifest)
    Path(project[0]).write_text(json.dumps(manifest))
    with pytest.raises(InputError) as info:
        metrics_table(project)
    assert project[0] in str(info.value)
    assert label in str(info.value)


def test_pipeline_column_comes_from_the_manifest(project: list[str]) -> None:
    manifest = json.loads(Path(project[1]).read_text())
    manifest["pipeline"] = "study"  # the alpha model's manifest
    Path(project[1]).write_text(json.dumps(manifest))
    df = metrics_table(project, band_px=1)
    assert list(df.columns[:3]) == ["experiment", "model", "pipeline"]
    assert list(zip(df["model"], df["pipeline"], strict=True)) == [
        ("tiny9", "diffusers"),
        ("alpha", "study"),
        ("tiny9", "diffusers"),
        ("tiny9", "diffusers"),
    ]


def test_manifest_not_json(project: list[str]) -> None:
    Path(project[1]).write_text("{not json")
    with pytest.raises(InputError, match="not readable JSON") as info:
        metrics_table(project)
    assert project[1] in str(info.value)


def test_bad_arguments(project: list[str]) -> None:
    with pytest.raises(InputError, match="threads"):
        metrics_table(project, threads=0)
    with pytest.raises(InputError, match="band_px"):
        metrics_table(project, band_px=-1)


def test_write_metrics_parquet_matches_schema(project: list[str]) -> None:
    write_metrics(project, "results/metrics.parquet", band_px=2, threads=2)
    record = read_parquet_record("results/metrics.parquet")
    assert record is not None
    assert record["stage"] == "metrics"
    assert record["band_px"] == 2
    assert record["manifests"] == project
    assert "numpy" in record["versions"]

    df = pd.read_parquet("results/metrics.parquet")
    schema = yaml.safe_load(SCHEMA.read_text())
    names = [c["name"] for c in schema["columns"]]
    assert names == list(df.columns) == list(COLUMNS)
    assert len(set(names)) == len(names)
    for column in schema["columns"]:
        assert str(df[column["name"]].dtype) == column["dtype"], column["name"]
        assert column["definition"].strip(), column["name"]
        assert "unit" in column
    assert len(df) == 4
    assert list(df["band_px"]) == [2] * 4
    pd.testing.assert_frame_equal(df, metrics_table(project, band_px=2))


def test_flat_textured_split_hand_computed() -> None:
    """4x4, inpaint = the bottom-right 2x2 block. Top two rows are 'flat', bottom two rows
    'textured'. Outside flat = 8 px (rows 0-1), outside textured = 4 px (rows 2-3, cols 0-1).
    Differences: +3 on every flat pixel, +6 on every textured pixel (all channels)."""
    a = gray(100)
    b = a.copy()
    b[:2] += 3
    b[2:] += 6
    flat = np.zeros((4, 4), bool)
    flat[:2] = True
    m = pair_metrics(a, b, block_mask(), band_px=1, flat=flat, textured=~flat)
    assert (m["n_outside_flat"], m["n_outside_textured"]) == (8, 4)
    assert m["mse_outside_flat"] == 9.0  # 3^2
    assert m["mse_outside_textured"] == 36.0  # 6^2
    # Whole outside: (8 * 9 + 4 * 36) / 12 = 18.
    assert m["mse_outside"] == 18.0
    without = pair_metrics(a, b, block_mask(), band_px=1)
    assert (without["n_outside_flat"], without["n_outside_textured"]) == (0, 0)
    assert math.isnan(without["mse_outside_flat"]) and math.isnan(without["mse_outside_textured"])
    with pytest.raises(InputError, match="flat"):
        pair_metrics(a, b, block_mask(), flat=flat[:2], textured=~flat)
