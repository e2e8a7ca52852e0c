"""The tiny models' training data: licences, held-out evaluation images, crops, masks."""

from __future__ import annotations

import inspect
import math
import re
import socket
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from maskleak.errors import InputError
from maskleak.landscapes import generate_landscape
from maskleak.mask_families import rectangle_mask, strokes_mask
from maskleak.provenance import pixel_sha256
from maskleak.sources import SKIMAGE_FILES, fetch_image
from maskleak.training import data
from maskleak.training.data import (
    COPY_MAD,
    EVAL_PHOTOS,
    EXCLUDED_PHOTOS,
    MASK_KINDS,
    PHOTO_LICENCES,
    TRAIN_LANDSCAPE_SEEDS,
    TRAIN_PHOTOS,
    copy_distance,
    crop_batch,
    landscape_size,
    load_photo,
    mask_batch,
    random_crops,
    random_masks,
    short_side_size,
    shrink,
    training_images,
)

REPO = Path(__file__).resolve().parents[1]
#: skimage.data entries that are helpers, not image samples.
SKIMAGE_HELPERS = {"download_all", "file_hash", "lbp_frontal_face_cascade_filename", "data_dir"}


@pytest.fixture(scope="module")
def train_set() -> tuple[list[np.ndarray], dict]:
    return training_images(seed=0)


@pytest.fixture(scope="module")
def eval_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    """The default config's images, fetched as the workflow's download stage does."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    folder = tmp_path_factory.mktemp("eval")
    images = {}
    for name, spec in config["images"].items():
        assert spec["kind"] in ("skimage", "procedural"), spec
        fetch_image(spec, folder / f"{name}.png", name)
        images[name] = np.asarray(Image.open(folder / f"{name}.png").convert("RGB"))
    return images


# ----------------------------------------------------------------------- photos, licences


def _plain(doc: str) -> str:
    """A docstring without reStructuredText links/backticks and with single spaces."""
    doc = re.sub(r"\s*<[^>]*>`_+", "", doc)
    return " ".join(doc.replace("`", "").split())


def test_every_training_photo_states_its_licence_in_skimage() -> None:
    import skimage.data

    for name, words in PHOTO_LICENCES.items():
        doc = _plain(inspect.getdoc(getattr(skimage.data, name)) or "")
        assert words in doc, name
        assert re.search(r"CC0|public domain|[Nn]o (known )?copyright restrictions", words), name


def test_every_skimage_sample_is_trained_on_or_excluded_with_a_reason() -> None:
    import skimage.data

    samples = set(skimage.data.__all__) - SKIMAGE_HELPERS
    assert samples <= set(TRAIN_PHOTOS) | set(EXCLUDED_PHOTOS), samples - set(EXCLUDED_PHOTOS)
    assert not set(TRAIN_PHOTOS) & set(EXCLUDED_PHOTOS)
    assert not set(TRAIN_PHOTOS) & EVAL_PHOTOS


def test_every_training_photo_loads_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import skimage.data

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    for name in TRAIN_PHOTOS:
        assert (Path(skimage.data.data_dir) / SKIMAGE_FILES[name]).is_file(), name
        photo = load_photo(name)
        raw = np.asarray(getattr(skimage.data, name)())
        assert photo.dtype == np.uint8 and photo.shape == raw.shape[:2] + (3,), name
        if raw.ndim == 2:  # greyscale replicated to RGB, values unchanged
            for channel in range(3):
                np.testing.assert_array_equal(photo[..., channel], raw)
        else:
            np.testing.assert_array_equal(photo, raw)


def test_non_training_photos_are_refused() -> None:
    for name in ("astronaut", "cat", "eagle", "nonsense"):
        with pytest.raises(InputError, match=f"'{name}' is not one of TRAIN_PHOTOS"):
            load_photo(name)


# --------------------------------------------------------------------- held-out eval set


def test_eval_images_are_held_out_by_name_and_seed() -> None:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    names = {s["name"] for s in config["images"].values() if s["kind"] == "skimage"}
    seeds = {s["seed"] for s in config["images"].values() if s["kind"] == "procedural"}
    assert names == {"astronaut", "coffee", "rocket", "chelsea"} <= EVAL_PHOTOS
    assert not names & set(TRAIN_PHOTOS)
    assert seeds == {1, 2}
    assert not (seeds | {0, 3, 4}) & set(TRAIN_LANDSCAPE_SEEDS)  # eval and test seeds
    assert len(set(TRAIN_LANDSCAPE_SEEDS)) == len(TRAIN_LANDSCAPE_SEEDS) == 64


def test_copy_check_detects_an_eval_image(eval_images: dict[str, np.ndarray]) -> None:
    """Controls for the next test: skimage's cat is chelsea, landscape 1 is landscape_1."""
    import skimage.data

    cat = shrink(np.asarray(skimage.data.cat()))
    assert copy_distance(cat, eval_images["chelsea"]) < COPY_MAD
    land = shrink(generate_landscape(1, 640, 480)[0])
    assert copy_distance(land, eval_images["landscape_1"]) < COPY_MAD


def test_no_training_image_is_an_eval_image(
    train_set: tuple[list[np.ndarray], dict], eval_images: dict[str, np.ndarray]
) -> None:
    images, _ = train_set
    for i, image in enumerate(images):
        for name, other in eval_images.items():
            assert copy_distance(image, other) > COPY_MAD, (i, name)
    for photo_name in TRAIN_PHOTOS:  # and at the photos' bundled sizes
        photo = load_photo(photo_name)
        for name, other in eval_images.items():
            assert copy_distance(photo, other) > COPY_MAD, (photo_name, name)


# ------------------------------------------------------------------------ training_images


def test_short_side_size_exact_values() -> None:
    assert short_side_size(400, 300) == (341, 256)  # 400 * 256 / 300 = 341.33
    assert short_side_size(1000, 872) == (294, 256)  # 293.58
    assert short_side_size(640, 480) == (341, 256)
    assert short_side_size(448, 172) == (448, 172)  # never enlarged
    assert short_side_size(600, 400, 100) == (150, 100)
    assert short_side_size(3, 2, 1) == (2, 1)  # 1.5 rounds half up


def test_training_images_shapes_and_provenance(train_set: tuple[list[np.ndarray], dict]) -> None:
    images, prov = train_set
    records = prov["images"]
    assert len(images) == len(records) == len(TRAIN_PHOTOS) + len(TRAIN_LANDSCAPE_SEEDS)
    assert [r.get("name") for r in records[: len(TRAIN_PHOTOS)]] == list(TRAIN_PHOTOS)
    assert [r.get("seed") for r in records[len(TRAIN_PHOTOS) :]] == list(TRAIN_LANDSCAPE_SEEDS)
    for image, record in zip(images, records, strict=True):
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        h, w = image.shape[:2]
        assert record["size"] == [w, h]
        assert record["pixel_sha256"] == pixel_sha256(image)
        src_w, src_h = record["source_size"]
        assert min(w, h) == min(256, src_w, src_h)
        if record["kind"] == "skimage":
            assert record["licence"] == PHOTO_LICENCES[record["name"]]
        else:
            assert tuple(record["source_size"]) == landscape_size(record["seed"], 0)
    assert prov["excluded_photos"]["cat"].startswith("evaluation image")


def test_training_images_match_their_sources(train_set: tuple[list[np.ndarray], dict]) -> None:
    images, prov = train_set
    # A photo: bicubic shrink of the bundled pixels (clock, 400x300 -> 341x256).
    k = TRAIN_PHOTOS.index("clock")
    import skimage.data

    grey = Image.fromarray(skimage.data.clock()).convert("RGB")
    expected = np.asarray(grey.resize((341, 256), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(images[k], expected)
    # A landscape: generated at its recorded size, then shrunk the same way.
    k = len(TRAIN_PHOTOS) + 5
    record = prov["images"][k]
    rgb, _ = generate_landscape(record["seed"], *record["source_size"])
    expected = np.asarray(
        Image.fromarray(rgb).resize(tuple(record["size"]), Image.Resampling.BICUBIC)
    )
    np.testing.assert_array_equal(images[k], expected)


def test_training_images_deterministic_and_seeded(
    train_set: tuple[list[np.ndarray], dict],
) -> None:
    seeds = TRAIN_LANDSCAPE_SEEDS[:8]
    again, prov = training_images(seed=0, landscape_seeds=seeds)
    full, full_prov = train_set
    for a, b in zip(again, full[: len(again)], strict=False):  # a subset draws the same
        np.testing.assert_array_equal(a, b)
    other, other_prov = training_images(seed=1, landscape_seeds=seeds)
    sizes0 = [r["source_size"] for r in prov["images"] if r["kind"] == "procedural"]
    sizes1 = [r["source_size"] for r in other_prov["images"] if r["kind"] == "procedural"]
    assert sizes0 != sizes1
    all_sizes = {tuple(r["source_size"]) for r in full_prov["images"] if r["kind"] != "skimage"}
    assert all_sizes == set(data.LANDSCAPE_SIZES_PX)  # every size used across 64 seeds


def test_training_images_refuses_reserved_seeds() -> None:
    with pytest.raises(InputError, match=r"landscape seeds \[1, 3\] are below 100"):
        training_images(landscape_seeds=[100, 3, 1])
    with pytest.raises(InputError, match="seed must be >= 0"):
        training_images(seed=-1, landscape_seeds=[])


# ------------------------------------------------------------------------------- crops


def _coordinate_images() -> list[np.ndarray]:
    """Images whose pixels spell out where they are: R = row, G = column, B = index."""
    images = []
    for i, (h, w) in enumerate([(40, 50), (64, 33), (35, 90)]):
        rows, cols = np.mgrid[0:h, 0:w]
        images.append(np.stack([rows, cols, np.full_like(rows, i)], axis=-1).astype(np.uint8))
    return images


def test_crops_are_exact_sub_arrays_of_their_sources() -> None:
    images = _coordinate_images()
    crops, positions = crop_batch(images, 300, 20, 30, seed=5)
    assert crops.shape == (300, 20, 30, 3) and crops.dtype == np.uint8
    assert positions.shape == (300, 4) and positions.dtype == np.int64
    flips = 0
    for crop, (index, top, left, flipped) in zip(crops, positions, strict=True):
        # Decode where the crop came from out of its own pixels, not from the positions.
        i = int(crop[0, 0, 2])
        row0 = int(crop[0, 0, 0])
        first_col, last_col = int(crop[0, 0, 1]), int(crop[0, -1, 1])
        mirrored = first_col > last_col
        col0 = min(first_col, last_col)
        rows, cols = np.mgrid[row0 : row0 + 20, col0 : col0 + 30]
        expected = np.stack([rows, cols, np.full_like(rows, i)], axis=-1).astype(np.uint8)
        if mirrored:
            expected = expected[:, ::-1]
        np.testing.assert_array_equal(crop, expected)
        h, w = images[i].shape[:2]
        assert row0 + 20 <= h and col0 + 30 <= w
        assert (index, top, left, flipped) == (i, row0, col0, int(mirrored))
        flips += mirrored
    assert 100 < flips < 200  # p = 1/2
    counts = np.bincount(positions[:, 0], minlength=3)
    assert counts.min() > 70  # uniform over images (expected 100 each), not by area


def test_crop_positions_reach_both_ends() -> None:
    image = np.zeros((10, 12, 3), np.uint8)
    _, positions = crop_batch([image], 200, 9, 10, seed=0)
    assert set(positions[:, 1]) == {0, 1} and set(positions[:, 2]) == {0, 1, 2}


def test_crops_of_training_images(train_set: tuple[list[np.ndarray], dict]) -> None:
    images, _ = train_set
    crops, positions = crop_batch(images, 50, 64, 64, seed=1)
    for crop, (i, top, left, flipped) in zip(crops, positions, strict=True):
        source = images[i][top : top + 64, left : left + 64]
        np.testing.assert_array_equal(crop, source[:, ::-1] if flipped else source)
    np.testing.assert_array_equal(random_crops(images, 50, 64, 64, seed=1), crops)


def test_crops_deterministic_from_seed() -> None:
    images = _coordinate_images()
    a = random_crops(images, 40, 16, 16, seed=3)
    np.testing.assert_array_equal(a, random_crops(images, 40, 16, 16, seed=3))
    assert not np.array_equal(a, random_crops(images, 40, 16, 16, seed=4))
    assert random_crops(images, 0, 16, 16, seed=3).shape == (0, 16, 16, 3)


def test_crop_input_errors() -> None:
    images = _coordinate_images()
    with pytest.raises(InputError, match=r"training image 1 is 33x64 px, smaller than the 40x30"):
        random_crops(images, 4, 30, 40, seed=0)
    with pytest.raises(InputError, match="the list is empty"):
        random_crops([], 4, 8, 8, seed=0)
    with pytest.raises(InputError, match=r"training image 0 is float64 \(8, 8, 3\)"):
        random_crops([np.zeros((8, 8, 3))], 1, 4, 4, seed=0)
    with pytest.raises(InputError, match="n must be >= 0"):
        random_crops(images, -1, 8, 8, seed=0)


# ------------------------------------------------------------------------------- masks


def _disc(height: int, width: int, cx: float, cy: float, r: float) -> np.ndarray:
    inside = np.zeros((height, width), bool)
    for y in range(height):
        for x in range(width):
            inside[y, x] = math.hypot(x + 0.5 - cx, y + 0.5 - cy) <= r + 1e-9
    return inside


def test_masks_shapes_areas_and_families() -> None:
    masks, records = mask_batch(60, 48, 80, seed=0)
    assert masks.shape == (60, 48, 80) and masks.dtype == bool
    assert {r["kind"] for r in records} == set(MASK_KINDS)
    areas = masks.mean(axis=(1, 2))
    assert areas.min() >= 0.05 and areas.max() <= 0.60
    assert [r["area_frac"] for r in records] == areas.tolist()


def test_masks_redraw_from_their_records() -> None:
    masks, records = mask_batch(30, 40, 56, seed=7)
    for mask, record in zip(masks, records, strict=True):
        if record["kind"] == "disc":
            expected = _disc(
                40, 56, record["centre_x_px"], record["centre_y_px"], record["radius_px"]
            )
            assert (mask != expected).sum() <= 2  # only pixels on the circle's edge may differ
        elif record["kind"] == "box":
            rows, cols = np.nonzero(mask)
            box = np.zeros_like(mask)
            box[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] = True
            np.testing.assert_array_equal(mask, box)  # one filled rectangle
            np.testing.assert_array_equal(mask, rectangle_mask(56, 40, record["box"])[0] == 255)
        else:
            lo, hi = record["area_frac_range"]
            assert lo <= record["area_frac"] <= hi and hi - lo == pytest.approx(0.10)
            again, _ = strokes_mask(
                56,
                40,
                record["seed"],
                record["preset"],
                area_frac=(lo, hi),
                max_attempts=record["max_attempts"],
            )
            np.testing.assert_array_equal(mask, again == 255)


def test_mask_areas_spread_over_the_range() -> None:
    masks = random_masks(300, 64, 64, seed=2)
    areas = masks.mean(axis=(1, 2))
    assert areas.min() >= 0.05 and areas.max() <= 0.60
    assert areas.min() < 0.08 and areas.max() > 0.55  # both ends of 5-60 % are reached


def test_masks_deterministic_from_seed() -> None:
    a = random_masks(20, 32, 32, seed=11)
    np.testing.assert_array_equal(a, random_masks(20, 32, 32, seed=11))
    assert not np.array_equal(a, random_masks(20, 32, 32, seed=12))
    assert random_masks(0, 32, 32, seed=1).shape == (0, 32, 32)


def test_mask_input_errors() -> None:
    with pytest.raises(InputError, match="mask height must be >= 8, got 7"):
        random_masks(2, 7, 32, seed=0)
    with pytest.raises(InputError, match="mask width must be an integer"):
        random_masks(2, 32, 32.0, seed=0)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="n must be >= 0"):
        random_masks(-2, 32, 32, seed=0)


def test_balanced_crops_alternate_sources_and_shuffle_channels() -> None:
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (40, 50, 3), dtype=np.uint8) for _ in range(2)]
    landscapes = [rng.integers(0, 256, (48, 40, 3), dtype=np.uint8) for _ in range(3)]
    for step, source in ((1, photos), (2, landscapes), (7, photos)):
        got = data.balanced_crops(photos, landscapes, 4, 16, 5, step)
        plain = data.balanced_crops(photos, landscapes, 4, 16, 5, step, permute_channels=False)
        crops, _ = crop_batch(source, 4, 16, 16, [5, step])
        assert np.array_equal(plain, crops)
        order = np.random.default_rng([5, step, 1]).permutation(3)
        assert np.array_equal(got, crops[..., order])
        assert got.flags["C_CONTIGUOUS"]
    # Another seed, other crops; the same arguments, the same crops.
    assert not np.array_equal(
        data.balanced_crops(photos, landscapes, 4, 16, 5, 2),
        data.balanced_crops(photos, landscapes, 4, 16, 6, 2),
    )
    assert np.array_equal(
        data.balanced_crops(photos, landscapes, 4, 16, 5, 2),
        data.balanced_crops(photos, landscapes, 4, 16, 5, 2),
    )
