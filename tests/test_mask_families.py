import hashlib
import json
import math

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import distance_transform_edt
from skimage.morphology import disk

from maskleak.errors import InputError
from maskleak.mask_families import (
    STROKE_PRESETS,
    centred_box,
    dilate,
    match_masks_to_images,
    read_user_mask,
    rectangle_mask,
    strokes_mask,
)

# ---------------------------------------------------------------------------- strokes

# strokes_mask(48, 32, seed=7, preset="thin"): inpainted pixels per row, and the sha256 of
# the mask's raw uint8 bytes (row-major, 48*32 bytes). Pinned: a change to the generator,
# its random draws or PIL's line drawing fails here.
PINNED_ROW_COUNTS = [0, 0, 0, 0, 0, 2, 5, 10, 6, 3, 2, 5, 8, 3, 2, 4]
PINNED_ROW_COUNTS += [8, 9, 9, 5, 8, 10, 7, 5, 5, 5, 4, 4, 11, 15, 21, 14]
PINNED_SHA256 = "af5ace3b7711d4b3b460cd71271ae72c50636f38724807da0cfc745fb59d0e63"


def test_strokes_pinned_small_mask():
    mask, params = strokes_mask(48, 32, 7, "thin")
    assert mask.shape == (32, 48) and mask.dtype == np.uint8
    assert set(np.unique(mask)) == {0, 255}
    assert (mask == 255).sum(axis=1).tolist() == PINNED_ROW_COUNTS
    assert sum(PINNED_ROW_COUNTS) == 190
    assert hashlib.sha256(mask.tobytes()).hexdigest() == PINNED_SHA256
    # 0.02..0.04 of the 32 px side rounds to at most 1 px: every brush is the 1 px minimum.
    assert [s["brush_px"] for s in params["strokes"]] == [1] * 5
    assert params["strokes"][0]["vertices"][:3] == [[37, 7], [40, 8], [38, 13]]
    assert params["area_frac_drawn"] == pytest.approx(190 / (48 * 32))


def test_strokes_same_seed_same_pixels_and_params_json():
    a, pa = strokes_mask(96, 64, 3, "medium")
    b, pb = strokes_mask(96, 64, 3, "medium")
    assert np.array_equal(a, b)
    assert json.dumps(pa, sort_keys=True) == json.dumps(pb, sort_keys=True)
    assert pa["seed"] == 3 and pa["preset"] == "medium"
    assert pa["width_frac"] == [0.05, 0.08] and pa["area_frac"] == [0.1, 0.3]
    # Redrawing the recorded strokes gives the same pixels: params say all that made it.
    from maskleak.mask_families import _draw_stroke

    canvas = Image.new("L", (96, 64), 0)
    for stroke in pa["strokes"]:
        _draw_stroke(canvas, stroke["brush_px"], stroke["vertices"])
    assert np.array_equal(np.asarray(canvas), a)


def test_strokes_different_seeds_differ():
    masks = [strokes_mask(96, 64, seed, "medium")[0] for seed in range(4)]
    for i in range(4):
        for j in range(i + 1, 4):
            assert not np.array_equal(masks[i], masks[j])


@pytest.mark.parametrize("preset", sorted(STROKE_PRESETS))
def test_strokes_area_in_target_range(preset):
    for seed in range(20):
        mask, params = strokes_mask(192, 128, seed, preset)
        share = float((mask == 255).mean())
        assert 0.1 <= share <= 0.3, (preset, seed, share)
        assert share == pytest.approx(params["area_frac_drawn"])
        assert params["attempts"] <= params["max_attempts"]


@pytest.mark.parametrize("preset", sorted(STROKE_PRESETS))
def test_strokes_brush_width_in_preset_range(preset):
    width, height = 400, 300
    lo, hi = STROKE_PRESETS[preset]["width_frac"]
    allowed = (math.floor(lo * 300 + 0.5), math.floor(hi * 300 + 0.5))
    measured = 0
    for seed in range(12):
        # One stroke of one segment, so its thickness can be measured alone.
        mask, params = strokes_mask(
            width, height, seed, preset, n_vertices=(1, 1), area_frac=(0, 1), max_attempts=1
        )
        (stroke,) = params["strokes"]
        brush = stroke["brush_px"]
        assert allowed[0] <= brush <= allowed[1]
        xs, ys = zip(*stroke["vertices"], strict=True)
        if (
            min(xs) < brush
            or min(ys) < brush
            or max(xs) > width - brush
            or max(ys) > height - brush
        ):
            continue  # cut by the border: its thickness is not the brush's
        # Widest inscribed disc: 2 * (distance to the nearest kept pixel) - 1 ~ thickness.
        thickness = 2 * distance_transform_edt(np.pad(mask == 255, 1)).max() - 1
        assert abs(thickness - brush) <= 1, (seed, brush, thickness)
        measured += 1
    assert measured >= 5


def test_strokes_bad_options_and_unreachable_area():
    with pytest.raises(InputError, match="preset 'huge'"):
        strokes_mask(64, 64, 0, "huge")
    with pytest.raises(InputError, match="brush_len"):
        strokes_mask(64, 64, 0, "thin", brush_len=3)
    with pytest.raises(InputError, match=r"seed 5: 2 strokes tried .*area_frac 0\.9"):
        strokes_mask(64, 64, 5, "thin", area_frac=(0.9, 1.0), max_attempts=2)


# -------------------------------------------------------------------------- rectangles


@pytest.mark.parametrize(
    ("w", "h", "box", "cols", "rows"),
    [
        # 0.25*10 = 2.5 -> 3 (half up; Python's round gives 2), 0.75*10 = 7.5 -> 8 (excl.)
        (10, 8, (0.25, 0.25, 0.75, 0.75), (3, 7), (2, 5)),
        # 0.3*10 = 3 exactly; 0.44*10 = 4.4 -> 4 (excl.): one column, 3
        (10, 8, (0.3, 0.0, 0.44, 1.0), (3, 3), (0, 7)),
        # 0.05*20 = 1.0, 0.95*20 = 19 (excl.) -> 1..18; rows 0.1*5 = 0.5 -> 1, 0.5*5 = 2.5 -> 3
        (20, 5, (0.05, 0.1, 0.95, 0.5), (1, 18), (1, 2)),
    ],
)
def test_rectangle_pixel_bounds(w, h, box, cols, rows):
    mask, params = rectangle_mask(w, h, box)
    ys, xs = np.nonzero(mask)
    assert (xs.min(), xs.max()) == cols and (ys.min(), ys.max()) == rows
    assert (mask == 255).sum() == (cols[1] - cols[0] + 1) * (rows[1] - rows[0] + 1)
    assert params["cols"] == list(cols) and params["rows"] == list(rows)
    assert params["box"] == list(box)


def test_centred_box():
    assert centred_box(0.5, 0.25) == (0.25, 0.375, 0.75, 0.625)
    mask, _ = rectangle_mask(64, 48, centred_box(0.5, 0.5))
    ys, xs = np.nonzero(mask)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (16, 47, 12, 35)
    with pytest.raises(InputError, match="w_frac"):
        centred_box(0, 0.5)


@pytest.mark.parametrize(
    ("box", "message"),
    [
        ((0.5, 0.2, 0.4, 0.8), "x0 < x1"),
        ((0.1, 0.2, 1.2, 0.8), r"\[0, 1\]"),
        ((0.41, 0.2, 0.44, 0.8), "covers no pixel of a 10x8 image"),  # 4.1 -> 4, 4.4 -> 4
        ((0.0, 0.0, 1.0, 1.0), "covers the whole 10x8 image"),
        ((0.02, 0.0, 1.0, 1.0), "covers the whole"),  # 0.2 -> column 0: still everything
    ],
)
def test_rectangle_errors_name_the_box(box, message):
    with pytest.raises(InputError, match=message) as err:
        rectangle_mask(10, 8, box)
    assert "rectangle box (x0, y0, x1, y1)" in str(err.value)


# -------------------------------------------------------------------------- user masks


def _grey_levels() -> np.ndarray:
    """8x4 grey ramp: left half 127 (keep), right half 128 (inpaint), one 0 and one 255."""
    grey = np.full((4, 8), 127, np.uint8)
    grey[:, 4:] = 128
    grey[0, 0], grey[3, 7] = 0, 255
    return grey


EXPECTED = np.where(_grey_levels() >= 128, 255, 0).astype(np.uint8)


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "P", "I;16"])
def test_user_mask_modes_binarised_at_128(tmp_path, mode):
    grey = _grey_levels()
    if mode == "L":
        img = Image.fromarray(grey, "L")
    elif mode == "LA":
        img = Image.fromarray(np.stack([grey, np.full_like(grey, 7)], -1), "LA")
    elif mode in ("RGB", "RGBA"):
        # Equal channels: luma (299 + 587 + 114) / 1000 keeps the level; alpha is dropped.
        chans = [grey] * 3 + ([np.zeros_like(grey)] if mode == "RGBA" else [])
        img = Image.fromarray(np.stack(chans, -1), mode)
    elif mode == "P":
        img = Image.fromarray(grey, "L").convert("P")
    else:
        img = Image.fromarray(grey.astype(np.uint16))
    assert img.mode == mode
    path = tmp_path / f"m_{mode.replace(';', '')}.png"
    img.save(path)
    mask, params = read_user_mask(path)
    assert np.array_equal(mask, EXPECTED)
    assert params["file_mode"] == mode and params["threshold"] == 128
    assert params["rule"].startswith("grey >= 128 -> inpaint")


def test_user_mask_mode_1_and_coloured_luma(tmp_path):
    bits = np.zeros((4, 6), bool)
    bits[1:3, 2:5] = True
    Image.fromarray(bits).save(tmp_path / "b.png")
    mask, _ = read_user_mask(tmp_path / "b.png")
    assert np.array_equal(mask, np.where(bits, 255, 0))
    # Pure green (0, 255, 0): luma 255*587/1000 = 149.7 -> inpaint; pure red: 76.2 -> keep.
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, :, 1] = 255
    rgb[1, :, 0] = 255
    Image.fromarray(rgb).save(tmp_path / "c.png")
    mask, _ = read_user_mask(tmp_path / "c.png")
    assert mask.tolist() == [[255, 255], [0, 0]]


def test_user_mask_size_mismatch_names_file_and_sizes(tmp_path):
    path = tmp_path / "cat.png"
    Image.fromarray(_grey_levels()).save(path)
    with pytest.raises(InputError) as err:
        read_user_mask(path, size=(16, 8))
    message = str(err.value)
    assert str(path) in message and "8x4 px" in message and "16x8 px" in message
    assert not message.endswith((".", ";", ":"))  # the caller appends " (image NAME)"
    same, _ = read_user_mask(path, size=(8, 4))  # matching size: no error
    assert np.array_equal(same, EXPECTED)


def test_user_mask_resize_is_pil_nearest(tmp_path):
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (13, 17), dtype=np.uint8)
    path = tmp_path / "m.png"
    Image.fromarray(grey).save(path)
    mask, params = read_user_mask(path, size=(40, 30), resize=True)
    expected = np.asarray(Image.fromarray(grey).resize((40, 30), Image.Resampling.NEAREST))
    assert mask.shape == (30, 40)
    assert np.array_equal(mask, np.where(expected >= 128, 255, 0))
    assert params["resized"] is True and params["file_size"] == [17, 13]
    assert params["resample"] == "nearest" and (params["width"], params["height"]) == (40, 30)


def test_user_mask_corrupt_missing_and_uniform(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(InputError, match=f"user mask {bad} is not a readable image"):
        read_user_mask(bad)
    with pytest.raises(InputError, match="missing.png is not a readable image"):
        read_user_mask(tmp_path / "missing.png")
    Image.new("L", (5, 5), 127).save(tmp_path / "keep.png")
    with pytest.raises(InputError, match=r"keep\.png inpaints no pixel"):
        read_user_mask(tmp_path / "keep.png")
    Image.new("L", (5, 5), 128).save(tmp_path / "all.png")
    with pytest.raises(InputError, match=r"all\.png inpaints every pixel"):
        read_user_mask(tmp_path / "all.png")


# ------------------------------------------------------------------------------ dilate


def test_dilate_single_pixel_is_disk_footprint():
    mask = np.zeros((9, 11), np.uint8)
    mask[4, 5] = 255
    grown = dilate(mask, 2)
    expected = np.zeros((9, 11), np.uint8)
    expected[2:7, 3:8] = disk(2) * 255
    assert np.array_equal(grown, expected)
    assert (grown == 255).sum() == 13  # disk(2): 1 + 3 + 5 + 3 + 1
    assert dilate(mask, 0) is mask
    with pytest.raises(InputError, match="dilation"):
        dilate(mask, -1)


def test_dilate_clips_at_border():
    mask = np.zeros((5, 5), np.uint8)
    mask[0, 0] = 255
    grown = dilate(mask, 1)
    assert np.argwhere(grown == 255).tolist() == [[0, 0], [0, 1], [1, 0]]


# ------------------------------------------------------------------------------- match


def test_match_by_stem_and_single_mask(tmp_path):
    files = [tmp_path / "a.png", tmp_path / "b.jpg", tmp_path / "unused.png"]
    matched = match_masks_to_images(files, ["a", "b"])
    assert matched == {"a": str(files[0]), "b": str(files[1])}
    one = match_masks_to_images([tmp_path / "any.png"], ["a", "b"])
    assert one == {"a": str(tmp_path / "any.png"), "b": str(tmp_path / "any.png")}


def test_match_errors_name_folder_and_image(tmp_path):
    with pytest.raises(InputError, match=f"mask folder {tmp_path} has no mask for image c"):
        match_masks_to_images([tmp_path / "a.png", tmp_path / "b.png"], ["a", "c"])
    with pytest.raises(InputError, match="A"):  # case-sensitive: "a.png" does not mask "A"
        match_masks_to_images([tmp_path / "a.png", tmp_path / "b.png"], ["A"])
    with pytest.raises(InputError, match=f"mask folder {tmp_path}: 2 masks for image a"):
        match_masks_to_images([tmp_path / "a.png", tmp_path / "a.jpg"], ["a"])
    with pytest.raises(InputError, match=f"mask folder {tmp_path} holds no mask files"):
        match_masks_to_images([], ["a"], folder=tmp_path)
