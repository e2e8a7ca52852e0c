"""The quality report's rows: one pipeline call per held-out image x mask x seed, at
strength 1 through the inpaint rule's own call, measured inside (against the mean-colour
fill and an untrained reference) and outside (against the VAE floor). What each row
means, and its units, are in the package docstring (``maskleak.training.quality``) and in
``workflow/schemas/inpaint_quality.columns.yaml``."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maskleak.errors import InputError
from maskleak.training.quality.measures import (
    bb_psnr_db,
    masked_mse,
    mean_fill,
    psnr_db,
    ratio,
)

#: The call every row measures (issue 12: "at strength 1").
STRENGTH = 1.0
STEPS = 10
GUIDANCE_SCALE = 0.0
PROMPT = ""
DEFAULT_SEEDS = (0,)

#: The study's masks drawn on each held-out image when the caller gives none, in the
#: config grammar of an experiment (maskleak.mask_specs.read_masks): the study's discs at
#: 40 % and 80 % (r80 is the default experiment's), a centred box 40 % x 40 %, and one
#: seeded set of medium brush strokes.
DEFAULT_MASKS: dict[str, Any] = {
    "radius_pct": [40, 80],
    "masks": [
        {"kind": "rectangle", "sizes": [[0.4, 0.4]]},
        {"kind": "strokes", "presets": ["medium"], "seeds": [0]},
    ],
}

#: A diffusers inpainting folder, or a pipeline already loaded from one.
Model = str | os.PathLike[str] | Any
#: Masks: mask id -> bool (H, W) for every image, or (width, height) -> such a mapping.
Masks = Mapping[str, np.ndarray] | Callable[[int, int], Mapping[str, np.ndarray]]


# ------------------------------------------------------------------------ inputs


def _check_image(name: str, image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] != 3:
        raise InputError(
            f"held-out image {name!r} must be uint8 (H, W, 3), got {arr.dtype}{arr.shape}"
        )
    height, width = arr.shape[:2]
    if height == 0 or width == 0 or height % 8 or width % 8:
        raise InputError(
            f"held-out image {name!r}: height and width must be positive multiples of 8 "
            f"(the VAE's 8x downsampling), got {width}x{height}"
        )
    return arr


def _check_mask(mask_id: str, mask: np.ndarray, image: str, shape: tuple[int, int]) -> np.ndarray:
    arr = np.asarray(mask)
    where = f"mask {mask_id!r} for held-out image {image!r}"
    if arr.dtype != bool or arr.ndim != 2:
        raise InputError(f"{where} must be bool (H, W), True = inpaint; got {arr.dtype}{arr.shape}")
    if arr.shape != shape:
        raise InputError(
            f"{where}: mask is {arr.shape[1]}x{arr.shape[0]} px but the image is "
            f"{shape[1]}x{shape[0]} px"
        )
    if not arr.any() or arr.all():
        raise InputError(f"{where} must inpaint some pixels and keep some (both are measured)")
    return arr


def study_masks(width: int, height: int) -> dict[str, np.ndarray]:
    """:data:`DEFAULT_MASKS` drawn on a ``width`` x ``height`` image by the mask rule's own
    code (:func:`maskleak.mask_specs.draw_mask`): mask id -> bool (H, W), True = inpaint."""
    from maskleak import mask_specs

    specs = mask_specs.read_masks(DEFAULT_MASKS, "quality.masks", [])
    return {
        mask_id: mask_specs.draw_mask(spec.record(""), width, height)[0] > 127
        for mask_id, spec in specs.items()
    }


def _masks_for(masks: Masks | None, image: str, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    height, width = shape
    if masks is None:
        drawn: Mapping[str, np.ndarray] = study_masks(width, height)
    elif callable(masks):
        drawn = masks(width, height)
    else:
        drawn = masks
    if not drawn:
        raise InputError(f"no masks for held-out image {image!r}")
    return {mask_id: _check_mask(mask_id, m, image, shape) for mask_id, m in drawn.items()}


@dataclass(frozen=True)
class _Loaded:
    pipe: Any
    label: str

    @property
    def in_channels(self) -> int:
        return int(self.pipe.unet.config.in_channels)


def _load(model: Model, label: str | None, device: str) -> _Loaded:
    """A folder is loaded as the inpaint rule loads it (StableDiffusionInpaintPipeline.
    from_pretrained(folder, local_files_only=True), float32 for the tiny models); a
    pipeline object is used as it is."""
    from maskleak import models

    if isinstance(model, str | os.PathLike):
        folder = Path(model)
        return _Loaded(models.load_pipeline(folder, device=device), label or folder.name)
    if not hasattr(model, "unet"):
        raise InputError(f"model must be a diffusers inpainting folder or pipeline, got {model!r}")
    return _Loaded(model, label or type(model).__name__)


# ------------------------------------------------------------------------ the calls


def inpaint(pipe: Any, image: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
    """One inpainting as every row measures it (see the module docstring): uint8 (H, W, 3)
    ``image``, bool (H, W) ``mask`` (True = inpaint) -> the pipeline's uint8 output."""
    from PIL import Image

    from maskleak import mechanisms, pipeline_choice

    settings = pipeline_choice.Settings(
        prompt=PROMPT, guidance_scale=GUIDANCE_SCALE, steps=STEPS, scheduler="default"
    )
    mask_image = Image.fromarray(np.where(mask, 255, 0).astype(np.uint8))
    out = pipeline_choice.denoise(
        pipe,
        [Image.fromarray(image)],
        [mask_image],
        STRENGTH,
        [int(seed)],
        settings,
        mechanisms.pipeline_defaults(mechanisms.DIFFUSERS),
    )
    return np.asarray(out[0].convert("RGB"), dtype=np.uint8)


def vae_roundtrip(pipe: Any, image: np.ndarray) -> np.ndarray:
    """The image encoded to its posterior mode and decoded by the pipeline's own VAE and
    image processor (:func:`maskleak.pipeline_choice.vae_roundtrip`), uint8 (H, W, 3)."""
    from PIL import Image

    from maskleak import pipeline_choice

    return np.asarray(pipeline_choice.vae_roundtrip(pipe, Image.fromarray(image)), dtype=np.uint8)


@dataclass(frozen=True)
class _Case:
    image_name: str
    image: np.ndarray
    mask_id: str
    inpaint: np.ndarray
    seed: int

    def base_row(self, model: _Loaded) -> dict[str, Any]:
        height, width = self.inpaint.shape
        n_inside = int(self.inpaint.sum())
        return {
            "model": model.label,
            "unet_in_channels": model.in_channels,
            "image": self.image_name,
            "height": height,
            "width": width,
            "mask_id": self.mask_id,
            "n_inside": n_inside,
            "n_outside": height * width - n_inside,
            "area_frac": n_inside / (height * width),
            "seed": self.seed,
        }


def _cases(
    images: Mapping[str, np.ndarray], masks: Masks | None, seeds: Sequence[int]
) -> Iterator[_Case]:
    """Every (image, mask, seed), all inputs checked before the first is yielded."""
    if not images:
        raise InputError("no held-out images to measure")
    if not seeds:
        raise InputError("no seeds: give at least one generator seed")
    checked = []
    for name, image in images.items():
        arr = _check_image(name, image)
        checked.append((name, arr, _masks_for(masks, name, arr.shape[:2])))
    for name, arr, drawn in checked:
        for mask_id, inpaint_mask in drawn.items():
            for seed in seeds:
                yield _Case(name, arr, mask_id, inpaint_mask, int(seed))


def _inside_columns(case: _Case, output: np.ndarray) -> dict[str, Any]:
    mse = masked_mse(output, case.image, case.inpaint)
    floor = masked_mse(mean_fill(case.image, case.inpaint), case.image, case.inpaint)
    return {
        "mse_inside": mse,
        "mse_inside_mean_fill": floor,
        "inside_over_mean_fill": ratio(mse, floor),
    }


def _reference_columns(
    case: _Case, row: Mapping[str, Any], ref_output: np.ndarray, ref: str
) -> dict[str, Any]:
    mse_ref = masked_mse(ref_output, case.image, case.inpaint)
    return {
        "reference": ref,
        "mse_inside_reference": mse_ref,
        "inside_over_mean_fill_reference": ratio(mse_ref, row["mse_inside_mean_fill"]),
        "inside_over_reference": ratio(row["mse_inside"], mse_ref),
    }


def _outside_columns(case: _Case, output: np.ndarray, roundtrip: np.ndarray) -> dict[str, Any]:
    keep = ~case.inpaint
    mse = masked_mse(output, case.image, keep)
    floor = masked_mse(roundtrip, case.image, keep)
    return {
        "mse_outside": mse,
        "psnr_outside": psnr_db(mse),
        "bb_psnr_outside": bb_psnr_db(mse),
        "mse_outside_vae": floor,
        "psnr_outside_vae": psnr_db(floor),
        "bb_psnr_outside_vae": bb_psnr_db(floor),
        "excess_over_floor": mse - floor,
    }


def _report(
    model: Model,
    images: Mapping[str, np.ndarray],
    masks: Masks | None,
    seeds: Sequence[int],
    reference: Model | None,
    inside: bool,
    outside: bool,
    label: str | None,
    reference_label: str | None,
    device: str,
    outputs: MutableMapping[tuple[str, str, str, int], np.ndarray] | None,
) -> list[dict[str, Any]]:
    cases = list(_cases(images, masks, seeds))
    loaded = _load(model, label, device)
    ref = None if reference is None else _load(reference, reference_label, device)
    if ref is not None and ref.label == loaded.label:
        raise InputError(
            f"model and reference are both labelled {ref.label!r}; give label or "
            "reference_label so their rows and outputs stay apart"
        )
    roundtrips: dict[str, np.ndarray] = {}
    rows = []
    for case in cases:
        output = inpaint(loaded.pipe, case.image, case.inpaint, case.seed)
        if outputs is not None:
            outputs[(loaded.label, case.image_name, case.mask_id, case.seed)] = output
        row = case.base_row(loaded)
        if inside:
            row.update(_inside_columns(case, output))
            if ref is not None:
                ref_output = inpaint(ref.pipe, case.image, case.inpaint, case.seed)
                if outputs is not None:
                    outputs[(ref.label, case.image_name, case.mask_id, case.seed)] = ref_output
                row.update(_reference_columns(case, row, ref_output, ref.label))
        if outside:
            if case.image_name not in roundtrips:  # one per image: the mode is deterministic
                roundtrips[case.image_name] = vae_roundtrip(loaded.pipe, case.image)
            row.update(_outside_columns(case, output, roundtrips[case.image_name]))
        rows.append(row)
    return rows


def inside_fill_report(
    model: Model,
    images: Mapping[str, np.ndarray],
    masks: Masks | None = None,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    reference: Model | None = None,
    *,
    label: str | None = None,
    reference_label: str | None = None,
    device: str = "cpu",
    outputs: MutableMapping[tuple[str, str, str, int], np.ndarray] | None = None,
) -> list[dict[str, Any]]:
    """Issue 12's inside-mask bars, one row per image x mask x seed.

    ``model``, ``reference`` (the untrained pipeline, optional): diffusers inpainting
    folders or loaded pipelines; ``images``: name -> uint8 (H, W, 3), H and W multiples
    of 8; ``masks``: mask id -> bool (H, W) (True = inpaint) for every image, a callable
    (width, height) -> such a mapping, or None for :func:`study_masks`; ``seeds``: one
    pipeline call per seed. ``outputs``, if given, receives every output under (model
    label, image, mask id, seed). Columns: the base columns (model ... seed),
    mse_inside, mse_inside_mean_fill, inside_over_mean_fill, and with a reference
    reference, mse_inside_reference, inside_over_mean_fill_reference,
    inside_over_reference (:data:`COLUMNS`). Bad input: InputError naming the image or
    mask, raised before any pipeline runs."""
    return _report(
        model,
        images,
        masks,
        seeds,
        reference,
        True,
        False,
        label,
        reference_label,
        device,
        outputs,
    )


def outside_report(
    model: Model,
    images: Mapping[str, np.ndarray],
    masks: Masks | None = None,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    *,
    label: str | None = None,
    device: str = "cpu",
    outputs: MutableMapping[tuple[str, str, str, int], np.ndarray] | None = None,
) -> list[dict[str, Any]]:
    """The outside-mask error next to its VAE floor and BrushBench's range, one row per
    image x mask x seed (arguments as :func:`inside_fill_report`). Columns: the base
    columns, mse_outside, psnr_outside (per element), bb_psnr_outside (BrushBench's),
    mse_outside_vae, psnr_outside_vae, bb_psnr_outside_vae, excess_over_floor."""
    return _report(model, images, masks, seeds, None, False, True, label, None, device, outputs)


def quality_report(
    model: Model,
    images: Mapping[str, np.ndarray],
    masks: Masks | None = None,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    reference: Model | None = None,
    *,
    label: str | None = None,
    reference_label: str | None = None,
    device: str = "cpu",
    outputs: MutableMapping[tuple[str, str, str, int], np.ndarray] | None = None,
) -> list[dict[str, Any]]:
    """Both reports' columns from one pipeline call per row (the same numbers as calling
    :func:`inside_fill_report` and :func:`outside_report` separately)."""
    return _report(
        model,
        images,
        masks,
        seeds,
        reference,
        True,
        True,
        label,
        reference_label,
        device,
        outputs,
    )
