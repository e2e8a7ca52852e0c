"""The fast metrics arithmetic against its plain definitions, bit for bit: the band
against scipy's distance transform, every pair metric against straightforward
float64/int64 expressions on boolean masks, the frame and row order against pandas."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from maskleak.masks import circle_mask, circle_radius_px, inpaint_region
from maskleak.metrics import COLUMNS, DTYPES, metrics_table, pair_metrics
from maskleak.metrics.bands import band_pixels
from maskleak.metrics.columns import (
    SORT_KEYS,
    TIE_BREAKERS,
    sort_frame,
    sort_rows,
    typed_frame,
)
from maskleak.metrics.regions import build_region


def edt_band(inpaint: np.ndarray, band_px: int) -> np.ndarray:
    outside = ~inpaint
    if not inpaint.any():
        return np.zeros_like(inpaint)
    return outside & (ndimage.distance_transform_edt(outside) <= band_px)


def test_band_equals_distance_transform_on_random_masks() -> None:
    rng = np.random.default_rng(11)
    for _ in range(400):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        density = rng.choice([0.0, 0.002, 0.02, 0.2, 0.7, 1.0])
        inpaint = rng.random((h, w)) < density
        band_px = int(rng.integers(0, 14))
        np.testing.assert_array_equal(band_pixels(inpaint, band_px), edt_band(inpaint, band_px))


@pytest.mark.parametrize(("width", "height"), [(96, 64), (192, 128), (97, 31), (640, 416)])
def test_band_equals_distance_transform_on_disc_masks(width: int, height: int) -> None:
    for pct in (1, 20, 44, 80, 100):
        inpaint = inpaint_region(np.asarray(circle_mask(width, height, pct)))
        for band_px in (0, 1, 2, 5, 8, 23):
            np.testing.assert_array_equal(
                band_pixels(inpaint, band_px),
                edt_band(inpaint, band_px),
                err_msg=f"{pct} {band_px}",
            )


def test_band_wider_than_the_image() -> None:
    inpaint = np.zeros((5, 7), dtype=bool)
    inpaint[0, 0] = True
    np.testing.assert_array_equal(band_pixels(inpaint, 8), ~inpaint)  # sqrt(4^2 + 6^2) < 8
    np.testing.assert_array_equal(band_pixels(inpaint, 10**9), ~inpaint)
    assert not band_pixels(np.zeros((5, 7), dtype=bool), 10**9).any()


def reference_metrics(
    a: np.ndarray,
    b: np.ndarray,
    inpaint: np.ndarray,
    band_px: int,
    flat: np.ndarray | None,
    textured: np.ndarray | None,
    radius_px: int | None = None,
    roundtrip: np.ndarray | None = None,
) -> dict[str, float | int]:
    """The definitions, written plainly (the pre-optimisation implementation's formulas;
    the white-disc number as the study's plot_diff_disc wrote it; the VAE floor as the
    same MSEs against ``roundtrip``)."""
    outside = ~inpaint
    diff = a.astype(np.int64) - b.astype(np.int64)
    square = (diff**2).sum(axis=2)
    band = edt_band(inpaint, band_px)
    far = outside & ~band

    def mean(where: np.ndarray, squares: np.ndarray = square) -> float:
        n = int(where.sum())
        return math.nan if n == 0 else float(squares[where].sum()) / (3 * n)

    floor = {key: math.nan for key in ("vae", "band_vae", "far_vae")}
    if roundtrip is not None:
        floor_square = ((a.astype(np.int64) - roundtrip.astype(np.int64)) ** 2).sum(axis=2)
        floor = {
            "vae": mean(outside, floor_square),
            "band_vae": mean(band, floor_square),
            "far_vae": mean(far, floor_square),
        }

    n_out = int(outside.sum())
    nan = math.nan
    out: dict[str, float | int] = {
        "n_outside": n_out,
        "n_inside": int(inpaint.sum()),
        "n_outside_band": int(band.sum()),
        "mse_outside": mean(outside),
        "mse_inside": mean(inpaint),
        "mse_outside_band": mean(band),
        "mse_outside_far": mean(far),
        "n_outside_flat": 0 if flat is None else int((outside & flat).sum()),
        "n_outside_textured": 0 if textured is None else int((outside & textured).sum()),
        "mse_outside_flat": nan if flat is None else mean(outside & flat),
        "mse_outside_textured": nan if textured is None else mean(outside & textured),
        **{f"mse_outside_{key}": value for key, value in floor.items()},
    }
    if n_out == 0:
        for key in ("thesis", "psnr", "mae", "max", "frac", "whitedisc"):
            out[key] = nan
    else:
        mse = out["mse_outside"]
        out["thesis"] = float(np.mean((a[outside] - b[outside]) ** 2))
        out["psnr"] = math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)
        out["mae"] = float(np.abs(diff)[outside].sum()) / (3 * n_out)
        out["max"] = float(np.abs(diff)[outside].max())
        out["frac"] = np.count_nonzero(square[outside]) / n_out
        disc = inpaint[..., None]
        white = (np.where(disc, np.uint8(255), a) - np.where(disc, np.uint8(255), b)) ** 2
        if radius_px is None:
            out["whitedisc"] = nan
        else:
            rad = np.floor(np.float64(radius_px))  # the study's radius: a floored float
            img_area = a.shape[0] * a.shape[1]
            out["whitedisc"] = float(np.mean(white) / (img_area - np.pi * rad**2))
    renames = {
        "thesis": "mse_outside_thesis",
        "psnr": "psnr_outside",
        "mae": "mae_outside",
        "max": "max_abs_outside",
        "frac": "frac_changed_outside",
        "whitedisc": "mse_whitedisc_thesis",
    }
    return {renames.get(k, k): v for k, v in out.items()}


def assert_bit_identical(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for key, value in want.items():
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(got[key]), key
        else:
            assert got[key] == value, (key, got[key], value)
            assert isinstance(got[key], int) == isinstance(value, int), key


def test_pair_metrics_bit_identical_to_definitions_on_random_pairs() -> None:
    rng = np.random.default_rng(5)
    for trial in range(300):
        h, w = (int(v) for v in rng.integers(1, 33, 2))
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        b = a.copy()
        changed = rng.random((h, w, 3)) < rng.choice([0.0, 0.01, 0.3, 1.0])
        b[changed] = rng.integers(0, 256, int(changed.sum()), dtype=np.uint8)
        if trial % 7 == 0:  # extremes: 0 against 255
            a[changed], b[changed] = 0, 255
        inpaint = rng.random((h, w)) < rng.choice([0.0, 0.1, 0.5, 1.0])
        band_px = int(rng.integers(0, 9))
        flat = textured = None
        if trial % 2:  # overlapping on purpose: the arrays need not partition anything
            flat, textured = rng.random((h, w)) < 0.5, rng.random((h, w)) < 0.5
        # Any radius whose pi r^2 (<= pi/4 w h) leaves an outside count; sometimes none.
        radius = None if trial % 5 == 0 else int(rng.integers(0, math.isqrt(w * h // 4) + 1))
        roundtrip = None
        if trial % 3:  # a round trip near the original, or (every 4th) anything
            noise = rng.integers(-8, 9, a.shape) if trial % 4 else rng.integers(-255, 256, a.shape)
            roundtrip = np.clip(a.astype(np.int16) + noise, 0, 255).astype(np.uint8)
        got = pair_metrics(a, b, inpaint, band_px, flat, textured, radius, roundtrip)
        want = reference_metrics(a, b, inpaint, band_px, flat, textured, radius, roundtrip)
        assert_bit_identical(got, want)


def test_pair_metrics_bit_identical_on_photo_sized_disc() -> None:
    rng = np.random.default_rng(8)
    a = rng.integers(0, 256, (416, 640, 3), dtype=np.uint8)
    b = np.clip(a.astype(np.int16) + rng.integers(-40, 41, a.shape), 0, 255).astype(np.uint8)
    inpaint = inpaint_region(np.asarray(circle_mask(640, 416, 44)))
    flat = np.zeros((416, 640), dtype=bool)
    flat[:150] = True
    radius = circle_radius_px(640, 416, 44)
    roundtrip = np.clip(a.astype(np.int16) + rng.integers(-9, 10, a.shape), 0, 255)
    roundtrip = roundtrip.astype(np.uint8)
    got = pair_metrics(a, b, inpaint, 8, flat, ~flat, radius, roundtrip)
    want = reference_metrics(a, b, inpaint, 8, flat, ~flat, radius, roundtrip)
    assert_bit_identical(got, want)


def test_rows_wider_than_uint32_sums_allow() -> None:
    # 3 * 22100 * 255^2 > 2^32: one row's sum of squares needs 64 bits.
    width = 22_100
    a = np.zeros((2, width, 3), dtype=np.uint8)
    b = np.full_like(a, 255)
    inpaint = np.zeros((2, width), dtype=bool)
    inpaint[:, :3] = True
    assert build_region(inpaint, 1).run_dtype is np.uint64
    got = pair_metrics(a, b, inpaint, 1, vae_roundtrip=b)
    assert got["mse_outside"] == 65025.0 and got["mse_inside"] == 65025.0
    assert got["mse_outside_vae"] == 65025.0
    assert_bit_identical(got, reference_metrics(a, b, inpaint, 1, None, None, roundtrip=b))


def test_images_larger_than_uint32_sums_allow() -> None:
    # 3 * 2400^2 * 255 > 2^32: the sums of |a - b| and of the wrapped squares need 64 bits.
    a = np.zeros((2400, 2400, 3), dtype=np.uint8)
    b = np.full_like(a, 255)
    b[0, 0] = 0
    inpaint = np.zeros((2400, 2400), dtype=bool)
    inpaint[-1, -1] = True
    assert build_region(inpaint, 0).sum_dtype is np.uint64
    got = pair_metrics(a, b, inpaint, 0)
    n_out = 2400 * 2400 - 1
    assert got["mae_outside"] == 255 * 3 * (n_out - 1) / (3 * n_out)
    assert got["mse_outside_thesis"] == (3 * (n_out - 1)) / (3 * n_out)  # 255^2 mod 256 = 1
    assert got["frac_changed_outside"] == (n_out - 1) / n_out


def _rows(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    words = ["alpha", "Beta", "beta", "Ärger", "zeta", "é", "a b", ""]
    rows = []
    for _ in range(n):
        row = {}
        for name, dtype in DTYPES.items():
            if dtype == "str":
                row[name] = str(rng.choice(words[:3] if name in SORT_KEYS else words))
            elif dtype == "int64":
                row[name] = int(rng.integers(-2, 3))
            elif dtype == "bool":
                row[name] = bool(rng.integers(0, 2))
            else:
                row[name] = float(rng.choice([0.0, -0.0, 0.5, 1.0, math.nan, math.inf, 0.1]))
        rows.append(row)
    return rows


@pytest.mark.parametrize("n", [0, 1, 40, 500])
def test_typed_frame_and_row_order_match_pandas(n: int) -> None:
    rows = _rows(n, seed=n)
    frame = typed_frame(rows)
    expected = pd.DataFrame(rows, columns=list(COLUMNS)).astype(DTYPES)
    pd.testing.assert_frame_equal(frame, expected, check_exact=True)

    keys = list(SORT_KEYS + TIE_BREAKERS)
    by_pandas = expected.sort_values(keys, kind="mergesort").reset_index(drop=True)
    pd.testing.assert_frame_equal(sort_frame(frame), by_pandas, check_exact=True)
    pd.testing.assert_frame_equal(typed_frame(sort_rows(rows)), by_pandas, check_exact=True)


def _study_mask(width: int, height: int, pct: float) -> tuple[np.ndarray, np.float64]:
    """The study's create_mask (inpainting_strength_testing_utils.py), written out: its
    floored float radius and the PIL disc it drew."""
    rad = np.floor(pct / 100 * min(width, height) / 2)
    mask = Image.new("L", (width, height), 0)
    box = (width / 2 - rad, height / 2 - rad, width / 2 + rad, height / 2 + rad)
    ImageDraw.Draw(mask).ellipse(box, fill=255)
    return np.array(mask), rad


@pytest.mark.parametrize(("width", "height"), [(640, 416), (97, 64)])
def test_whitedisc_and_area_are_the_studys_numbers_exactly(
    width: int, height: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """metrics_table on real PNGs against the study's plot_diff_disc arithmetic: both
    images with the disc painted white (add_white_mask_to_image), np.mean of the uint8
    squared difference over the whole image, divided by img_area - np.pi * rad ** 2; x
    = np.pi * rad ** 2 / img_area."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(width)
    original = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(original).save("original.png")
    radii = [20.0, 31.02, 44.49, 80.0]  # values of the study's np.round(linspace(20, 80, 50), 2)
    entries, want = [], []
    for k, pct in enumerate(radii):
        study_mask, rad = _study_mask(width, height, pct)
        Image.fromarray(study_mask).save(f"mask{k}.png")
        noise = rng.integers(-40, 41, original.shape)
        inpainted = np.clip(original.astype(np.int16) + noise, 0, 255).astype(np.uint8)
        Image.fromarray(inpainted).save(f"inpainted{k}.png")
        entries.append(
            {
                "experiment": "mask_size_sweep",
                "radius_pct": pct,
                "strength": 0.5,
                "seed": 0,
                "steps_run": 1,
                "mode": "denoise",
                "mask_path": f"mask{k}.png",
                "inpainted_path": f"inpainted{k}.png",
            }
        )

        def white(img: np.ndarray, mask: np.ndarray = study_mask) -> np.ndarray:
            return np.where(np.repeat(mask[..., None], 3, axis=-1) == 255, 255, img)

        w_inpainted = np.array(Image.fromarray(white(inpainted).astype(np.uint8)))
        w_original = np.array(Image.fromarray(white(original).astype(np.uint8)))
        img_area = width * height
        disc_area = np.pi * rad**2
        mse_div_npixels = np.mean((w_inpainted - w_original) ** 2) / (img_area - disc_area)
        counted = np.mean((w_inpainted - w_original) ** 2) / int((study_mask == 0).sum())
        want.append((int(rad), float(disc_area / img_area), float(mse_div_npixels), counted))
    manifest = {
        "model": "m",
        "pipeline": "study",
        "image": "img",
        "image_path": "original.png",
        "steps": 2,
        "inpaintings": entries,
    }
    Path("manifest.json").write_text(json.dumps(manifest))
    df = metrics_table(["manifest.json"])
    assert list(df["radius_pct"]) == radii and set(df["pipeline"]) == {"study"}
    got = zip(df["radius_px"], df["area_frac_thesis"], df["mse_whitedisc_thesis"], strict=True)
    for (r, x, y), (want_r, want_x, want_y, counted) in zip(got, want, strict=True):
        assert (r, x, y) == (want_r, want_x, want_y)
        # The drawn disc has more pixels than pi r^2, so fewer are counted outside and
        # the counted version is larger: 0.05-0.3 % at 640x416, several % when small.
        assert 1e-4 < counted / y - 1 < (4e-3 if width == 640 else 0.05)
    # At 640x416, p = 80: r = 166 and the drawn disc holds 87061 px (STUDY.md).
    if width == 640:
        assert want[-1][0] == 166 and int(df["n_inside"].iloc[-1]) == 87061
    assert (df["area_frac_thesis"] < df["area_frac"]).all()


@pytest.mark.parametrize("threads", [1, 3])
def test_vae_floor_columns_from_pngs_equal_definitions(
    threads: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """metrics_table's floor columns on real PNGs, one round trip for 4 masks x 2
    strengths, against the plain definitions on the decoded arrays: every row of one mask
    has that mask's floor, whatever its strength; rows of a manifest without a round
    trip have NaN floors."""
    monkeypatch.chdir(tmp_path)
    width, height = 640, 416
    rng = np.random.default_rng(17)
    original = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    roundtrip = np.clip(original.astype(np.int16) + rng.integers(-6, 7, original.shape), 0, 255)
    Image.fromarray(original).save("original.png")
    Image.fromarray(roundtrip.astype(np.uint8)).save("vae_roundtrip.png")
    radii = [20.0, 31.02, 44.49, 80.0]
    entries, want = [], {}
    for k, pct in enumerate(radii):
        mask = np.asarray(circle_mask(width, height, pct))
        Image.fromarray(mask).save(f"mask{k}.png")
        inpaint = inpaint_region(mask)
        # The definitions on the decoded PNGs (what the table reads back).
        want[pct] = reference_metrics(
            original,
            original,
            inpaint,
            8,
            None,
            None,
            roundtrip=np.array(Image.open("vae_roundtrip.png")),
        )
        for strength in (0.1, 0.9):
            noise = rng.integers(-30, 31, original.shape)
            inpainted = np.clip(original.astype(np.int16) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(inpainted).save(f"inpainted{k}_{strength}.png")
            entries.append(
                {
                    "experiment": "mask_size_sweep",
                    "radius_pct": pct,
                    "strength": strength,
                    "seed": 0,
                    "steps_run": 1,
                    "mode": "denoise",
                    "mask_path": f"mask{k}.png",
                    "inpainted_path": f"inpainted{k}_{strength}.png",
                }
            )
    manifest = {
        "model": "m",
        "image": "img",
        "image_path": "original.png",
        "steps": 2,
        "vae_roundtrip_path": "vae_roundtrip.png",
        "inpaintings": entries,
    }
    Path("manifest.json").write_text(json.dumps(manifest))
    old = {key: value for key, value in manifest.items() if key != "vae_roundtrip_path"}
    Path("old.json").write_text(json.dumps({**old, "model": "old"}))
    # The floor depends on the mask: a table that measured one mask for all would fail.
    assert len({want[pct]["mse_outside_vae"] for pct in radii}) == len(radii)
    df = metrics_table(["manifest.json", "old.json"], threads=threads)
    floor = ["mse_outside_vae", "mse_outside_band_vae", "mse_outside_far_vae"]
    new, before = df[df["model"] == "m"], df[df["model"] == "old"]
    assert len(new) == len(before) == 8
    for _, row in new.iterrows():
        assert [row[key] for key in floor] == [want[row["radius_pct"]][key] for key in floor]
    assert set(new["vae_roundtrip_path"]) == {"vae_roundtrip.png"}
    assert before[floor].isna().all().all() and set(before["vae_roundtrip_path"]) == {""}
    # The inpaintings' own columns do not depend on the round trip (those measured
    # against it, the excess and the attribution parts, do).
    against_floor = ("excess_over_floor", *(c for c in COLUMNS if c.startswith("mse_outside_part")))
    assert before[list(against_floor)].isna().all().all()
    own = [c for c in COLUMNS if c not in (*floor, *against_floor, "vae_roundtrip_path", "model")]
    pd.testing.assert_frame_equal(
        new[own].reset_index(drop=True), before[own].reset_index(drop=True), check_exact=True
    )
