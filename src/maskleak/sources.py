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
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

from maskleak.errors import InputError
from maskleak.images import decode_rgb, read_file, to_rgb8
from maskleak.landscapes import MIN_SIDE, generate_landscape
from maskleak.provenance import save_png, sha256_bytes

#: The source kinds ``images.<name>.kind`` may name.
KINDS = ("skimage", "procedural", "file", "url")

#: scikit-image samples that ship inside the wheel (no network, no pooch), by the
#: ``skimage.data`` function that loads them and the bundled file whose bytes are
#: hashed for provenance. Licences differ per image; see each function's docstring.
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

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_KEYS: dict[str, tuple[set[str], set[str]]] = {  # kind -> (required, optional)
    "skimage": ({"name"}, set()),
    "procedural": ({"seed", "width", "height"}, set()),
    "file": ({"path"}, {"sha256"}),
    "url": ({"url", "sha256"}, set()),
}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_sha(value: object, key: str) -> None:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise InputError(f"{key} must be a 64-character hex SHA-256, got {value!r}")


def validate_source(spec: object, name: str) -> None:
    """Check one ``images.<name>`` entry's shape before anything is read or fetched,
    so a typo fails with the config key that holds it, not later with a vague error.

    Unknown keys are errors too: a misspelt ``sha265`` must not silently mean "no
    checksum"."""
    where = f"images.{name}"
    if not isinstance(spec, Mapping):
        raise InputError(f"{where} must be a mapping with a 'kind' key, got {spec!r}")
    kind = spec.get("kind")
    if kind is None:
        raise InputError(f"{where}.kind is missing; expected one of {', '.join(KINDS)}")
    if not isinstance(kind, str) or kind not in _KEYS:
        raise InputError(f"{where}.kind: unknown source kind {kind!r}; expected {KINDS}")
    required, optional = _KEYS[kind]
    for key in sorted(required - spec.keys()):
        raise InputError(f"{where}.{key} is required for kind {kind!r}")
    for key in sorted(spec.keys() - required - optional - {"kind"}):
        raise InputError(f"{where}.{key}: unknown key for kind {kind!r}")

    if kind == "skimage":
        sample = spec["name"]
        if not isinstance(sample, str) or sample not in SKIMAGE_FILES:
            raise InputError(
                f"{where}.name: {sample!r} is not a bundled scikit-image sample; "
                f"valid names: {', '.join(sorted(SKIMAGE_FILES))}"
            )
    elif kind == "procedural":
        if not _is_int(spec["seed"]) or spec["seed"] < 0:
            raise InputError(f"{where}.seed must be an integer >= 0, got {spec['seed']!r}")
        for key in ("width", "height"):
            if not _is_int(spec[key]) or spec[key] < MIN_SIDE:
                raise InputError(
                    f"{where}.{key} must be an integer >= {MIN_SIDE}, got {spec[key]!r}"
                )
    elif kind == "file":
        if not isinstance(spec["path"], str) or not spec["path"]:
            raise InputError(f"{where}.path must be a non-empty string, got {spec['path']!r}")
        if "sha256" in spec:
            _check_sha(spec["sha256"], f"{where}.sha256")
    elif kind == "url":
        url = spec["url"]
        parsed = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InputError(f"{where}.url must be an http:// or https:// URL, got {url!r}")
        _check_sha(spec["sha256"], f"{where}.sha256")


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
    first, so after a failure no file, old or new, sits where the image should be."""
    target = Path(dest)
    target.unlink(missing_ok=True)
    validate_source(spec, name)
    kind = spec["kind"]
    pixels: Image.Image | np.ndarray
    if kind == "skimage":
        pixels, source_hash = _from_skimage(spec["name"])
    elif kind == "procedural":
        pixels, source_hash = _from_procedural(spec)
    elif kind == "file":
        pixels, source_hash = _from_file(spec)
    else:
        pixels, source_hash = _from_url(spec)
    record = {
        "stage": "download",
        "image": name,
        "source": dict(spec),
        "source_sha256": source_hash,
    }
    save_png(pixels, target, record)
