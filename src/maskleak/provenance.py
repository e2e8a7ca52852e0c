"""Provenance and safe writing: every output records what made it, and no output is
ever left half-written (write to a temporary sibling, then rename atomically)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import platform
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin

# The process umask, read once at import (reading it means setting it, which is not
# thread-safe later). Temporary files are created private (0600); outputs must get the
# permissions any normally created file would, or colleagues on a shared cluster
# filesystem cannot read them.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def public_mode(path: str | os.PathLike[str], directory: bool = False) -> None:
    """Give ``path`` the mode a plain ``open``/``mkdir`` would have given it."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_UMASK)


#: PNG text-chunk / Parquet metadata key under which maskleak stores its JSON record.
META_KEY = "maskleak"

_PACKAGES = (
    "maskleak",
    "numpy",
    "pillow",
    "torch",
    "diffusers",
    "transformers",
    "accelerate",
    "pandas",
    "pyarrow",
    "matplotlib",
    "snakemake",
)


@functools.cache
def _installed(packages: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    # Read once per process: ~7 ms of metadata look-ups per call, once per saved PNG.
    found = [("python", platform.python_version())]
    for name in packages:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found.append((name, metadata.version(name)))
    return tuple(found)


def versions(packages: tuple[str, ...] = _PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that shape maskleak's outputs.

    No timestamps or host names: outputs must stay byte-identical across reruns."""
    return dict(_installed(packages))


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace variation, so hashes are stable."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str], chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def pixel_sha256(pixels: np.ndarray) -> str:
    """Hash of decoded pixels and their shape, independent of PNG encoding details."""
    arr = np.ascontiguousarray(pixels)
    digest = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    digest.update(arr.tobytes())
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    The temporary name keeps the suffix so that writers which infer the format from it
    (PIL, matplotlib, pyarrow) still work. On any exception the temporary file is
    removed and ``path`` is left untouched."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}"
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        public_mode(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike[str], record: Mapping[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True, allow_nan=False) + "\n")


def save_png(
    image: Image.Image | np.ndarray,
    path: str | os.PathLike[str],
    record: Mapping[str, Any],
) -> None:
    """Save a lossless PNG atomically with ``record`` (plus versions) as a text chunk."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    info = PngImagePlugin.PngInfo()
    info.add_text(META_KEY, canonical_json({**record, "versions": versions()}))
    with atomic_path(path) as tmp:
        # compress_level fixed so identical pixels give identical bytes everywhere.
        image.save(tmp, format="PNG", pnginfo=info, compress_level=6)


def read_png_record(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The maskleak record stored in a PNG, or None if it has none."""
    with Image.open(path) as img:
        text = getattr(img, "text", {}).get(META_KEY)
    return None if text is None else json.loads(text)


def write_parquet(table: Any, path: str | os.PathLike[str], record: Mapping[str, Any]) -> None:
    """Write a pandas DataFrame to Parquet atomically, with ``record`` (plus versions)
    in the file's schema metadata under ``META_KEY``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pa.Table.from_pandas(table, preserve_index=False)
    meta = dict(arrow.schema.metadata or {})
    meta[META_KEY.encode()] = canonical_json({**record, "versions": versions()}).encode()
    arrow = arrow.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(arrow, tmp)


def read_table(path: str | os.PathLike[str], name: str) -> Any:
    """The Parquet table at ``path`` as a pandas DataFrame; InputError naming it and the
    rule that makes it (``name``: metrics, trends, ...) when it is missing or unreadable."""
    import pandas as pd

    from maskleak.errors import InputError

    where = os.fspath(path)
    try:
        return pd.read_parquet(where)
    except FileNotFoundError:
        raise InputError(f"{name} table {where} not found; rerun the {name} rule") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{name} table {where} is not readable Parquet: {exc}") from exc


def require_columns(table: Any, columns: Sequence[str], name: str) -> None:
    """InputError naming the ``name`` table (metrics, trends, ...) and every one of
    ``columns`` that the DataFrame ``table`` lacks."""
    from maskleak.errors import InputError

    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"{name} table lacks column(s) {missing}")


def read_parquet_record(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(META_KEY.encode())
    return None if raw is None else json.loads(raw)
