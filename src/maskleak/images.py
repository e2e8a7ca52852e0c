"""Reading images into one canonical form (8-bit RGB, upright) and the study's downsampling.

Everything downstream compares pixels, so every input, whatever its file format, bit
depth, transparency or EXIF orientation, is turned into the same kind of image here,
and anything PIL would only warn about (truncated data, decompression bombs) is an
error instead of a silently wrong picture."""

from __future__ import annotations

import io
import os
import warnings
from fractions import Fraction
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from maskleak.errors import InputError

# Modes that carry transparency; they are flattened onto white (what a viewer shows
# on a white page) so that hidden colour under transparent pixels never leaks in.
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}


def _to_uint8_gray(img: Image.Image) -> Image.Image:
    """16/32-bit integer grey to 8-bit by keeping the high byte, so full-range data maps
    to full range without any per-image stretching (which would differ between images)."""
    arr = np.asarray(img)
    if img.mode == "I":
        arr = np.clip(arr.astype(np.int64), 0, 65535)
    return Image.fromarray((arr.astype(np.uint32) >> 8).astype(np.uint8), mode="L")


def _composite_over_white(rgba: Image.Image) -> Image.Image:
    """Exact integer "over" compositing: out = round((c*a + 255*(255-a)) / 255).

    Written out rather than using ``Image.alpha_composite`` so the rounding is stated
    and tested, not an implementation detail of PIL."""
    arr = np.asarray(rgba.convert("RGBA"), dtype=np.uint32)
    rgb, alpha = arr[..., :3], arr[..., 3:4]
    out = (rgb * alpha + 255 * (255 - alpha) + 127) // 255
    return Image.fromarray(out.astype(np.uint8), mode="RGB")


def to_rgb8(img: Image.Image, label: str = "image") -> Image.Image:
    """Any decoded PIL image as a fresh 8-bit RGB image without alpha or metadata.

    A new image is always returned (no shared buffers, no EXIF/ICC carried along) so
    that saving it cannot re-introduce an orientation tag or profile. ``label`` names
    the source in error messages."""
    mode = img.mode
    if mode in _SIXTEEN_BIT_MODES or mode == "I":
        img = _to_uint8_gray(img)
    elif mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    elif mode == "F":
        # Float images have no agreed value range; guessing one would silently
        # change the pixels we are measuring.
        raise InputError(f"{label}: 32-bit float images (mode F) are not supported")
    if img.mode in _ALPHA_MODES:
        return _composite_over_white(img)
    try:
        rgb = img.convert("RGB")
    except ValueError as exc:
        raise InputError(f"{label}: cannot convert mode {img.mode} to RGB ({exc})") from exc
    return Image.fromarray(np.array(rgb, dtype=np.uint8), mode="RGB")


def _decode(source: IO[bytes], label: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # PIL only warns between MAX_IMAGE_PIXELS and twice that; we want no
            # silent half-way zone, so the warning becomes the error it stands for.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                img.load()
                upright = ImageOps.exif_transpose(img)
                return to_rgb8(upright if upright is not None else img, label)
    except InputError:
        raise
    except UnidentifiedImageError as exc:
        raise InputError(f"{label}: not an image file PIL can read") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(f"{label}: image too large to decode safely ({exc})") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputError(f"{label}: corrupt or truncated image ({exc})") from exc


def load_rgb(path: str | os.PathLike[str], *, label: str | None = None) -> Image.Image:
    """Fully decode an image file into upright 8-bit RGB (see ``to_rgb8``).

    Decoding happens here, not lazily later, so a truncated or corrupt file fails at
    the boundary with a message naming it (``label``, default: the path) instead of
    deep inside a later stage."""
    name = str(path) if label is None else label
    return decode_rgb(io.BytesIO(read_file(path, name)), name)


def read_file(path: str | os.PathLike[str], label: str | None = None) -> bytes:
    """All bytes of a source file; a missing, unreadable or directory path is an
    InputError naming it (``label``, default: the path)."""
    name = os.fspath(path) if label is None else label
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError as exc:
        raise InputError(f"{name}: file not found") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{name}: is a directory, not an image file") from exc
    except PermissionError as exc:
        raise InputError(f"{name}: permission denied") from exc
    except OSError as exc:
        raise InputError(f"{name}: cannot read ({exc})") from exc


def decode_rgb(data: IO[bytes], label: str) -> Image.Image:
    """Like ``load_rgb`` for an open binary file object, e.g. bytes already hashed."""
    start = data.tell()
    empty = data.read(1) == b""
    data.seek(start)
    if empty:
        raise InputError(f"{label}: empty file (0 bytes), not an image")
    return _decode(data, label)


def check_int(value: object, key: str, minimum: int) -> int:
    """``value`` as an int; InputError naming ``key`` unless it is an integer (not a
    bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InputError(f"{key} must be an integer, got {value!r}")
    if value < minimum:
        raise InputError(f"{key} must be >= {minimum}, got {value!r}")
    return int(value)


def downsample_size(width: int, height: int, max_side: int, multiple: int) -> tuple[int, int]:
    """The study's target size: scale so the longest side is at most ``max_side`` (never
    up), then floor each side to a multiple of ``multiple`` (what the UNet needs).

    Exact rational arithmetic, because ``650 * (650/650)`` in floats can land a hair
    under 650 and floor to the wrong multiple."""
    multiple = check_int(multiple, "multiple", 1)
    max_side = check_int(max_side, "max_side", multiple)
    width = check_int(width, "width", 1)
    height = check_int(height, "height", 1)
    longest = max(width, height)
    scale = Fraction(max_side, longest) if longest > max_side else Fraction(1)
    w = int(width * scale / multiple) * multiple
    h = int(height * scale / multiple) * multiple
    if w == 0 or h == 0:
        raise InputError(
            f"{width}x{height} px is too small for downsample.multiple={multiple} "
            f"(downsample.max_side={max_side}): it would become {w}x{h} px"
        )
    return w, h


def downsample(img: Image.Image, max_side: int, multiple: int) -> Image.Image:
    """Resize to ``downsample_size`` with one bicubic step, as the study did.

    An image already at its target size is copied untouched: even an identity-size
    bicubic pass is a resampling we do not want to attribute to the inpainting."""
    size = downsample_size(img.width, img.height, max_side, multiple)
    if size == img.size:
        return img.copy()
    return img.resize(size, Image.Resampling.BICUBIC)


def downsample_png(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    max_side: int,
    multiple: int,
    image: str | None = None,
) -> None:
    """The downsample rule: read ``src``, apply the study's rule, write a PNG that records
    the sizes and parameters.

    ``src`` is a shared download named by a hash, so errors name the image instead, as
    its config key ``images.<image>`` (default: the stem of ``dest``, which the workflow
    names after the image): a file too small for ``downsample.multiple``, a corrupt file."""
    from pathlib import Path

    from maskleak.provenance import save_png

    name = image if image is not None else Path(dest).stem
    try:
        original = load_rgb(src)
        small = downsample(original, max_side, multiple)
    except InputError as exc:
        raise InputError(f"images.{name}: {exc}") from exc
    record = {
        "stage": "downsample",
        "source": os.fspath(src),
        "source_size": list(original.size),
        "size": list(small.size),
        "max_side": max_side,
        "multiple": multiple,
        "resample": "bicubic",
    }
    save_png(small, dest, record)


def read_pixels(
    path: str | os.PathLike[str], mode: str, what: str = "image", hint: str = ""
) -> np.ndarray:
    """Decode a pipeline-made PNG (image, mask, inpainting) to an array in ``mode``
    ("RGB" or "L"); any failure is an InputError naming ``what`` and the file, plus
    ``hint`` (e.g. which rule to rerun)."""
    try:
        with Image.open(path) as img:
            img.load()
            return np.asarray(img.convert(mode))
    except FileNotFoundError:
        raise InputError(f"{what} {os.fspath(path)} not found{hint}") from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        # PIL reports truncated/corrupt PNGs as OSError (UnidentifiedImageError included),
        # SyntaxError ("broken PNG file") or ValueError depending on where decoding stops.
        raise InputError(f"{what} {os.fspath(path)} is not a readable PNG: {exc}") from exc
