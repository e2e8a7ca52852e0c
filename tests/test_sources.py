from __future__ import annotations

import hashlib
import http.server
import io
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from maskleak.errors import InputError
from maskleak.landscapes import generate_landscape
from maskleak.provenance import read_png_record
from maskleak.sources import SKIMAGE_FILES, fetch_image


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.mode == "RGB"
        return np.asarray(img)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# ---------------------------------------------------------------- skimage


@pytest.mark.parametrize("sample", ["astronaut", "retina", "immunohistochemistry"])
def test_skimage_rgb_samples_pixel_identical(tmp_path, sample):
    dest = tmp_path / f"{sample}.png"
    spec = {"kind": "skimage", "name": sample}
    fetch_image(spec, dest, sample)
    assert np.array_equal(_pixels(dest), getattr(skimage.data, sample)())
    record = read_png_record(dest)
    assert record is not None
    assert record["stage"] == "download"
    assert record["image"] == sample
    assert record["source"] == spec
    bundled = Path(skimage.data.data_dir) / SKIMAGE_FILES[sample]
    assert record["source_sha256"] == _sha(bundled.read_bytes())
    assert "numpy" in record["versions"]


def test_skimage_grayscale_becomes_rgb(tmp_path):
    dest = tmp_path / "camera.png"
    fetch_image({"kind": "skimage", "name": "camera"}, dest, "cam")
    gray = skimage.data.camera()
    assert np.array_equal(_pixels(dest), np.stack([gray] * 3, axis=-1))


def test_skimage_rgba_logo_flattened_on_white(tmp_path):
    dest = tmp_path / "logo.png"
    fetch_image({"kind": "skimage", "name": "logo"}, dest, "logo")
    rgba = skimage.data.logo().astype(np.uint32)
    alpha = rgba[..., 3:]
    expected = (rgba[..., :3] * alpha + 255 * (255 - alpha) + 127) // 255
    assert np.array_equal(_pixels(dest), expected.astype(np.uint8))


def test_skimage_file_table_matches_the_library():
    """Each listed sample loads offline and its bundled file is the one skimage itself
    checks (its registry of SHA-256s), so provenance hashes name the right bytes."""
    from skimage.data._registry import registry

    for sample, filename in SKIMAGE_FILES.items():
        bundled = Path(skimage.data.data_dir) / filename
        assert registry[f"data/{filename}"] == _sha(bundled.read_bytes()), sample
        arr = getattr(skimage.data, sample)()
        assert arr.dtype == np.uint8 and arr.ndim in (2, 3), sample


def test_skimage_unknown_name_lists_valid_names(tmp_path):
    dest = tmp_path / "x.png"
    with pytest.raises(InputError, match=r"images\.pic\.name.*'lena'.*astronaut.*coffee"):
        fetch_image({"kind": "skimage", "name": "lena"}, dest, "pic")
    assert not dest.exists()


# ---------------------------------------------------------------- procedural


def test_procedural_matches_generator_and_records_png_hash(tmp_path):
    dest = tmp_path / "land.png"
    spec = {"kind": "procedural", "seed": 3, "width": 64, "height": 48}
    fetch_image(spec, dest, "land3")
    rgb, _ = generate_landscape(3, 64, 48)
    assert np.array_equal(_pixels(dest), rgb)
    record = read_png_record(dest)
    assert record is not None
    assert record["source"] == spec and record["image"] == "land3"
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=6)
    assert record["source_sha256"] == _sha(buf.getvalue())


def test_procedural_rerun_is_byte_identical(tmp_path):
    spec = {"kind": "procedural", "seed": 9, "width": 32, "height": 32}
    fetch_image(spec, tmp_path / "a.png", "x")
    fetch_image(spec, tmp_path / "b.png", "x")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


# ---------------------------------------------------------------- file


def test_file_with_and_without_checksum(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    src = tmp_path / "photo.png"
    src.write_bytes(_png_bytes(rgb))
    for i, spec in enumerate(
        [
            {"kind": "file", "path": str(src)},
            {"kind": "file", "path": str(src), "sha256": _sha(src.read_bytes())},
            {"kind": "file", "path": str(src), "sha256": _sha(src.read_bytes()).upper()},
        ]
    ):
        dest = tmp_path / "out" / f"{i}.png"
        fetch_image(spec, dest, "photo")
        assert np.array_equal(_pixels(dest), rgb)
        record = read_png_record(dest)
        assert record is not None
        assert record["source_sha256"] == _sha(src.read_bytes())


def test_file_checksum_mismatch(tmp_path):
    src = tmp_path / "photo.png"
    src.write_bytes(_png_bytes(np.zeros((4, 4, 3), dtype=np.uint8)))
    wrong = "0" * 64
    dest = tmp_path / "out" / "photo.png"
    with pytest.raises(InputError) as info:
        fetch_image({"kind": "file", "path": str(src), "sha256": wrong}, dest, "photo")
    message = str(info.value)
    assert str(src) in message and wrong in message and _sha(src.read_bytes()) in message
    assert not dest.exists()


def _valid_png(tmp_path: Path) -> bytes:
    return _png_bytes(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))


@pytest.mark.parametrize("case", ["text", "empty", "truncated", "missing", "directory"])
def test_bad_file_leaves_no_output(tmp_path, case):
    src = tmp_path / "in" / "input.png"
    src.parent.mkdir()
    if case == "text":
        src.write_text("id,value\n1,2\n")
    elif case == "empty":
        src.write_bytes(b"")
    elif case == "truncated":
        data = _valid_png(tmp_path)
        src.write_bytes(data[: len(data) // 2])
    elif case == "directory":
        src.mkdir()
    dest = tmp_path / "out" / "input.png"
    dest.parent.mkdir()
    dest.write_bytes(b"stale output from an earlier run")
    with pytest.raises(InputError) as info:
        fetch_image({"kind": "file", "path": str(src)}, dest, "input")
    assert str(src) in str(info.value)
    assert _leftovers(dest.parent) == []  # neither the stale file nor a temp file


# ---------------------------------------------------------------- url


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()

    def handler(*args, **kwargs):
        return _Quiet(*args, directory=str(root), **kwargs)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_url_good_download(tmp_path, server):
    base, root = server
    rgb = np.random.default_rng(2).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    data = _png_bytes(rgb)
    (root / "pic.png").write_bytes(data)
    dest = tmp_path / "out" / "pic.png"
    spec = {"kind": "url", "url": f"{base}/pic.png", "sha256": _sha(data)}
    fetch_image(spec, dest, "pic")
    assert np.array_equal(_pixels(dest), rgb)
    record = read_png_record(dest)
    assert record is not None
    assert record["source"] == spec and record["source_sha256"] == _sha(data)
    assert _leftovers(dest.parent) == ["pic.png"]


def test_url_checksum_mismatch_before_decoding(tmp_path, server):
    base, root = server
    data = b"not even an image"  # a decode attempt would give a different error
    (root / "pic.png").write_bytes(data)
    dest = tmp_path / "out" / "pic.png"
    wrong = "ab" * 32
    url = f"{base}/pic.png"
    with pytest.raises(InputError, match="SHA-256 mismatch") as info:
        fetch_image({"kind": "url", "url": url, "sha256": wrong}, dest, "pic")
    message = str(info.value)
    assert url in message and wrong in message and _sha(data) in message
    assert not dest.exists()


def test_url_404_names_url(tmp_path, server):
    base, _ = server
    url = f"{base}/missing.jpg"
    dest = tmp_path / "pic.png"
    with pytest.raises(InputError, match="404") as info:
        fetch_image({"kind": "url", "url": url, "sha256": "0" * 64}, dest, "pic")
    assert url in str(info.value)
    assert not dest.exists()


def test_url_truncated_image_with_matching_hash(tmp_path, server):
    base, root = server
    data = _valid_png(tmp_path)[:500]
    (root / "cut.png").write_bytes(data)
    url = f"{base}/cut.png"
    dest = tmp_path / "cut.png"
    with pytest.raises(InputError, match="truncated") as info:
        fetch_image({"kind": "url", "url": url, "sha256": _sha(data)}, dest, "cut")
    assert url in str(info.value)
    assert _leftovers(tmp_path) == ["www"]


def test_url_download_size_cap(tmp_path, server, monkeypatch):
    from maskleak import sources

    base, root = server
    data = _valid_png(tmp_path)
    (root / "big.png").write_bytes(data)
    monkeypatch.setattr(sources, "MAX_DOWNLOAD_BYTES", 1000)
    url = f"{base}/big.png"
    dest = tmp_path / "big.png"
    with pytest.raises(InputError, match=r"exceeds 1000 bytes") as info:
        fetch_image({"kind": "url", "url": url, "sha256": _sha(data)}, dest, "big")
    assert str(info.value).startswith(f"images.big: {url}: download exceeds")
    assert not dest.exists()


def test_url_unreachable_host(tmp_path):
    # port 1 on localhost: connection refused, quickly and without any network
    url = "http://127.0.0.1:1/x.png"
    with pytest.raises(InputError, match="download failed") as info:
        fetch_image({"kind": "url", "url": url, "sha256": "0" * 64}, tmp_path / "x.png", "x")
    assert url in str(info.value)


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"kind": "url", "url": "https://example.org/a.jpg"},
            "config key images.pic.sha256: required for kind url",
        ),
        (
            {"kind": "url", "url": "ftp://example.org/a.jpg", "sha256": "0" * 64},
            "config key images.pic.url: expected an http:// or https:// URL, got 'ftp:",
        ),
        (
            {"kind": "url", "url": "file:///etc/passwd", "sha256": "0" * 64},
            "config key images.pic.url: expected an http:// or https:// URL",
        ),
        (
            {"kind": "url", "url": "https://x.org/a", "sha256": "xyz"},
            "config key images.pic.sha256: expected 64 hex digits",
        ),
        (
            {"kind": "file", "path": "a.png", "sha256": "0" * 63},
            "config key images.pic.sha256: expected 64 hex digits",
        ),
        (
            {"kind": "file", "path": "a.png", "sha265": "0" * 64},
            "config key images.pic: unknown key 'sha265' (a file source takes kind, path, sha256)",
        ),
        ({"kind": "file", "path": ""}, "config key images.pic.path: must not be empty"),
        ({"kind": "file"}, "config key images.pic.path: required for kind file"),
        (
            {"kind": "procedural", "seed": 1, "width": 64},
            "config key images.pic.height: required for kind procedural",
        ),
        (
            {"kind": "procedural", "seed": -1, "width": 64, "height": 64},
            "config key images.pic.seed: must be >= 0, got -1",
        ),
        (
            {"kind": "procedural", "seed": 1, "width": 6, "height": 64},
            "config key images.pic.width: must be >= 16, got 6",
        ),
        (
            {"kind": "procedural", "seed": 1, "width": 64, "height": "64"},
            "config key images.pic.height: expected an integer, got '64'",
        ),
        ({"kind": "skimage"}, "config key images.pic.name: required for kind skimage"),
        (
            {"kind": "skimage", "name": "lena"},
            "config key images.pic.name: 'lena' is not one of astronaut, brick, camera,",
        ),
        (
            {"kind": "skimage", "name": ["astronaut"]},
            "config key images.pic.name: ['astronaut'] is not one of astronaut,",
        ),
        ({"kind": "kaggle", "name": "x"}, "config key images.pic.kind: unknown kind 'kaggle'"),
        ({"name": "astronaut"}, "config key images.pic.kind: required"),
        ({"kind": ["skimage"], "name": "astronaut"}, "config key images.pic.kind: unknown kind"),
        (["skimage", "astronaut"], "config key images.pic: expected an object"),
    ],
)
def test_fetch_image_checks_the_spec_against_the_schema(tmp_path, spec, message):
    """fetch_image outside the workflow (tests, bench) checks its spec against the
    schema's image_source definition, with the same one-line messages as the workflow."""
    dest = tmp_path / "pic.png"
    with pytest.raises(InputError) as info:
        fetch_image(spec, dest, "pic")
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)
    assert not dest.exists()


def test_fetch_image_accepts_what_the_schema_accepts(tmp_path):
    fetch_image({"kind": "procedural", "seed": 0, "width": 16, "height": 16}, tmp_path / "a", "a")
    fetch_image({"kind": "skimage", "name": "coffee"}, tmp_path / "b", "b")


def test_the_schema_is_the_only_source_check():
    """No hand-written re-check beside the schema: the sample names the schema allows
    are exactly the bundled files this module can load."""
    from maskleak import sources
    from maskleak.schema import load_schema

    assert not hasattr(sources, "validate_source")
    branches = load_schema()["definitions"]["image_source"]["oneOf"]
    skimage = next(b for b in branches if b["properties"]["kind"]["const"] == "skimage")
    assert skimage["properties"]["name"]["enum"] == sorted(SKIMAGE_FILES)


def test_folder_specs_are_for_the_workflow_to_expand(tmp_path):
    with pytest.raises(InputError, match=r"^images\.pic: a folder source"):
        fetch_image({"kind": "folder", "path": str(tmp_path)}, tmp_path / "x.png", "pic")


def test_run_time_errors_name_the_image(tmp_path):
    missing = tmp_path / "nope.jpg"
    with pytest.raises(InputError) as info:
        fetch_image({"kind": "file", "path": str(missing)}, tmp_path / "x.png", "photo")
    assert str(info.value) == f"images.photo: {missing}: file not found"
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(InputError, match=r"^images\.a, images\.b: .*notes\.png: not an image"):
        fetch_image({"kind": "file", "path": str(text)}, tmp_path / "x.png", "a, b")
