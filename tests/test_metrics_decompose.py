"""The decomposition of the outside error (maskleak.metrics.decompose and its columns in
the metrics table and the profile): each column on small constructed images whose values
are worked out by hand in the comments, then every column on random images against its
plain definition (scipy, skimage)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from scipy import ndimage, stats
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity

from maskleak import latent_mask, mechanisms
from maskleak.errors import InputError
from maskleak.masks import circle_mask, inpaint_region
from maskleak.metrics import COLUMNS, metrics_table, metrics_tables
from maskleak.metrics import colour as colour_module
from maskleak.metrics import seam as seam_module
from maskleak.metrics.manifests import _MECHANISM_KINDS
from maskleak.metrics.profile import COLUMNS as PROFILE_COLUMNS
from maskleak.metrics.profile import DTYPES as PROFILE_DTYPES
from maskleak.metrics.structure import ssim_map, ssim_reference
from maskleak.metrics.texture import cell_texture

SCHEMAS = Path(__file__).resolve().parents[1] / "workflow" / "schemas"
FOOTPRINT = (
    "n_outside_footprint",
    "n_outside_beyond",
    "mse_outside_footprint",
    "mse_outside_beyond",
    "mse_outside_part_footprint",
    "mse_outside_part_beyond",
)


def save(arr: np.ndarray, path: Path | str) -> str:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return str(path)


def gray(value: int, height: int, width: int) -> np.ndarray:
    return np.full((height, width, 3), value, dtype=np.uint8)


def write_case(
    folder: Path,
    original: np.ndarray,
    inpaint: np.ndarray,
    inpaintings: list[np.ndarray],
    *,
    model: str = "m",
    entries: list[dict[str, Any]] | None = None,
    roundtrip: np.ndarray | None = None,
    sample: np.ndarray | None = None,
    top: dict[str, Any] | None = None,
) -> str:
    """One image, one mask (True = inpaint), its inpaintings and a manifest listing them;
    ``entries`` adds fields to each entry; ``top`` to the manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    image = save(original, folder / "original.png")
    mask = save(inpaint.astype(np.uint8) * 255, folder / "mask.png")
    items = []
    for i, pixels in enumerate(inpaintings):
        items.append(
            {
                "experiment": "e",
                "radius_pct": 50.0,
                "strength": 0.5,
                "seed": i,
                "steps_run": 1,
                "mode": "denoise",
                "mask_path": mask,
                "inpainted_path": save(pixels, folder / f"inpainted{i}.png"),
                **(entries[i] if entries else {}),
            }
        )
    manifest: dict[str, Any] = {
        "model": model,
        "image": "img",
        "image_path": image,
        "steps": 2,
        "inpaintings": items,
        **(top or {}),
    }
    if roundtrip is not None:
        manifest["vae_roundtrip_path"] = save(roundtrip, folder / "vae_roundtrip.png")
    if sample is not None:
        manifest["vae_roundtrip_sample_path"] = save(sample, folder / "vae_roundtrip_sample.png")
    path = folder / "manifest.json"
    path.write_text(json.dumps(manifest))
    return str(path)


def mechanism_record(**changes: Any) -> dict[str, Any]:
    return mechanisms.effective(mechanisms.DIFFUSERS, changes).record()


# ---------------------------------------------------------------- distance, seam, colour


def strip_case(tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """8 rows x 144 columns, all 100; the mask inpaints columns 0-7. An outside pixel in
    column c is c - 7 px from the mask (along its row), so the distance bins (0,4],
    (4,8], (8,16], (16,32], (32,64], (64,128], (128,inf) hold columns 8-11, 12-15,
    16-23, 24-39, 40-71, 72-135, 136-143: 4, 4, 8, 16, 32, 64, 8 columns of 8 px. The
    inpainting adds k + 1 to R in bin k; inside, +10 to every channel in columns 6-7
    (within 2 px of column 8: the seam at band_px 2) and -50 in columns 0-5."""
    original = gray(100, 8, 144)
    inpaint = np.zeros((8, 144), dtype=bool)
    inpaint[:, :8] = True
    inpainted = original.copy()
    edges = [8, 12, 16, 24, 40, 72, 136, 144]
    for k in range(7):
        inpainted[:, edges[k] : edges[k + 1], 0] += k + 1
    inpainted[:, 6:8] += 10
    inpainted[:, :6] -= 50
    return write_case(tmp_path, original, inpaint, [inpainted]), {"original": original}


def test_distance_bins_seam_colour_shift_and_brushbench_by_hand(tmp_path: Path) -> None:
    manifest, _ = strip_case(tmp_path)
    table, profile = metrics_tables([manifest], band_px=2)
    row = table.iloc[0]
    counts = [32, 32, 64, 128, 256, 512, 64]
    assert row["n_outside"] == sum(counts) == 1088
    distance = profile[profile["kind"] == "distance"]
    assert list(distance["bin"]) == list(range(7))
    assert list(distance["n_pixels"]) == counts
    assert list(distance["lo"]) == [0, 4, 8, 16, 32, 64, 128]
    assert list(distance["hi"]) == [4, 8, 16, 32, 64, 128, math.inf]
    # Bin k: (k + 1)² in one of 3 channels.
    assert list(distance["mse"]) == [(k + 1) ** 2 / 3 for k in range(7)]
    assert distance["mse_vae"].isna().all()  # no round trip
    # 32 x 1 + 32 x 4 + 64 x 9 + 128 x 16 + 256 x 25 + 512 x 36 + 64 x 49 = 30752.
    assert row["mse_outside"] == 30752 / (3 * 1088)
    # Seam: columns 6-7, 16 px, 10² per element; columns 0-5 (at 3 px and more) excluded.
    assert row["n_seam_inside"] == 16
    assert row["mse_seam_inside"] == 100.0
    # Colour shift: R by 32 x 1 + 32 x 2 + 64 x 3 + 128 x 4 + 256 x 5 + 512 x 6 + 64 x 7
    # = 5600 over 1088 px; G and B unchanged.
    assert row["shift_r_outside"] == 5600 / 1088
    assert (row["shift_g_outside"], row["shift_b_outside"]) == (0.0, 0.0)
    # BrushBench: [0, 1] values, squares summed over RGB, per outside pixel.
    bb_mse = 30752 / 255**2 / 1088
    assert row["bb_mse_outside"] == pytest.approx(bb_mse, rel=1e-15)
    assert row["bb_mse_outside"] == pytest.approx(3 * row["mse_outside"] / 255**2, rel=1e-15)
    assert row["bb_psnr_outside"] == pytest.approx(20 * math.log10(1 / math.sqrt(bb_mse)))
    # 4.77 dB (10 log10 3) below the per-element PSNR.
    assert row["psnr_outside"] - row["bb_psnr_outside"] == pytest.approx(10 * math.log10(3))
    # ΔE: the pair (100,100,100) -> (100 + k + 1, 100, 100), weighted by the bins' pixels.
    want = sum(
        n
        * deltaE_ciede2000(
            rgb2lab(np.array([100, 100, 100]) / 255), rgb2lab(np.array([101 + k, 100, 100]) / 255)
        )
        for k, n in enumerate(counts)
    )
    assert row["delta_e_outside"] == pytest.approx(want / 1088, abs=1e-4)
    # A flat original: every pixel has texture 0, so the first decile holds them all and
    # the rank correlation is undefined.
    texture = profile[profile["kind"] == "texture"]
    assert list(texture["n_pixels"]) == [1088] + [0] * 9
    assert (texture["lo"] == 0).all() and (texture["hi"] == 0).all()
    assert texture["mse"].iloc[0] == row["mse_outside"] and texture["mse"].iloc[1:].isna().all()
    assert math.isnan(row["texture_spearman"])
    # No unet_in_channels in the manifest: the footprint is unknown.
    assert row[list(FOOTPRINT)].isna().all()
    assert row["unet_in_channels"] == 0


def test_identical_images(tmp_path: Path) -> None:
    """Inpainting = original: SSIM 1 and ΔE 0 exactly, BrushBench's 1000 dB."""
    rng = np.random.default_rng(3)
    original = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    inpaint = np.zeros((16, 24), dtype=bool)
    inpaint[4:12, 8:16] = True
    inpainted = original.copy()
    inpainted[inpaint] = 0  # inside changes do not matter to the outside metrics...
    manifest = write_case(tmp_path, original, inpaint, [inpainted])
    row = metrics_table([manifest]).iloc[0]
    assert row["delta_e_outside"] == 0.0
    assert (row["shift_r_outside"], row["shift_g_outside"], row["shift_b_outside"]) == (0, 0, 0)
    assert row["bb_mse_outside"] == 0.0 and row["bb_psnr_outside"] == 1000.0
    assert math.isnan(row["texture_spearman"])  # the error is constant (0)
    # ... not even to SSIM: its windows near the mask compare the inside as the original's.
    assert row["ssim_outside"] == 1.0
    same = write_case(tmp_path / "same", original, inpaint, [original])
    assert metrics_table([same]).iloc[0]["ssim_outside"] == 1.0


# ---------------------------------------------------------------- step across the edge

#: The 3x3 mask of seam_case (rows and columns 2-4 of 8x8): its 12 pairs of 4-neighbours
#: (inside p, outside q), listed by side. The centre (3, 3) has no outside neighbour, each
#: corner two, each side's middle one.
SQUARE_PAIRS = (
    [((y, 2), (y, 1)) for y in (2, 3, 4)]  # left
    + [((y, 4), (y, 5)) for y in (2, 3, 4)]  # right
    + [((2, x), (1, x)) for x in (2, 3, 4)]  # top
    + [((4, x), (5, x)) for x in (2, 3, 4)]  # bottom
)


def seam_case() -> tuple[np.ndarray, np.ndarray]:
    """8x8 gradient: R = 10 x, G = 5 y, B = 0 at row y, column x; the mask inpaints the
    3x3 square of rows and columns 2-4. The original's own step across the edge: 10 in R
    on the 6 left/right pairs, 5 in G on the 6 top/bottom pairs: 90 over 12 pairs x 3
    channels, 2.5 levels."""
    yy, xx = np.mgrid[:8, :8]
    original = np.stack([10 * xx, 5 * yy, np.zeros_like(xx)], axis=2).astype(np.uint8)
    inpaint = np.zeros((8, 8), dtype=bool)
    inpaint[2:5, 2:5] = True
    return original, inpaint


def hard_paste(original: np.ndarray, inpaint: np.ndarray, decoded: np.ndarray) -> np.ndarray:
    """The original outside the mask, ``decoded`` inside (hard paste-back)."""
    return np.where(inpaint[..., None], decoded, original).astype(np.uint8)


def test_edge_pairs_are_the_listed_ones() -> None:
    _, inpaint = seam_case()
    pairs = seam_module.edge_pairs(inpaint)
    got = {((p // 8, p % 8), (q // 8, q % 8)) for p, q in pairs.T.tolist()}
    assert pairs.shape == (2, 12) and got == set(SQUARE_PAIRS)
    # Symmetric: the outside pixels' pairs of the complement are the same pairs reversed.
    assert set(map(tuple, seam_module.edge_pairs(~inpaint)[::-1].T.tolist())) == set(
        map(tuple, pairs.T.tolist())
    )
    assert seam_module.edge_pairs(np.zeros((4, 5), dtype=bool)).shape == (2, 0)
    assert seam_module.edge_pairs(np.ones((4, 5), dtype=bool)).shape == (2, 0)


def test_seam_step_of_a_hard_paste_by_hand(tmp_path: Path) -> None:
    """Four inpaintings of seam_case: the original itself; a flat (100, 100, 100)
    decoded image pasted back hard; the original + 20 everywhere (a uniform drift, as a
    VAE might leave) as decoded, and the same pasted back hard."""
    original, inpaint = seam_case()
    flat = hard_paste(original, inpaint, gray(100, 8, 8))
    drift = original + np.uint8(20)
    pasted_drift = hard_paste(original, inpaint, drift)
    manifest = write_case(tmp_path, original, inpaint, [original, flat, drift, pasted_drift])
    rows = metrics_table([manifest], band_px=1).set_index("seed")
    # Flat 100 inside against the original at q:
    #   left   q = (y, 1): (10, 5y, 0): 90 + (100 - 5y) + 100 = 280, 275, 270 (y = 2, 3, 4)
    #   right  q = (y, 5): (50, 5y, 0): 50 + (100 - 5y) + 100 = 240, 235, 230
    #   top    q = (1, x): (10x, 5, 0): (100 - 10x) + 95 + 100 = 275, 265, 255 (x = 2, 3, 4)
    #   bottom q = (5, x): (10x, 25, 0): (100 - 10x) + 75 + 100 = 255, 245, 235
    # total 3060 over 12 pairs x 3 channels.
    # Drift pasted back: |original[p] + 20 - original[q]| per channel:
    #   left   R 20 + 20 - 10 = 30, G 20, B 20: 70 x 3 pairs = 210
    #   right  R 40 + 20 - 50 = 10, G 20, B 20: 50 x 3 = 150
    #   top    R 20, G 10 + 20 - 5 = 25, B 20: 65 x 3 = 195
    #   bottom R 20, G 20 + 20 - 25 = 15, B 20: 55 x 3 = 165; total 720.
    # Unpasted drift: every difference as the original's, 90.
    want = {0: 90, 1: 3060, 2: 90, 3: 720}
    for seed, total in want.items():
        row = rows.loc[seed]
        assert row["seam_step_original"] == 90 / 36 == 2.5
        assert row["seam_step"] == total / 36, seed
        assert row["seam_step_excess"] == (total - 90) / 36, seed
    # The same sums by a plain loop over the listed pairs.
    for seed, image in enumerate([original, flat, drift, pasted_drift]):
        plain = sum(
            abs(int(image[p][c]) - int(image[q][c])) for p, q in SQUARE_PAIRS for c in range(3)
        )
        assert plain == want[seed]
    assert rows.loc[1, "seam_step"] == 85.0 and rows.loc[1, "seam_step_excess"] == 82.5
    assert rows.loc[3, "seam_step"] == 20.0 and rows.loc[3, "seam_step_excess"] == 17.5
    # The error inside the edge cannot tell the drift pasted back from the drift: the
    # inside is the same (the 8 ring pixels, 20² per element); the step can.
    assert rows.loc[2, "mse_seam_inside"] == rows.loc[3, "mse_seam_inside"] == 400.0
    assert rows.loc[2, "seam_step_excess"] == 0.0 and rows.loc[0, "seam_step_excess"] == 0.0
    assert rows.loc[2, "mse_outside"] == 400.0 and rows.loc[3, "mse_outside"] == 0.0


# ------------------------------------------------------------------------- footprint


def footprint_case() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """16x16 = 2x2 latent cells. Inpaint: all of cell (0,0), and one pixel of each other
    cell: (0,8) the top-left pixel of cell (0,1) (sampled by torch_nearest), (12,4) the
    pixel just past the centre of cell (1,0) (sampled by pil_nearest), (15,15) a corner
    of cell (1,1) (neither samples it). So the cells repainted are
    torch_nearest: (0,0), (0,1); pil_nearest: (0,0), (1,0); cover: all; inner: (0,0).
    67 px inside, 189 outside: 63 in each of cells (0,1), (1,0), (1,1).
    The inpainting adds 1, 2, 3 to R on the outside pixels of cells (0,1), (1,0), (1,1):
    squared errors 63, 252, 567 (sum 882). The mode round trip adds 1 to G on the outside
    pixels of cell (1,1): 63."""
    original = gray(100, 16, 16)
    inpaint = np.zeros((16, 16), dtype=bool)
    inpaint[:8, :8] = True
    inpaint[0, 8] = inpaint[12, 4] = inpaint[15, 15] = True
    inpainted = original.copy()
    roundtrip = original.copy()
    for (r, c), add in (((0, 8), 1), ((8, 0), 2), ((8, 8), 3)):
        cell = (slice(r, r + 8), slice(c, c + 8))
        keep = ~inpaint[cell]
        inpainted[cell][keep, 0] += add
    roundtrip[8:, 8:][~inpaint[8:, 8:], 1] += 1
    return original, inpaint, inpainted, roundtrip


#: rule -> (n_outside_footprint, mse_outside_footprint, mse_outside_beyond,
#: part_footprint, part_beyond), by hand from footprint_case's docstring; n_outside 189,
#: 3 x 189 = 567 elements, floor SSE 63 (all in cell (1,1)).
FOOTPRINTS = {
    # Cell (0,1): 63 px, SSE 63 -> 63 / 189; beyond (1,0), (1,1): 819 / 378.
    # Parts: (63 - 0) / 567, (819 - 63) / 567.
    latent_mask.TORCH_NEAREST: (63, 63 / 189, 819 / 378, 63 / 567, 756 / 567),
    # Cell (1,0): SSE 252; beyond 63 + 567 = 630; floor 63 beyond.
    latent_mask.PIL_NEAREST: (63, 252 / 189, 630 / 378, 252 / 567, 567 / 567),
    # Every outside pixel in the footprint: nothing beyond (NaN MSE, part 0).
    latent_mask.COVER: (189, 882 / 567, math.nan, 819 / 567, 0.0),
    # No outside pixel in the footprint.
    latent_mask.INNER: (0, math.nan, 882 / 567, 0.0, 819 / 567),
}


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_footprint_under_each_latent_mask_rule_by_hand(tmp_path: Path) -> None:
    original, inpaint, inpainted, roundtrip = footprint_case()
    rules = list(FOOTPRINTS)
    four = write_case(
        tmp_path / "four",
        original,
        inpaint,
        [inpainted] * len(rules),
        model="four",
        entries=[
            {"variant": rule, "mechanisms": mechanism_record(latent_mask=rule)} for rule in rules
        ],
        roundtrip=roundtrip,
        top={"unet_in_channels": 4},
    )
    # A 9-channel UNet regenerates every latent, whatever its latent mask rule says.
    nine = write_case(
        tmp_path / "nine",
        original,
        inpaint,
        [inpainted],
        model="nine",
        roundtrip=roundtrip,
        top={"unet_in_channels": 9},
    )
    unknown = write_case(
        tmp_path / "unknown", original, inpaint, [inpainted], model="unknown", roundtrip=roundtrip
    )
    table = metrics_table([four, nine, unknown])
    assert list(table["model"]) == ["four"] * 4 + ["nine", "unknown"]
    for _, row in table.iterrows():
        assert (row["n_outside"], row["n_inside"]) == (189, 67)
        assert row["mse_outside"] == 882 / 567
        assert row["mse_outside_vae"] == row["mse_outside_part_vae"] == 63 / 567
        assert row["excess_over_floor"] == 819 / 567
    rows = {row["variant"]: row for _, row in table[table["model"] == "four"].iterrows()}
    # Variants sort by name: cover, inner, pil_nearest, torch_nearest.
    assert list(table["variant"][:4]) == sorted(rules)
    for rule, (n_in, mse_in, mse_beyond, part_in, part_beyond) in FOOTPRINTS.items():
        row = rows[rule]
        assert row["latent_mask"] == rule and row["unet_in_channels"] == 4
        assert (row["n_outside_footprint"], row["n_outside_beyond"]) == (n_in, 189 - n_in)
        assert same(row["mse_outside_footprint"], mse_in), rule
        assert same(row["mse_outside_beyond"], mse_beyond), rule
        assert row["mse_outside_part_footprint"] == part_in, rule
        assert row["mse_outside_part_beyond"] == part_beyond, rule
        # The three parts add up to mse_outside: their numerators 63 + (part) + (part)
        # are exact integers summing to 882.
        numerators = [row[f"mse_outside_part_{p}"] * 567 for p in ("vae", "footprint", "beyond")]
        assert [round(x) for x in numerators] == pytest.approx(numerators, abs=1e-9)
        assert sum(round(x) for x in numerators) == 882
        parts = row[
            ["mse_outside_part_vae", "mse_outside_part_footprint", "mse_outside_part_beyond"]
        ]
        assert math.fsum(parts) == pytest.approx(row["mse_outside"], rel=1e-15)
    nine_row = table[table["model"] == "nine"].iloc[0]
    assert nine_row["latent_mask"] == latent_mask.TORCH_NEAREST  # not what decides here
    assert nine_row["unet_in_channels"] == 9
    cover = FOOTPRINTS[latent_mask.COVER]
    assert nine_row["n_outside_footprint"] == 189 and nine_row["n_outside_beyond"] == 0
    assert nine_row["mse_outside_footprint"] == cover[1]
    assert nine_row["mse_outside_part_footprint"] == cover[3]
    assert nine_row["mse_outside_part_beyond"] == 0.0
    unknown_row = table[table["model"] == "unknown"].iloc[0]
    assert unknown_row[list(FOOTPRINT)].isna().all()
    assert unknown_row["mse_outside_part_vae"] == 63 / 567


def test_footprint_rule_needs_latent_grid_sizes(tmp_path: Path) -> None:
    original = gray(100, 12, 16)
    inpaint = np.zeros((12, 16), dtype=bool)
    inpaint[4:8, 4:8] = True
    manifest = write_case(tmp_path, original, inpaint, [original], top={"unet_in_channels": 4})
    with pytest.raises(InputError, match="not a multiple of the latent factor") as info:
        metrics_table([manifest])
    assert manifest in str(info.value)
    # A 9-channel UNet's footprint is the whole image at any size.
    nine = write_case(tmp_path / "9", original, inpaint, [original], top={"unet_in_channels": 9})
    assert metrics_table([nine]).iloc[0]["n_outside_footprint"] == 12 * 16 - 16


# ---------------------------------------------------------------------------- texture


def checker(height: int, width: int, low: int, high: int) -> np.ndarray:
    """Grey (R = G = B) checkerboard: half the pixels ``low``, half ``high``."""
    yy, xx = np.mgrid[:height, :width]
    return np.where((yy + xx) % 2 == 0, low, high).astype(np.uint8)[..., None].repeat(3, 2)


def texture_case(tmp_path: Path, errors: list[int]) -> str:
    """8 x 88 = 11 latent cells in a row. Cell k (k = 0..9) is a grey checkerboard of
    100 - k and 100 + k: luma 100 ± k, standard deviation exactly k. Cell 10 is the mask.
    The inpainting adds errors[k] to R on cell k."""
    original = np.concatenate([checker(8, 8, 100 - k, 100 + k) for k in range(11)], axis=1)
    inpaint = np.zeros((8, 88), dtype=bool)
    inpaint[:, 80:] = True
    inpainted = original.copy()
    for k, error in enumerate(errors):
        inpainted[:, 8 * k : 8 * k + 8, 0] += np.uint8(error)
    return write_case(tmp_path, original, inpaint, [inpainted])


def test_cell_texture_by_hand() -> None:
    # One cell half (10, 20, 30), half (40, 50, 60): luma 18.15 and 48.15, std 15; a flat
    # cell 0 exactly; the last column of cells partial (W = 20: cells of 8, 8, 4 px).
    pixels = np.zeros((8, 20, 3), dtype=np.uint8)
    pixels[:, :8] = np.where(
        (np.add.outer(np.arange(8), np.arange(8)) % 2 == 0)[..., None], [10, 20, 30], [40, 50, 60]
    )
    pixels[:, 8:16] = 77
    pixels[:4, 16:] = 0
    pixels[4:, 16:] = 255  # 16 px of luma 0, 16 of 255: std 127.5
    texture = cell_texture(pixels)
    assert texture.values.shape == (1, 3)
    assert texture.values.tolist() == [[15.0, 0.0, 127.5]]
    assert texture.per_pixel().reshape(8, 20)[0].tolist() == [15.0] * 8 + [0.0] * 8 + [127.5] * 4


def test_texture_deciles_and_rank_correlation_by_hand(tmp_path: Path) -> None:
    rising = texture_case(tmp_path / "rising", [k + 1 for k in range(10)])
    table, profile = metrics_tables([rising])
    texture = profile[profile["kind"] == "texture"]
    # The 640 outside textures, sorted, are 64 copies each of 0, 1, ..., 9. np.quantile
    # at j/10 sits at position 63.9 j, between index 64 j - 1 (value j - 1) and 64 j
    # (value j), 1 - j/10 of the way: edge j = j - 1 + 1 - j/10 = 0.9 j.
    assert list(texture["lo"]) == pytest.approx([0.9 * j for j in range(10)], abs=1e-12)
    assert list(texture["hi"]) == pytest.approx([0.9 * j for j in range(1, 11)], abs=1e-12)
    # Texture k lies in (0.9 k, 0.9 (k + 1)]: decile k is exactly cell k.
    assert list(texture["n_pixels"]) == [64] * 10
    assert list(texture["mse"]) == [(k + 1) ** 2 / 3 for k in range(10)]
    # The error rises with the texture: ranks agree exactly.
    assert table.iloc[0]["texture_spearman"] == pytest.approx(1.0, abs=1e-12)
    falling = texture_case(tmp_path / "falling", [10 - k for k in range(10)])
    assert metrics_table([falling]).iloc[0]["texture_spearman"] == pytest.approx(-1.0, abs=1e-12)
    flat_error = texture_case(tmp_path / "flat", [3] * 10)
    assert math.isnan(metrics_table([flat_error]).iloc[0]["texture_spearman"])
    # Two error levels: cells 0-4 error 1, cells 5-9 error 2. Texture ranks (ties
    # averaged): cell k's 64 px share rank 64 k + 32.5; error ranks 160.5 and 480.5. By
    # scipy's definition (Pearson of the ranks):
    two = texture_case(tmp_path / "two", [1] * 5 + [2] * 5)
    texture_rank = np.repeat(64 * np.arange(10) + 32.5, 64)
    error_rank = np.repeat([160.5, 480.5], 320)
    want = np.corrcoef(texture_rank, error_rank)[0, 1]
    assert metrics_table([two]).iloc[0]["texture_spearman"] == pytest.approx(want, rel=1e-12)


# ------------------------------------------------------------------------ colour, SSIM

#: CIEDE2000 test pairs of Sharma, Wu and Dalal (2005), Table 1: L*a*b* pairs and ΔE00
#: (pairs 1, 7, 13, 17, 25).
SHARMA = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.49, -0.001), (50.0, -2.49, 0.0009), 7.1792),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
]


def test_ciede2000_on_published_pairs() -> None:
    first = np.array([pair[0] for pair in SHARMA], dtype=np.float32).T
    second = np.array([pair[1] for pair in SHARMA], dtype=np.float32).T
    a, b = first[1], first[2]
    ref = colour_module.Reference(first[0], a, b, np.sqrt(a * a + b * b))
    got = colour_module.ciede2000(ref, second)
    assert got.dtype == np.float32
    assert got.tolist() == pytest.approx([pair[2] for pair in SHARMA], abs=2e-4)
    # Equal colours: 0 exactly.
    assert colour_module.ciede2000(ref, first).tolist() == [0.0] * len(SHARMA)


def test_lab_and_ciede2000_match_skimage_on_random_colours() -> None:
    rng = np.random.default_rng(5)
    one = rng.integers(0, 256, (3, 20000), dtype=np.uint8)
    two = np.clip(one.astype(int) + rng.integers(-30, 31, one.shape), 0, 255).astype(np.uint8)
    # Greys and pure hues too (zero chroma, hue wrap-around).
    one[:, :3] = [[128, 255, 0], [128, 0, 0], [128, 0, 255]]
    two[:, :3] = [[130, 0, 0], [128, 255, 0], [128, 255, 0]]
    lab_one = rgb2lab(one.T / 255.0)
    lab_two = rgb2lab(two.T / 255.0)
    np.testing.assert_allclose(colour_module.lab_planar(one).T, lab_one, atol=2e-4)
    want = deltaE_ciede2000(lab_one, lab_two)
    got = colour_module.ciede2000(colour_module.reference(one), colour_module.lab_planar(two))
    np.testing.assert_allclose(got, want, atol=5e-4)
    total = colour_module.delta_e_sum(colour_module.reference(one), two)
    assert total == pytest.approx(want.sum(), rel=1e-5)


@pytest.mark.parametrize(("height", "width"), [(7, 9), (31, 18), (64, 96)])
def test_ssim_map_matches_skimage(height: int, width: int) -> None:
    rng = np.random.default_rng(height)
    a = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 41, a.shape), 0, 255).astype(np.uint8)
    _, full = structural_similarity(a, b, full=True, channel_axis=2, data_range=255)
    reference = ssim_reference(a)
    assert reference is not None
    np.testing.assert_allclose(np.moveaxis(ssim_map(reference, b), 0, 2), full, atol=2e-6)
    assert ssim_reference(a[:6]) is None  # skimage refuses images below 7x7


def test_ssim_outside_with_an_empty_mask_is_skimages_mean(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    a = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    manifest = write_case(tmp_path, a, np.zeros((24, 40), dtype=bool), [b])
    row = metrics_table([manifest]).iloc[0]
    _, full = structural_similarity(a, b, full=True, channel_axis=2, data_range=255)
    assert row["ssim_outside"] == pytest.approx(full.mean(), abs=1e-6)
    # No inside pixel: every outside pixel is in the last distance bin, no seam.
    assert row["n_seam_inside"] == 0 and math.isnan(row["mse_seam_inside"])
    assert row[["seam_step", "seam_step_original", "seam_step_excess"]].isna().all()
    small = write_case(tmp_path / "small", a[:6], np.zeros((6, 40), dtype=bool), [b[:6]])
    assert math.isnan(metrics_table([small]).iloc[0]["ssim_outside"])


# --------------------------------------------------------------- against definitions


def plain_texture(pixels: np.ndarray) -> np.ndarray:
    """Per pixel: BT.601 luma std over its 8x8 cell (H, W multiples of 8), float64."""
    height, width = pixels.shape[:2]
    luma = pixels.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    cells = luma.reshape(height // 8, 8, width // 8, 8).std(axis=(1, 3))
    return np.repeat(np.repeat(cells, 8, axis=0), 8, axis=1)


def test_every_column_against_its_definition(tmp_path: Path) -> None:
    """Random 96x64 images, a disc mask, a 4-channel UNet with the cover latent mask,
    both round trips: every new column and the profile from their plain definitions."""
    rng = np.random.default_rng(21)
    height, width = 64, 96
    original = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    original[:, :32] //= 8  # smoother on the left: textures differ

    def noisy(spread: int) -> np.ndarray:
        noise = rng.integers(-spread, spread + 1, original.shape)
        return np.clip(original.astype(int) + noise, 0, 255).astype(np.uint8)

    inpainted, roundtrip, sample = noisy(30), noisy(6), noisy(9)
    inpaint = inpaint_region(np.asarray(circle_mask(width, height, 40)))
    rule = latent_mask.COVER
    manifest = write_case(
        tmp_path,
        original,
        inpaint,
        [inpainted],
        entries=[
            {
                "variant": "cover",
                "pass": 2,
                "mechanisms": mechanism_record(latent_mask=rule, passes=2),
            }
        ],
        roundtrip=roundtrip,
        sample=sample,
        top={"unet_in_channels": 4, "common": {"dtype": "float32"}},
    )
    table, profile = metrics_tables([manifest], band_px=3)
    row = table.iloc[0]

    outside = ~inpaint
    n = int(outside.sum())

    def squares(other: np.ndarray) -> np.ndarray:
        return ((original.astype(np.int64) - other.astype(np.int64)) ** 2).sum(axis=2)

    error, floor = squares(inpainted), squares(roundtrip)
    footprint = latent_mask.footprint(inpaint, rule)
    for where, key in ((outside & footprint, "footprint"), (outside & ~footprint, "beyond")):
        assert where.any()
        assert row[f"n_outside_{key}"] == where.sum()
        assert row[f"mse_outside_{key}"] == error[where].sum() / (3 * where.sum())
        part = (int(error[where].sum()) - int(floor[where].sum())) / (3 * n)
        assert row[f"mse_outside_part_{key}"] == part
    assert row["mse_outside_part_vae"] == row["mse_outside_vae"] == floor[outside].sum() / (3 * n)
    assert row["mse_outside_vae_sample"] == squares(sample)[outside].sum() / (3 * n)
    assert row["excess_over_floor"] == (int(error[outside].sum()) - int(floor[outside].sum())) / (
        3 * n
    )
    assert row["excess_over_floor"] == pytest.approx(row["mse_outside"] - row["mse_outside_vae"])
    # Seam: inside pixels within 3 px of an outside pixel.
    seam = inpaint & (ndimage.distance_transform_edt(inpaint) <= 3)
    assert row["n_seam_inside"] == seam.sum()
    assert row["mse_seam_inside"] == error[seam].sum() / (3 * seam.sum())
    # Step across the edge: every 4-neighbour pair with one pixel on each side.
    steps = {"inpainted": 0, "original": 0}
    n_pairs = 0
    for y in range(height):
        for x in range(width):
            for y2, x2 in ((y, x + 1), (y + 1, x)):
                if y2 < height and x2 < width and inpaint[y, x] != inpaint[y2, x2]:
                    n_pairs += 1
                    for name, image in (("inpainted", inpainted), ("original", original)):
                        a, b = image[y, x].astype(int), image[y2, x2].astype(int)
                        steps[name] += int(np.abs(a - b).sum())
    assert n_pairs > 0
    assert row["seam_step"] == steps["inpainted"] / (3 * n_pairs)
    assert row["seam_step_original"] == steps["original"] / (3 * n_pairs)
    assert row["seam_step_excess"] == (steps["inpainted"] - steps["original"]) / (3 * n_pairs)
    shift = (inpainted.astype(np.int64) - original)[outside].sum(axis=0) / n
    assert [row[f"shift_{c}_outside"] for c in "rgb"] == shift.tolist()
    delta = deltaE_ciede2000(rgb2lab(original / 255.0), rgb2lab(inpainted / 255.0))
    assert row["delta_e_outside"] == pytest.approx(delta[outside].mean(), abs=1e-4)
    # SSIM of the outside alone: the inpainting's inside replaced by the original's.
    outside_only = np.where(outside[..., None], inpainted, original)
    _, ssim = structural_similarity(
        original, outside_only, full=True, channel_axis=2, data_range=255
    )
    assert row["ssim_outside"] == pytest.approx(ssim[outside].mean(), abs=1e-6)
    texture = plain_texture(original)
    rho = stats.spearmanr(texture[outside], error[outside]).statistic
    assert row["texture_spearman"] == pytest.approx(rho, rel=1e-9)
    assert row["bb_mse_outside"] == pytest.approx(
        ((original / 255.0 - inpainted / 255.0) ** 2).sum(axis=2)[outside].mean(), rel=1e-12
    )
    # Identity: variant, pass, mechanisms, the run's dtype (the variant sets none).
    assert (row["variant"], row["pass"], row["passes"], row["latent_mask"]) == ("cover", 2, 2, rule)
    assert (row["latent_encoding"], row["paste_back"], row["paste_blur_px"]) == (
        "sample",
        "none",
        0.0,
    )
    assert row["final_latent_paste"] is np.True_ or row["final_latent_paste"] is True
    assert row["dtype"] == "float32"
    assert row["vae_roundtrip_sample_path"] == str(tmp_path / "vae_roundtrip_sample.png")

    # The profile: distance bins by the exact distance, texture deciles by np.quantile.
    distance = ndimage.distance_transform_edt(outside)[outside]
    edges = [0, 4, 8, 16, 32, 64, 128, math.inf]
    by_distance = profile[profile["kind"] == "distance"]
    for k, line in enumerate(by_distance.itertuples()):
        where = (distance > edges[k]) & (distance <= edges[k + 1])
        assert line.n_pixels == where.sum()
        if where.any():
            assert line.mse == error[outside][where].sum() / (3 * where.sum())
            assert line.mse_vae == floor[outside][where].sum() / (3 * where.sum())
    deciles = np.quantile(texture[outside], np.arange(11) / 10)
    by_texture = profile[profile["kind"] == "texture"]
    assert list(by_texture["lo"]) == pytest.approx(deciles[:-1], rel=1e-12)
    assert list(by_texture["hi"]) == pytest.approx(deciles[1:], rel=1e-12)
    for k, line in enumerate(by_texture.itertuples()):
        low = -math.inf if k == 0 else deciles[k]
        where = (texture[outside] > low) & (texture[outside] <= deciles[k + 1])
        assert line.n_pixels == where.sum()
        assert line.mse == error[outside][where].sum() / (3 * where.sum())
    # Each kind partitions the outside pixels.
    for kind in (by_distance, by_texture):
        assert kind["n_pixels"].sum() == n
        filled = kind[kind["n_pixels"] > 0]
        assert (filled["n_pixels"] * filled["mse"]).sum() / n == pytest.approx(row["mse_outside"])
        assert (filled["n_pixels"] * filled["mse_vae"]).sum() / n == pytest.approx(
            row["mse_outside_vae"]
        )


# ------------------------------------------------------------- manifests and the table


def test_manifest_defaults_for_the_new_fields(tmp_path: Path) -> None:
    """A manifest without variants: baseline, pass 1, the pipeline's own mechanisms."""
    original, inpaint, inpainted, _ = footprint_case()
    diffusers = write_case(tmp_path / "d", original, inpaint, [inpainted], model="d")
    study = write_case(
        tmp_path / "s", original, inpaint, [inpainted], model="s", top={"pipeline": "study"}
    )
    table = metrics_table([diffusers, study])
    own = {"d": mechanisms.Mechanisms(), "s": mechanisms.pipeline_defaults("study")}
    for _, row in table.iterrows():
        assert (row["variant"], row["pass"]) == ("baseline", 1)
        want = own[row["model"]].record()
        got = {name: row[name] for name in mechanisms.NAMES}
        assert got == {**want, "dtype": ""}  # no variant dtype, no common.dtype
        assert row["vae_roundtrip_sample_path"] == "" and math.isnan(row["mse_outside_vae_sample"])
    assert table.loc[table["model"] == "s", "latent_mask"].item() == latent_mask.PIL_NEAREST
    assert str(table["final_latent_paste"].dtype) == "bool"


def test_variant_dtype_wins_over_the_runs(tmp_path: Path) -> None:
    original, inpaint, inpainted, _ = footprint_case()
    manifest = write_case(
        tmp_path,
        original,
        inpaint,
        [inpainted, inpainted],
        entries=[
            {"variant": "half", "mechanisms": mechanism_record(dtype="float16")},
            {},
        ],
        top={"common": {"dtype": "float32"}},
    )
    table = metrics_table([manifest])
    assert dict(zip(table["variant"], table["dtype"], strict=True)) == {
        "baseline": "float32",
        "half": "float16",
    }


def test_rows_sort_by_variant_and_pass(tmp_path: Path) -> None:
    original, inpaint, inpainted, _ = footprint_case()
    three = mechanism_record(passes=3)
    entries = [
        {"seed": 0, "variant": "z", "pass": 2, "mechanisms": three},
        {"seed": 0, "variant": "a", "pass": 3, "mechanisms": three},
        {"seed": 0},
        {"seed": 0, "variant": "z", "pass": 1, "mechanisms": three},
        {"seed": 0, "variant": "a", "pass": 1, "mechanisms": three},
    ]
    manifest = write_case(tmp_path, original, inpaint, [inpainted] * 5, entries=entries)
    table, profile = metrics_tables([manifest])
    assert list(zip(table["variant"], table["pass"], strict=True)) == [
        ("a", 1),
        ("a", 3),
        ("baseline", 1),
        ("z", 1),
        ("z", 2),
    ]
    # The profile: 7 distance and 10 texture rows per inpainting, in the same order.
    assert len(profile) == 17 * 5
    firsts = profile.iloc[::17]
    assert list(zip(firsts["variant"], firsts["pass"], strict=True)) == list(
        zip(table["variant"], table["pass"], strict=True)
    )
    assert list(profile["kind"][:17]) == ["distance"] * 7 + ["texture"] * 10


@pytest.mark.parametrize(
    ("change", "label"),
    [
        (lambda m: m.update(unet_in_channels="4"), "'unet_in_channels'"),
        (lambda m: m.update(unet_in_channels=5), "'unet_in_channels'"),
        (lambda m: m.update(vae_roundtrip_sample_path=3), "'vae_roundtrip_sample_path'"),
        (lambda m: m.update(common={"dtype": 16}), "'common.dtype'"),
        (lambda m: m["inpaintings"][0].update(variant=1), "'inpaintings[0].variant'"),
        (lambda m: m["inpaintings"][0].update({"pass": 1.0}), "'inpaintings[0].pass'"),
        (lambda m: m["inpaintings"][0].update({"pass": 0}), "'inpaintings[0].pass'"),
        (lambda m: m["inpaintings"][0].update({"pass": 2}), "'inpaintings[0].pass'"),
        (lambda m: m["inpaintings"][0].update(mechanisms="cover"), "'inpaintings[0].mechanisms'"),
        (
            lambda m: m["inpaintings"][0]["mechanisms"].pop("passes"),
            "'inpaintings[0].mechanisms.passes'",
        ),
        (
            lambda m: m["inpaintings"][0]["mechanisms"].update(speed=1),
            "'inpaintings[0].mechanisms'",
        ),
        (
            lambda m: m["inpaintings"][0]["mechanisms"].update(latent_mask="bilinear"),
            "'inpaintings[0].mechanisms.latent_mask'",
        ),
        (
            lambda m: m["inpaintings"][0]["mechanisms"].update(final_latent_paste=1),
            "'inpaintings[0].mechanisms.final_latent_paste'",
        ),
        (
            lambda m: m["inpaintings"][0]["mechanisms"].update(paste_blur_px="4"),
            "'inpaintings[0].mechanisms.paste_blur_px'",
        ),
        (
            lambda m: m["inpaintings"][0]["mechanisms"].update(dtype=16),
            "'inpaintings[0].mechanisms.dtype'",
        ),
        (
            lambda m: m["inpaintings"][0]["mechanisms"].update(passes=0),
            "'inpaintings[0].mechanisms.passes'",
        ),
        (lambda m: m.update(pipeline="other"), "unknown pipeline 'other'"),
    ],
)
def test_malformed_new_fields_name_manifest_and_key(tmp_path: Path, change, label) -> None:
    original, inpaint, inpainted, _ = footprint_case()
    manifest = write_case(
        tmp_path, original, inpaint, [inpainted], entries=[{"mechanisms": mechanism_record()}]
    )
    data = json.loads(Path(manifest).read_text())
    if label.startswith("unknown pipeline"):
        data["inpaintings"][0].pop("mechanisms")
    change(data)
    Path(manifest).write_text(json.dumps(data))
    with pytest.raises(InputError) as info:
        metrics_table([manifest])
    message = str(info.value)
    assert manifest in message and label in message and "\n" not in message


def test_manifest_reader_knows_every_mechanism() -> None:
    assert tuple(_MECHANISM_KINDS) == mechanisms.NAMES


def test_schemas_document_every_column() -> None:
    for name, columns in (("metrics", COLUMNS), ("profile", PROFILE_COLUMNS)):
        schema = yaml.safe_load((SCHEMAS / f"{name}.columns.yaml").read_text())
        assert schema["table"] == name
        assert [c["name"] for c in schema["columns"]] == list(columns)
        for column in schema["columns"]:
            assert column["definition"].strip() and "unit" in column, column["name"]
    profile = yaml.safe_load((SCHEMAS / "profile.columns.yaml").read_text())["columns"]
    assert {c["name"]: c["dtype"] for c in profile} == PROFILE_DTYPES


def test_without_the_decomposition(tmp_path: Path) -> None:
    """The benchmark's baseline: the same table with the decomposition's columns NaN
    and no profile; the other columns unchanged."""
    manifest, _ = strip_case(tmp_path)
    full, profile = metrics_tables([manifest])
    bare, none = metrics_tables([manifest], decompose=False)
    assert len(none) == 0 and list(none.columns) == list(PROFILE_COLUMNS) and len(profile) == 17
    new = [c for c in COLUMNS if c.startswith(("excess", "mse_outside_part", "shift_", "bb_"))]
    new += ["delta_e_outside", "ssim_outside", "texture_spearman", "mse_outside_vae_sample"]
    new += [*FOOTPRINT, "mse_seam_inside", "seam_step", "seam_step_original", "seam_step_excess"]
    assert bare[new].isna().all().all() and (bare["n_seam_inside"] == 0).all()
    kept = [c for c in COLUMNS if c not in (*new, "n_seam_inside")]
    pd.testing.assert_frame_equal(bare[kept], full[kept], check_exact=True)
