import math

import numpy as np
import pytest
from PIL import Image

from maskleak.errors import InputError
from maskleak.masks import (
    area_frac,
    check_mask,
    circle_mask,
    circle_radius_px,
    inpaint_region,
    write_masks,
)
from maskleak.provenance import read_png_record


@pytest.mark.parametrize(
    ("w", "h", "p", "r"),
    [
        (640, 480, 80, 192),  # floor(0.8 * 480 / 2) = 192
        (640, 480, 20, 48),  # floor(0.2 * 240) = 48
        (512, 384, 21.2244898, 40),  # floor(0.212244898 * 192) = floor(40.75) = 40
        (100, 101, 50, 25),
        (33, 33, 50, 8),  # floor(8.25)
    ],
)
def test_radius_is_floored_study_formula(w, h, p, r):
    assert circle_radius_px(w, h, p) == r


def test_radius_pct_out_of_range_is_an_input_error():
    with pytest.raises(InputError, match="radius_pct"):
        circle_radius_px(64, 64, 0)
    with pytest.raises(InputError, match="radius_pct"):
        circle_radius_px(64, 64, 120)


def test_circle_mask_pixels():
    w, h, p = 64, 48, 50
    assert circle_radius_px(w, h, p) == 12  # floor(0.5 * 48 / 2)
    mask = np.asarray(circle_mask(w, h, p))
    assert mask.shape == (h, w) and mask.dtype == np.uint8
    assert set(np.unique(mask)) == {0, 255}
    ys, xs = np.nonzero(mask)
    # PIL's ellipse box (w/2-r, h/2-r, w/2+r, h/2+r) = (20, 12, 44, 36) is inclusive.
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (20, 44, 12, 36)
    # Centre row and column are fully white across the diameter, corners of the box black.
    assert (mask[24, 20:45] == 255).all() and (mask[12:37, 32] == 255).all()
    assert mask[12, 20] == 0 and mask[36, 44] == 0 and mask[0, 0] == 0
    # Symmetric about the box centre (32, 24).
    box = mask[12:37, 20:45]
    assert (box == box[::-1]).all() and (box == box[:, ::-1]).all()
    # A rasterised disc of radius 12 (diameter 25 px inclusive) covers about pi*12.5^2.
    assert abs(int((mask == 255).sum()) - math.pi * 12.5**2) < 0.05 * math.pi * 12.5**2


def test_area_frac_counts_drawn_pixels():
    mask = np.zeros((4, 5), np.uint8)
    mask[1:3, 1:4] = 255  # 6 of 20 pixels
    assert area_frac(mask) == pytest.approx(0.3)
    assert inpaint_region(Image.fromarray(mask)).sum() == 6


def test_write_masks_sizes_and_records(tmp_path):
    image = tmp_path / "img.png"
    Image.new("RGB", (96, 64)).save(image)
    outs = [str(tmp_path / "r20.png"), str(tmp_path / "r80.png")]
    write_masks(str(image), {"20": 20.0, "80": 80.0}, outs)
    for out, pct in zip(outs, (20.0, 80.0), strict=True):
        mask = np.asarray(Image.open(out))
        assert mask.shape == (64, 96)
        assert (mask == np.asarray(circle_mask(96, 64, pct))).all()
        record = read_png_record(out)
        assert record["radius_pct"] == pct
        assert record["radius_px"] == math.floor(pct / 100 * 64 / 2)


def test_write_masks_unreadable_image_names_file(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with pytest.raises(InputError, match="bad.png"):
        write_masks(str(bad), {"50": 50.0}, [str(tmp_path / "m.png")])
    assert not (tmp_path / "m.png").exists()


def test_check_mask_accepts_drawn_mask_and_rejects_modified(tmp_path):
    """A mask file replaced by hand would be measured under its parameters' label; its
    pixels are checked against what the mask rule draws for those parameters."""
    image = tmp_path / "img.png"
    Image.new("RGB", (96, 64)).save(image)
    path = tmp_path / "r40.png"
    write_masks(str(image), {"40": 40.0}, [str(path)])
    drawn = np.asarray(Image.open(path))
    check_mask(drawn, 40.0, path)  # the rule's own mask passes, as L ...
    check_mask(np.asarray(Image.open(path).convert("RGB")), 40.0, path)  # ... or RGB
    check_mask(Image.open(path), 40.0, str(path))  # or as a PIL image
    bigger = np.asarray(circle_mask(96, 64, 60.0))
    edited = drawn.copy()
    edited[0, 0] = 255  # one stray pixel
    for pixels, pct in ((bigger, 40.0), (edited, 40.0), (drawn, 41.0)):
        with pytest.raises(InputError) as info:
            check_mask(pixels, pct, path)
        message = str(info.value)
        assert message.startswith(f"{path}: not drawn by the mask rule")
        assert "delete it" in message and "\n" not in message
    with pytest.raises(InputError, match="its image is 64x96 px"):
        check_mask(drawn, 40.0, path, image_size=(64, 96))
