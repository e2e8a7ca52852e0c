"""The pipeline's "download" stage: turn one ``images.<name>`` config entry into a
normalised 8-bit RGB PNG with a record of exactly where its pixels came from.

Every kind of source ends in the same place (``images.load_rgb``/``to_rgb8``), so the
rest of the pipeline never needs to know whether an image was a photo, a bundled
sample or a generated landscape. Checksums are checked on the original bytes, before
any decoding, so a changed or tampered source is refused rather than measured."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

from maskleak.errors import InputError
from maskleak.images import decode_rgb, read_file, to_rgb8
from maskleak.landscapes import generate_landscape
from maskleak.provenance import save_png, sha256_bytes
from maskleak.schema import validate_spec

#: scikit-image samples that ship inside the wheel (no network, no pooch), by the
#: ``skimage.data`` function that loads them and the bundled file whose bytes are
#: hashed for provenance. Licences differ per image; see each function's docstring.
#: The schema's ``image_source`` (kind skimage) lists exactly these names.
SKIMAGE_FILES: dict[str, str] = {
    "astronaut": "astronaut.png",
    "brick": "brick.png",
    "camera": "camera.png",
    "cell": "cell.png",
    "chelsea": "chelsea.png",
    "clock": "clock_motion.png",
    "coffee": "coffee.png",
    "coins": "coins.png",
    "colorwheel": "color.png",
    "grass": "grass.png",
    "gravel": "gravel.png",
    "hubble_deep_field": "hubble_deep_field.jpg",
    "immunohistochemistry": "ihc.png",
    "logo": "logo.png",
    "microaneurysms": "microaneurysms.png",
    "moon": "moon.png",
    "page": "page.png",
    "retina": "retina.jpg",
    "rocket": "rocket.jpg",
    "text": "text.png",
}

#: Socket timeout for URL sources; a stalled server fails the job instead of hanging it.
URL_TIMEOUT_S = 60
#: Downloads larger than this are refused (no photo the study uses comes close), so a
#: wrong URL cannot fill the disk before the checksum gets a chance to reject it.
MAX_DOWNLOAD_BYTES = 512 * 1024 * 1024


def _from_skimage(sample: str) -> tuple[Image.Image, str]:
    import skimage.data

    array = np.asarray(getattr(skimage.data, sample)())
    if array.dtype != np.uint8 or array.ndim not in (2, 3):
        raise InputError(
            f"scikit-image sample {sample!r} is {array.dtype} {array.shape}, not an 8-bit image"
        )
    image = Image.fromarray(array)
    source_hash = sha256_bytes(read_file(Path(skimage.data.data_dir) / SKIMAGE_FILES[sample]))
    return to_rgb8(image, f"scikit-image sample {sample!r}"), source_hash


def _from_procedural(spec: Mapping[str, Any]) -> tuple[np.ndarray, str]:
    rgb, _ = generate_landscape(spec["seed"], spec["width"], spec["height"])
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", compress_level=6)
    return rgb, sha256_bytes(buffer.getvalue())


def _from_file(spec: Mapping[str, Any]) -> tuple[Image.Image, str]:
    path = Path(spec["path"])  # relative paths resolve against the working directory
    # Read once and decode those same bytes, so the hash and the pixels cannot come
    # from two different versions of a file that changes underneath us.
    data = read_file(path)
    actual = sha256_bytes(data)
    expected = spec.get("sha256")
    if expected is not None and actual != expected.lower():
        raise InputError(f"{path}: SHA-256 mismatch: expected {expected.lower()}, got {actual}")
    return decode_rgb(io.BytesIO(data), str(path)), actual


def _download(url: str, sink: IO[bytes]) -> str:
    """Stream ``url`` into ``sink``; return the SHA-256 of exactly the bytes received."""
    # Some hosts (e.g. Wikimedia) reject urllib's default agent string outright.
    request = urllib.request.Request(url, headers={"User-Agent": "maskleak-download/0.1"})
    digest = hashlib.sha256()
    size = 0
    try:
        with urllib.request.urlopen(request, timeout=URL_TIMEOUT_S) as response:
            while chunk := response.read(1 << 20):
                size += len(chunk)
                if size > MAX_DOWNLOAD_BYTES:
                    raise InputError(
                        f"{url}: download exceeds {MAX_DOWNLOAD_BYTES} bytes; refusing"
                    )
                digest.update(chunk)
                sink.write(chunk)
    except InputError:
        raise
    except urllib.error.HTTPError as exc:
        raise InputError(f"{url}: download failed: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise InputError(f"{url}: download failed: {exc.reason}") from exc
    except (OSError, ValueError) as exc:  # timeouts, resets, malformed responses
        raise InputError(f"{url}: download failed: {exc}") from exc
    return digest.hexdigest()


def _from_url(spec: Mapping[str, Any]) -> tuple[Image.Image, str]:
    url: str = spec["url"]
    expected = spec["sha256"].lower()
    # An anonymous temporary file is unlinked at once, so nothing is left behind even
    # if the process is killed mid-download.
    with tempfile.TemporaryFile() as sink:
        actual = _download(url, sink)
        if actual != expected:
            raise InputError(f"{url}: SHA-256 mismatch: expected {expected}, got {actual}")
        sink.seek(0)
        return decode_rgb(sink, url), actual


def fetch_image(spec: Mapping[str, Any], dest: str | os.PathLike[str], name: str) -> None:
    """Write image ``name`` described by ``spec`` to ``dest`` as an 8-bit RGB PNG.

    The record holds the whole spec and ``source_sha256`` (the original bytes; for
    procedural images, the PNG encoding of the generated pixels), so an output can be
    traced to its source and a changed source noticed. Any stale ``dest`` is removed
    first, so after a failure no file, old or new, sits where the image should be.

    ``spec`` is checked against the schema's ``image_source`` definition first (the
    workflow has already done so; tests and benchmarks call this directly). ``name`` may
    list several images that share the source (``"a, b"``); every error names them as
    their config keys (``images.a, images.b: ...``)."""
    target = Path(dest)
    target.unlink(missing_ok=True)
    validate_spec(spec, "image_source", f"images.{name}")
    where = ", ".join(f"images.{n}" for n in name.split(", "))
    kind = spec["kind"]
    pixels: Image.Image | np.ndarray
    try:
        if kind == "skimage":
            pixels, source_hash = _from_skimage(spec["name"])
        elif kind == "procedural":
            pixels, source_hash = _from_procedural(spec)
        elif kind == "file":
            pixels, source_hash = _from_file(spec)
        elif kind == "url":
            pixels, source_hash = _from_url(spec)
        else:
            raise InputError(
                f"a {kind} source is expanded by the workflow into one file source per "
                "image (maskleak.config.expand_image_sources); fetch one of those"
            )
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from exc
    record = {
        "stage": "download",
        "image": name,
        "source": dict(spec),
        "source_sha256": source_hash,
    }
    save_png(pixels, target, record)
