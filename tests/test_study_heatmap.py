"""The study's heatmap (thesis Figs 4.4-4.9): |gray(a) - gray(b)| with skimage's luminance
weights, the disc equal (white) in both images, min-max normalised per map. Expected
values are worked out by hand from the weights 0.2125, 0.7154, 0.0721 (R, G, B) on
values scaled to [0, 1]."""

from __future__ import annotations

import numpy as np
import pytest

from maskleak.errors import InputError
from maskleak.figures.heatmaps import STUDY_GRAY_WEIGHTS, study_heatmap, white_disc

R, G, B = 0.2125, 0.7154, 0.0721


def _pair() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """2x3 original, all 100. Inpainted: (0,0) red +51, (0,1) green -100, (0,2) blue
    +255-100 = +155, (1,0) unchanged, (1,1) inside the mask and changed everywhere,
    (1,2) red +101 and green -30 (nearly cancelling in luminance)."""
    a = np.full((2, 3, 3), 100, dtype=np.uint8)
    b = a.copy()
    b[0, 0, 0] = 151
    b[0, 1, 1] = 0
    b[0, 2, 2] = 255
    b[1, 1] = (0, 255, 7)
    b[1, 2, 0], b[1, 2, 1] = 201, 70
    mask = np.zeros((2, 3), dtype=bool)
    mask[1, 1] = True
    return a, b, mask


def test_exact_values_on_a_small_pair() -> None:
    a, b, mask = _pair()
    a_before, b_before = a.copy(), b.copy()
    heat = study_heatmap(a, b, mask)
    assert heat.dtype == np.float64 and heat.shape == (2, 3)
    # |gray difference| per pixel, in 8-bit levels / 255: red 51 R, green 100 G,
    # blue 155 B, 0, 0 (the disc: white in both), |101 R - 30 G|.
    diff = np.array([[51 * R, 100 * G, 155 * B], [0.0, 0.0, abs(101 * R - 30 * G)]]) / 255
    # min 0 (unchanged pixel and disc), max the green change 100 G / 255.
    np.testing.assert_allclose(heat, diff / (100 * G / 255), rtol=1e-12, atol=1e-15)
    assert heat[0, 1] == 1.0 and heat[1, 0] == 0.0 and heat[1, 1] == 0.0
    # 101 R - 30 G = 21.4625 - 21.462 = 0.0005: a red +101 / green -30 change all but
    # vanishes (luminance, not squared error, whose mean here would be (101² + 30²)/3).
    assert heat[1, 2] == pytest.approx(0.0005 / (100 * G), rel=1e-9)
    np.testing.assert_array_equal(a, a_before)
    np.testing.assert_array_equal(b, b_before)


def test_pure_channel_changes_give_skimages_weights() -> None:
    # Each pixel changes one channel from 0 to 255: the gray differences are exactly the
    # rgb2gray weights; the unchanged pixel is the minimum (0), green the maximum.
    a = np.zeros((1, 4, 3), dtype=np.uint8)
    b = a.copy()
    b[0, 0, 0] = b[0, 1, 1] = b[0, 2, 2] = 255
    heat = study_heatmap(a, b, np.zeros((1, 4), dtype=bool))
    np.testing.assert_allclose(heat[0], [R / G, 1.0, B / G, 0.0], rtol=1e-12)
    assert STUDY_GRAY_WEIGHTS == (R, G, B)


def test_minimum_is_subtracted_when_no_pixel_is_unchanged() -> None:
    # Green changes of 10, 30 and 70 levels and no mask: (d - 10) / (70 - 10).
    a = np.zeros((1, 3, 3), dtype=np.uint8)
    b = a.copy()
    b[0, :, 1] = (10, 30, 70)
    heat = study_heatmap(a, b, np.zeros((1, 3), dtype=bool))
    np.testing.assert_allclose(heat[0], [0.0, 20 / 60, 1.0], rtol=1e-12, atol=1e-15)


def test_constant_map_is_all_zeros() -> None:
    a = np.full((3, 2, 3), 9, dtype=np.uint8)
    b = a.copy()
    mask = np.zeros((3, 2), dtype=bool)
    mask[0, 0] = True
    b[0, 0] = 200  # only inside the disc: white in both, so the map is constant 0
    np.testing.assert_array_equal(study_heatmap(a, b, mask), np.zeros((3, 2)))


def test_white_disc_paints_only_the_mask() -> None:
    a = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3)
    mask = np.array([[True, False], [False, False]])
    out = white_disc(a, mask)
    np.testing.assert_array_equal(out[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(out[~mask], a[~mask])
    assert a[0, 0, 0] == 0  # a copy


def test_bad_inputs_are_input_errors() -> None:
    a = np.zeros((2, 2, 3), dtype=np.uint8)
    mask = np.zeros((2, 2), dtype=bool)
    with pytest.raises(InputError, match="shapes differ"):
        study_heatmap(a, np.zeros((2, 3, 3), dtype=np.uint8), mask)
    with pytest.raises(InputError, match="uint8"):
        study_heatmap(a.astype(np.float64), a, mask)
    with pytest.raises(InputError, match="mask"):
        study_heatmap(a, a, np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(InputError, match="mask"):
        study_heatmap(a, a, np.zeros((3, 2), dtype=bool))
