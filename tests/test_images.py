from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from maskleak.errors import InputError
from maskleak.images import decode_rgb, downsample, downsample_size, load_rgb, to_rgb8

# ---------------------------------------------------------------- downsample_size


@pytest.mark.parametrize(
    ("size", "max_side", "multiple", "expected"),
    [
        ((1000, 750), 650, 32, (640, 480)),  # 650 x 487.5 -> floor to 32
        ((4000, 3000), 650, 32, (640, 480)),
        ((650, 650), 650, 32, (640, 640)),  # not scaled (not > max), only floored
        ((512, 384), 650, 32, (512, 384)),  # already fine: unchanged
        ((300, 100), 650, 32, (288, 96)),
        ((750, 1000), 650, 32, (480, 640)),  # portrait
        ((3000, 4000), 650, 32, (480, 640)),
        ((400, 1300), 650, 32, (192, 640)),  # 200 x 650 -> 192 x 640
        ((1300, 650), 650, 32, (640, 320)),  # 650 x 325 -> 640 x 320
        ((1300, 650), 650, 1, (650, 325)),  # multiple 1: exact scaling, no float drift
        ((651, 651), 650, 1, (650, 650)),
        ((6500, 4875), 650, 1, (650, 487)),  # 487.5 floors
        ((64, 64), 64, 64, (64, 64)),
    ],
)
def test_downsample_size_exact_cases(size, max_side, multiple, expected):
    assert downsample_size(*size, max_side, multiple) == expected


def test_downsample_size_exact_arithmetic_where_floats_drift():
    # Naive floats: 1101 * (650 / 1101) = 649.999... -> 649, and
    # 720 * (650 / 1125) / 32 = 12.999... -> 384 instead of 416.
    assert downsample_size(1101, 800, 650, 1) == (650, 472)
    assert downsample_size(1125, 720, 650, 32) == (640, 416)
    for longest in range(651, 3000, 7):
        for other in (333, 599, longest):
            assert downsample_size(longest, other, 650, 1) == (650, other * 650 // longest)
            assert downsample_size(other, longest, 650, 32) == (
                other * 650 // longest // 32 * 32,
                640,
            )


def test_downsample_size_too_small_raises():
    with pytest.raises(InputError, match=r"^31x500 px is too small for downsample\.multiple=32"):
        downsample_size(31, 500, 650, 32)
    with pytest.raises(InputError, match="too small"):
        # 5000 x 100 -> 650 x 13 -> height floors to 0
        downsample_size(5000, 100, 650, 32)


@pytest.mark.parametrize(
    ("args", "key"),
    [
        ((100, 100, 650, 0), "multiple"),
        ((100, 100, 16, 32), "max_side"),
        ((0, 100, 650, 32), "width"),
        ((100, -1, 650, 32), "height"),
        ((100, 100, 650.0, 32), "max_side"),
        ((100, 100, 650, True), "multiple"),
    ],
)
def test_downsample_size_rejects_bad_parameters(args, key):
    with pytest.raises(InputError, match=key):
        downsample_size(*args)


# ---------------------------------------------------------------- downsample


def _noise_rgb(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_downsample_unchanged_size_is_pixel_identical_copy():
    img = _noise_rgb(512, 384)
    out = downsample(img, 650, 32)
    assert out.size == (512, 384)
    assert out is not img
    assert np.array_equal(np.asarray(out), np.asarray(img))


def test_downsample_is_one_bicubic_resize():
    img = _noise_rgb(1000, 750)
    out = downsample(img, 650, 32)
    assert out.size == (640, 480)
    expected = img.resize((640, 480), Image.Resampling.BICUBIC)
    assert np.array_equal(np.asarray(out), np.asarray(expected))
    # and not some other filter
    other = img.resize((640, 480), Image.Resampling.LANCZOS)
    assert not np.array_equal(np.asarray(out), np.asarray(other))


def test_downsample_floor_only_crops_nothing_but_resamples():
    img = _noise_rgb(650, 650)
    out = downsample(img, 650, 32)
    assert out.size == (640, 640)


# ---------------------------------------------------------------- load_rgb: modes


def test_rgba_composited_over_white_exactly(tmp_path):
    px = np.array(
        [[[255, 0, 0, 128], [0, 0, 0, 0], [10, 20, 30, 255], [0, 100, 200, 1]]], dtype=np.uint8
    )
    path = tmp_path / "rgba.png"
    Image.fromarray(px, mode="RGBA").save(path)
    out = load_rgb(path)
    assert out.mode == "RGB"
    # round((c*a + 255*(255-a)) / 255) per channel
    expected = [[[255, 127, 127], [255, 255, 255], [10, 20, 30], [254, 254, 255]]]
    assert np.asarray(out).tolist() == expected


def test_la_composited_over_white(tmp_path):
    path = tmp_path / "la.png"
    Image.fromarray(np.array([[[100, 0], [100, 255], [0, 51]]], dtype=np.uint8), "LA").save(path)
    assert np.asarray(load_rgb(path)).tolist() == [[[255] * 3, [100] * 3, [204] * 3]]


def test_grayscale_to_rgb(tmp_path):
    path = tmp_path / "gray.png"
    Image.fromarray(np.array([[0, 7, 255]], dtype=np.uint8), mode="L").save(path)
    assert np.asarray(load_rgb(path)).tolist() == [[[0] * 3, [7] * 3, [255] * 3]]


def test_palette_to_rgb_and_transparent_index_to_white(tmp_path):
    pal = Image.new("P", (3, 1))
    pal.putpalette([10, 20, 30, 200, 100, 50, 1, 2, 3])
    for x, index in enumerate([0, 1, 2]):
        pal.putpixel((x, 0), index)
    plain = tmp_path / "p.png"
    pal.save(plain)
    assert np.asarray(load_rgb(plain)).tolist() == [[[10, 20, 30], [200, 100, 50], [1, 2, 3]]]
    transparent = tmp_path / "pt.png"
    pal.save(transparent, transparency=0)
    assert np.asarray(load_rgb(transparent)).tolist() == [
        [[255, 255, 255], [200, 100, 50], [1, 2, 3]]
    ]


def test_16bit_gray_keeps_high_byte(tmp_path):
    path = tmp_path / "g16.png"
    values = np.array([[0, 255, 256, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I;16")  # the case we mean to test
    out = np.asarray(load_rgb(path))
    assert out[..., 0].tolist() == [[0, 0, 1, 128, 255]]
    assert np.array_equal(out[..., 0], out[..., 2])


def test_32bit_int_clipped_then_high_byte(tmp_path):
    path = tmp_path / "i32.tif"
    values = np.array([[-5, 1000, 65535, 70000]], dtype=np.int32)
    Image.fromarray(values, mode="I").save(path)
    assert Image.open(path).mode == "I"
    assert np.asarray(load_rgb(path))[..., 1].tolist() == [[0, 3, 255, 255]]


def test_16bit_rgb_png_is_reduced_to_8bit(tmp_path):
    # PIL decodes 16-bit-per-channel RGB PNGs to 8-bit RGB by itself (high byte).
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + np.array([[0x1234, 0xFFFF, 0x0100]], dtype=">u2").tobytes()
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 16, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row))
        + chunk(b"IEND", b"")
    )
    path = tmp_path / "rgb16.png"
    path.write_bytes(png)
    assert np.asarray(load_rgb(path)).tolist() == [[[0x12, 0xFF, 0x01]]]


def test_exif_orientation_applied(tmp_path):
    # 64 x 32 landscape, a blue 16 x 16 block in the top-left corner, rest red.
    px = np.zeros((32, 64, 3), dtype=np.uint8)
    px[..., 0] = 255
    px[:16, :16] = (0, 0, 255)
    img = Image.fromarray(px)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "rotated.jpg"
    img.save(path, exif=exif.tobytes(), quality=95)
    out = load_rgb(path)
    assert out.size == (32, 64)
    arr = np.asarray(out).astype(int)
    # the top-left block is now top-right; the top-left is red
    assert np.abs(arr[4, 27] - [0, 0, 255]).max() < 20
    assert np.abs(arr[4, 4] - [255, 0, 0]).max() < 20
    assert not out.getexif()  # orientation not carried along to be applied twice


def test_to_rgb8_returns_fresh_rgb_and_rejects_float():
    src = Image.fromarray(np.full((2, 2, 3), 9, dtype=np.uint8))
    out = to_rgb8(src)
    assert out is not src and out.mode == "RGB"
    with pytest.raises(InputError, match="thing.*mode F"):
        to_rgb8(Image.new("F", (2, 2)), "thing")


# ---------------------------------------------------------------- load_rgb: bad input


def _valid_png_bytes(tmp_path) -> bytes:
    path = tmp_path / "valid.png"
    _noise_rgb(64, 64).save(path)
    return path.read_bytes()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"just some text, not an image\n", "not an image"),
        (b"", "empty file"),
        ("half-png", "truncated"),
        ("png-header-only", "truncated"),
    ],
)
def test_bad_files_raise_input_error_naming_path(tmp_path, content, message):
    path = tmp_path / "bad input.png"
    if content == "half-png":
        data = _valid_png_bytes(tmp_path)
        content = data[: len(data) // 2]
    elif content == "png-header-only":
        content = _valid_png_bytes(tmp_path)[:60]
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        load_rgb(path)
    assert str(path) in str(info.value)


def test_missing_file_and_directory(tmp_path):
    missing = tmp_path / "nope.jpg"
    with pytest.raises(InputError, match="not found") as info:
        load_rgb(missing)
    assert str(missing) in str(info.value)
    with pytest.raises(InputError, match="directory") as info:
        load_rgb(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_decompression_bomb_is_an_error_not_a_warning(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    _noise_rgb(20, 10).save(path)  # 200 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 150)  # 200 > 150: PIL would only warn
    with pytest.raises(InputError, match="too large") as info:
        load_rgb(path)
    assert str(path) in str(info.value)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)  # > 2x: PIL raises
    with pytest.raises(InputError, match="too large"):
        load_rgb(path)


def test_decode_rgb_uses_label_in_messages(tmp_path):
    import io

    with pytest.raises(InputError, match=r"^https://example\.org/x\.png: not an image"):
        decode_rgb(io.BytesIO(b"<html>404</html>"), "https://example.org/x.png")
    with pytest.raises(InputError, match="my-label: empty"):
        decode_rgb(io.BytesIO(b""), "my-label")
    png = _valid_png_bytes(tmp_path)
    out = decode_rgb(io.BytesIO(png), "ok")
    assert out.size == (64, 64)


def test_downsample_png_writes_study_size_and_record(tmp_path):
    from maskleak.images import downsample_png
    from maskleak.provenance import read_png_record

    src = tmp_path / "big.png"
    Image.new("RGB", (1000, 750), (10, 20, 30)).save(src)
    dest = tmp_path / "small.png"
    downsample_png(src, dest, max_side=650, multiple=32)
    with Image.open(dest) as out:
        assert out.size == (640, 480)  # 1000x750 -> 650x487.5 -> floored to 640x480
        assert out.getpixel((5, 5)) == (10, 20, 30)
    record = read_png_record(dest)
    assert record["size"] == [640, 480] and record["source_size"] == [1000, 750]


def test_downsample_png_errors_name_the_image(tmp_path):
    """Per-image errors at run time name the image (its config key), not only the
    shared download file, whose name is a hash."""
    from maskleak.images import downsample_png

    src = tmp_path / "0123abcd.png"
    Image.new("RGB", (31, 500)).save(src)
    dest = tmp_path / "results" / "images" / "photo.png"
    with pytest.raises(InputError) as info:
        downsample_png(src, dest, max_side=650, multiple=32)
    assert str(info.value) == (
        "images.photo: 31x500 px is too small for downsample.multiple=32 "
        "(downsample.max_side=650): it would become 0x480 px"
    )
    src.write_bytes(b"not a png")
    with pytest.raises(InputError, match=rf"^images\.other: {re.escape(str(src))}: not an image"):
        downsample_png(src, dest, max_side=650, multiple=32, image="other")
    assert not dest.exists()
