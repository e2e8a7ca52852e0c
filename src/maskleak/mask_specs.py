"""An experiment's masks: the config's mask families (``masks:`` entries, and
``radius_pct``, the study's discs, as their shorthand) as named specs; drawn per image by
the mask rule, redrawn by the inpaint job to check a mask file before trusting it.

A mask's id names its PNG (``masks/<image>/<mask_id>.png``) and every inpainting of it
(``<mask_id>_s<strength>_seed<seed>.png``), and is equal across images, so rows of one
mask pair up across images and models:

* circle ``r<radius_pct>`` (``r80``: the names the study's discs always had);
* rectangle ``rect-<w>x<h>`` (centred, percent of width and height) or
  ``rect-<x0>-<y0>-<x1>-<y1>`` (a placed box, percent);
* strokes ``strokes-<preset>-s<seed>``;
* file and folder ``file-<name>`` (the user's masks; name: the file's stem or the
  folder's name unless the entry gives one).

An entry's ``name`` replaces the kind's prefix; ``-d<px>`` and ``-b<px>`` are appended
for a dilation and a pipeline mask blur."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from maskleak import mask_families, masks
from maskleak.errors import InputError
from maskleak.sweeps import expand_values, number_label, unique_labels

CIRCLE = "circle"
RECTANGLE = "rectangle"
STROKES = "strokes"
FILE = "file"
FOLDER = "folder"
#: ``mask_kind`` values (a folder's masks are files, one per image).
KINDS = (CIRCLE, RECTANGLE, STROKES, FILE)
#: Mask files a ``folder`` entry picks up.
MASK_PATTERNS = ("*.png", "*.jpg", "*.jpeg", "*.tif", "*.tiff", "*.bmp", "*.webp")
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class MaskSpec:
    """One named mask of an experiment.

    ``settings``: what draws it (circle ``radius_pct``; rectangle ``box`` in fractions;
    strokes ``preset``, ``seed`` and overrides; file ``path`` and ``resize``);
    ``files``: a folder's mask file per image (None for every other kind); ``key``: the
    config key it comes from, for messages."""

    mask_id: str
    kind: str
    settings: Mapping[str, Any]
    key: str
    dilate_px: int = 0
    blur_px: float = 0.0
    files: Mapping[str, str] | None = field(default=None)

    @property
    def radius_pct(self) -> float | None:
        """The disc's radius percentage; None for any other shape."""
        return float(self.settings["radius_pct"]) if self.kind == CIRCLE else None

    @property
    def is_study_disc(self) -> bool:
        """A disc exactly as the study drew it (no dilation, no blur)."""
        return self.kind == CIRCLE and not self.dilate_px and not self.blur_px

    def user_files(self, image: str) -> list[str]:
        """The user's mask file that masks ``image`` (none for drawn shapes)."""
        if self.files is not None:
            return [self.files[image]]
        return [str(self.settings["path"])] if self.kind == FILE else []

    def record(self, image: str) -> dict[str, Any]:
        """Everything that draws this mask for ``image``, JSON-able (the mask rule's
        params, the inpaint task's and each mask PNG's record)."""
        settings = dict(self.settings)
        if self.files is not None:
            settings["path"] = self.files[image]
        return {
            "mask_id": self.mask_id,
            "mask_kind": self.kind,
            **settings,
            "dilate_px": self.dilate_px,
            "blur_px": self.blur_px,
            "key": self.key,
        }

    def same_mask(self, other: MaskSpec) -> bool:
        """Whether ``other`` draws the same masks (its config key may differ)."""
        return (self.kind, dict(self.settings), self.dilate_px, self.blur_px, self.files) == (
            other.kind,
            dict(other.settings),
            other.dilate_px,
            other.blur_px,
            other.files,
        )


def disc_record(radius_pct: float) -> dict[str, Any]:
    """The record of the study's disc of ``radius_pct`` given as ``radius_pct`` alone."""
    spec = MaskSpec(
        f"r{number_label(radius_pct)}", CIRCLE, {"radius_pct": radius_pct}, "radius_pct"
    )
    return spec.record("")


# ------------------------------------------------------------------------ config -> specs


def read_masks(entry: Mapping[str, Any], key: str, images: Sequence[str]) -> dict[str, MaskSpec]:
    """Mask id -> spec of experiment ``entry`` (config key ``key``), in config order:
    ``radius_pct``'s discs first, then each ``masks`` entry's. ``images``: the run's image
    names, which a folder's mask files are matched to."""
    specs: list[MaskSpec] = []
    if entry.get("radius_pct") is not None:
        specs += _circles(entry["radius_pct"], f"{key}.radius_pct", {})
    for i, family in enumerate(entry.get("masks") or []):
        specs += _family(family, f"{key}.masks[{i}]", images)
    if not specs:
        raise InputError(f"config key {key}: give radius_pct or masks (the masks to inpaint)")
    by_id: dict[str, MaskSpec] = {}
    for spec in specs:
        if spec.mask_id in by_id:
            raise InputError(
                f"config key {spec.key}: mask {spec.mask_id!r} is also "
                f"{by_id[spec.mask_id].key}'s; drop one, or give one a name"
            )
        by_id[spec.mask_id] = spec
    return by_id


def merge_masks(experiments: Mapping[str, Mapping[str, MaskSpec]]) -> dict[str, MaskSpec]:
    """The run's masks (id -> spec) over every experiment: one id is one mask file per
    image, so two experiments that give one id different settings are an error."""
    merged: dict[str, MaskSpec] = {}
    for specs in experiments.values():
        for mask_id, spec in specs.items():
            known = merged.setdefault(mask_id, spec)
            if not known.same_mask(spec):
                raise InputError(
                    f"config key {spec.key}: mask {mask_id!r} is also {known.key}'s with "
                    "other settings; give one of them a name"
                )
    return merged


def _suffix(entry: Mapping[str, Any], key: str) -> tuple[str, int, float]:
    dilate_px = int(entry.get("dilate_px", 0))
    blur_px = float(entry.get("blur_px", 0.0))
    if dilate_px < 0:
        raise InputError(f"config key {key}.dilate_px: must be >= 0, got {dilate_px}")
    if blur_px < 0:
        raise InputError(f"config key {key}.blur_px: must be >= 0, got {blur_px:g}")
    text = (f"-d{dilate_px}" if dilate_px else "") + (
        f"-b{number_label(blur_px)}" if blur_px else ""
    )
    return text, dilate_px, blur_px


def _circles(values: Any, key: str, entry: Mapping[str, Any]) -> list[MaskSpec]:
    radii = expand_values(values, key)
    if any(not 0 < r <= 100 for r in radii):
        raise InputError(f"config key {key}: values must be in (0, 100]")
    parent = key.rsplit(".", 1)[0]
    suffix, dilate_px, blur_px = _suffix(entry, parent)
    prefix = entry.get("name") or "r"
    prefix = prefix if prefix == "r" else f"{prefix}-r"
    return [
        MaskSpec(
            f"{prefix}{label}{suffix}", CIRCLE, {"radius_pct": pct}, parent, dilate_px, blur_px
        )
        for label, pct in unique_labels(radii, key).items()
    ]


def _family(entry: Mapping[str, Any], key: str, images: Sequence[str]) -> list[MaskSpec]:
    kind = entry["kind"]
    if kind == CIRCLE:
        return _circles(entry["radius_pct"], f"{key}.radius_pct", entry)
    suffix, dilate_px, blur_px = _suffix(entry, key)
    name = entry.get("name")

    def spec(
        body: str, settings: dict[str, Any], files: Mapping[str, str] | None = None
    ) -> MaskSpec:
        shown_kind = FILE if kind == FOLDER else kind
        return MaskSpec(f"{body}{suffix}", shown_kind, settings, key, dilate_px, blur_px, files)

    if kind == RECTANGLE:
        prefix = name or "rect"
        out = []
        for j, size in enumerate(entry.get("sizes") or []):
            w, h = (float(v) for v in size)
            if not (0 < w <= 1 and 0 < h <= 1):
                raise InputError(
                    f"config key {key}.sizes[{j}]: fractions must be in (0, 1], got {list(size)}"
                )
            box = [float(v) for v in mask_families.centred_box(w, h)]
            out.append(spec(f"{prefix}-{_pct(w)}x{_pct(h)}", {"box": box}))
        for j, box in enumerate(entry.get("boxes") or []):
            x0, y0, x1, y1 = (float(v) for v in box)
            if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
                raise InputError(
                    f"config key {key}.boxes[{j}]: need 0 <= x0 < x1 <= 1 and "
                    f"0 <= y0 < y1 <= 1, got {list(box)}"
                )
            body = f"{prefix}-" + "-".join(_pct(v) for v in (x0, y0, x1, y1))
            out.append(spec(body, {"box": [x0, y0, x1, y1]}))
        if not out:
            raise InputError(f"config key {key}: a rectangle needs sizes or boxes")
        return out
    if kind == STROKES:
        seeds = [int(s) for s in entry["seeds"]]
        if len(set(seeds)) != len(seeds):
            raise InputError(f"config key {key}.seeds: seeds repeat: {seeds}")
        overrides: dict[str, Any] = {}
        if "area_frac" in entry:
            low, high = (float(v) for v in entry["area_frac"])
            if not 0 < low <= high < 1:
                raise InputError(f"config key {key}.area_frac: need 0 < low <= high < 1")
            overrides["area_frac"] = [low, high]
        prefix = name or "strokes"
        return [
            spec(f"{prefix}-{preset}-s{seed}", {"preset": preset, "seed": seed, **overrides})
            for preset in entry.get("presets") or ["medium"]
            for seed in seeds
        ]
    path = Path(entry["path"])
    resize = bool(entry.get("resize", False))
    if kind == FILE:
        if not path.is_file():
            raise InputError(f"config key {key}.path: {path} is not a file")
        body = "file-" + _SAFE.sub("_", name or path.stem)
        return [spec(body, {"path": str(path), "resize": resize})]
    if not path.is_dir():
        raise InputError(f"config key {key}.path: {path} is not a folder")
    found = sorted({f for p in MASK_PATTERNS for f in path.glob(p) if f.is_file()})
    try:
        files = mask_families.match_masks_to_images(found, images, folder=path)
    except InputError as exc:
        raise InputError(f"config key {key}: {exc}") from None
    body = "file-" + (_SAFE.sub("_", name or path.resolve().name) or "masks")
    return [spec(body, {"resize": resize}, files)]


def _pct(fraction: Any) -> str:
    return number_label(float(fraction) * 100)


# ------------------------------------------------------------------------ drawing


def draw_mask(
    record: Mapping[str, Any], width: int, height: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """The mask ``record`` (:meth:`MaskSpec.record`) draws on a ``width`` x ``height``
    image: uint8 (H, W), 255 = inpaint, 0 = keep; and its PNG record. Dilation comes last;
    the blur is not drawn (it is the pipeline's, applied by the inpaint job)."""
    kind = record["mask_kind"]
    if kind == CIRCLE:
        pct = float(record["radius_pct"])
        mask = np.asarray(masks.circle_mask(width, height, pct))
        params: dict[str, Any] = {"radius_px": masks.circle_radius_px(width, height, pct)}
    elif kind == RECTANGLE:
        mask, params = mask_families.rectangle_mask(width, height, record["box"])
    elif kind == STROKES:
        overrides = {"area_frac": tuple(record["area_frac"])} if "area_frac" in record else {}
        mask, params = mask_families.strokes_mask(
            width, height, int(record["seed"]), record["preset"], **overrides
        )
    elif kind == FILE:
        mask, params = mask_families.read_user_mask(
            record["path"], (width, height), bool(record["resize"])
        )
    else:
        raise InputError(f"mask {record.get('mask_id')!r}: unknown mask kind {kind!r}")
    mask = mask_families.dilate(mask, int(record.get("dilate_px", 0)))
    inpaint = mask > 127
    if inpaint.all():
        raise InputError(
            f"config key {record.get('key')}: mask {record['mask_id']} inpaints every pixel of "
            f"a {width}x{height} image (dilate_px {record.get('dilate_px', 0)}); nothing is "
            "left to measure"
        )
    info = {
        "stage": "mask",
        **{k: v for k, v in record.items() if k != "key"},
        "shape": kind,
        **{k: v for k, v in params.items() if k not in ("mask_kind", "width", "height")},
        "width": width,
        "height": height,
        "area_frac": masks.area_frac(mask),
    }
    return np.ascontiguousarray(mask, dtype=np.uint8), info


def write_mask_files(
    image_path: str, records: Sequence[Mapping[str, Any]], out_paths: Sequence[str]
) -> None:
    """One mask PNG per record, sized like the image at ``image_path``. Every mask is
    drawn before any is written, so a bad one (a user mask of the wrong size) leaves no
    mask of this image behind; errors name the config key, the mask file and the image."""
    from PIL import Image

    from maskleak.provenance import save_png

    if len(records) != len(out_paths):
        raise InputError(f"{len(records)} masks but {len(out_paths)} mask paths")
    try:
        with Image.open(image_path) as img:
            width, height = img.size
    except OSError as err:
        raise InputError(f"{image_path}: cannot read image ({err})") from err
    drawn = []
    for record in records:
        try:
            drawn.append(draw_mask(record, width, height))
        except InputError as exc:
            text = str(exc)
            if not text.startswith("config key"):
                text = f"config key {record['key']}: {text}"
            raise InputError(f"{text} (image {image_path})") from None
    for (mask, info), path in zip(drawn, out_paths, strict=True):
        save_png(mask, path, info)


def check_mask_file(
    pixels: np.ndarray,
    record: Mapping[str, Any],
    path: str | os.PathLike[str],
    image_size: tuple[int, int],
) -> None:
    """Refuse a mask file whose pixels are not what ``record`` draws at the image's size
    (a mask replaced by hand would be inpainted under this mask's name). Discs take the
    study's own check (:func:`maskleak.masks.check_mask`); InputError naming ``path``."""
    if record["mask_kind"] == CIRCLE and not record.get("dilate_px"):
        masks.check_mask(pixels, float(record["radius_pct"]), path, image_size=image_size)
        return
    grey = np.asarray(pixels)
    grey = grey[..., 0] if grey.ndim == 3 else grey
    where = f"{os.fspath(path)}: not drawn by the mask rule for mask {record['mask_id']}"
    width, height = image_size
    if grey.shape != (height, width):
        raise InputError(
            f"{where}: it is {grey.shape[1]}x{grey.shape[0]} px but its image is "
            f"{width}x{height} px; delete it to redraw it"
        )
    expected, _ = draw_mask(record, width, height)
    differ = int((grey != expected).sum())
    if differ:
        raise InputError(
            f"{where}: {differ} of {width * height} pixels differ; delete it to redraw it"
        )
