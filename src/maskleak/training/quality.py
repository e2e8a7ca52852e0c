"""Quality of a (trained) tiny inpainting pipeline on held-out images: issue 12's UNet bars.

Any diffusers inpainting folder is measured the same way, 4- or 9-channel UNet alike: at
strength 1.0, 10 steps, guidance 0, the empty prompt and the folder's own scheduler, with
one seeded CPU generator per inpainting and height/width passed explicitly, through the
very call the inpaint rule makes (:func:`maskleak.pipeline_choice.denoise`, the pipeline
as it ships). That call asks diffusers for ``output_type="pil"``, which diffusers makes
from the ``"np"`` float array in [0, 1] as ``(x * 255).round()`` to uint8; the outputs
here are those uint8 (H, W, 3) arrays. As shipped, today's pipeline encodes the image
to a posterior sample drawn with the call's generator; the VAE floor below uses the mode,
as the metrics' ``mse_outside_vae`` does.

Two reports, one row per image x mask x seed:

* :func:`inside_fill_report`: the inpainted hole against the original (``mse_inside``),
  against the cheapest plausible fill, the kept pixels' mean colour
  (``mse_inside_mean_fill``), and against an untrained reference pipeline's hole. Bars:
  ``mse_inside`` at most :data:`INSIDE_OVER_MEAN_FILL_BAR` times the mean fill's (a
  diffusion sample is a sample, not a mean, so it may be worse than the mean, but not by
  much), and at most :data:`FAR_BELOW_REFERENCE_FACTOR` times the untrained model's.
* :func:`outside_report`: the kept pixels' error (``mse_outside``), as PSNR both per
  element (this project's definition) and as BrushBench computes it, beside the VAE floor
  (the posterior-mode round trip's error on the same pixels) and BrushBench's range for
  SD 1.5 inpainting (:data:`BRUSHBENCH_BB_PSNR_RANGE_DB`).

:func:`quality_report` gives both column sets from one pipeline call per row;
:func:`write_quality` writes the rows as Parquet with the parameters recorded, and a JSON
summary (means, pass/fail per bar) beside it.

Units (as in ``workflow/schemas/metrics.columns.yaml``): images are uint8 (H, W, 3) in
0..255, H and W multiples of 8; masks are bool (H, W), True = inpaint ("inside"), False =
keep ("outside"); every MSE is per ELEMENT (squared 8-bit differences summed over the
selected pixels and their 3 channels, divided by pixels x 3), in 8-bit levels^2.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maskleak.errors import InputError

#: The call every row measures (issue 12: "at strength 1").
STRENGTH = 1.0
STEPS = 10
GUIDANCE_SCALE = 0.0
PROMPT = ""
DEFAULT_SEEDS = (0,)

#: Bar 1: mse_inside <= this x mse_inside_mean_fill (issue 12, "Quality bars").
INSIDE_OVER_MEAN_FILL_BAR = 2.0
#: Bar 2, "far below the untrained model's", made a number: mse_inside <= this x the
#: untrained reference's mse_inside.
FAR_BELOW_REFERENCE_FACTOR = 0.5

#: BrushBench's background PSNR of SD 1.5 inpainting (BrushNet, Ju et al. 2024,
#: arXiv:2403.06976; the benchmark's evaluate script: images in [0, 1], squared error
#: SUMMED over RGB per pixel, averaged over the unmasked pixels, PSNR with peak 1, the
#: per-image PSNRs averaged). The project's notes quote two of the paper's numbers:
#: 18.04 dB (/work/shared/NOTES-diffusers.md) and about 21.5 dB (STUDY.md); issue 12
#: states the range as 18-22 dB, which covers both.
BRUSHBENCH_SD15_INPAINTING_BB_PSNR_DB = (18.04, 21.5)
BRUSHBENCH_BB_PSNR_RANGE_DB = (18.0, 22.0)
BRUSHBENCH_SOURCE = (
    "BrushNet (Ju et al. 2024, arXiv:2403.06976), BrushBench background PSNR of SD 1.5 "
    "inpainting: 18.04 dB (NOTES-diffusers.md) and ~21.5 dB (STUDY.md); range as issue 12 "
    "states it"
)

#: BrushBench's PSNR for an MSE below 1e-10 (its calculate_psnr), as in
#: maskleak.metrics.decompose.
BB_PSNR_IDENTICAL = 1000.0
_BB_MIN_MSE = 1.0e-10

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

#: Every column a report can give: name -> unit and definition (recorded in the Parquet
#: file's metadata). Names shared with metrics.columns.yaml mean exactly what they mean
#: there.
COLUMNS: dict[str, str] = {
    "model": "label of the measured pipeline (its folder's name unless the caller names it)",
    "unet_in_channels": "input channels of its UNet: 9 (inpainting checkpoint) or 4",
    "image": "held-out image name",
    "height": "px",
    "width": "px",
    "mask_id": "mask name (DEFAULT_MASKS: r40, r80, rect-40x40, strokes-medium-s0)",
    "n_inside": "pixels the mask inpaints (True)",
    "n_outside": "pixels the mask keeps (False)",
    "area_frac": "fraction (0-1): n_inside / (height * width)",
    "seed": "seed of the pipeline call's CPU generator",
    "mse_inside": (
        "(0-255)^2, per element: squared difference of pipeline output and original summed "
        "over inside pixels and 3 channels, / (n_inside * 3)"
    ),
    "mse_inside_mean_fill": (
        "(0-255)^2, per element: as mse_inside, for the hole filled with the kept pixels' "
        "mean colour per channel rounded half to even to uint8 (mean_fill)"
    ),
    "inside_over_mean_fill": (
        "mse_inside / mse_inside_mean_fill (bar: <= INSIDE_OVER_MEAN_FILL_BAR = 2); NaN "
        "when the mean fill is exact (0)"
    ),
    "reference": "label of the untrained reference pipeline run on the same call",
    "mse_inside_reference": "(0-255)^2: mse_inside of the reference pipeline's output",
    "inside_over_mean_fill_reference": "mse_inside_reference / mse_inside_mean_fill",
    "inside_over_reference": (
        "mse_inside / mse_inside_reference (bar: <= FAR_BELOW_REFERENCE_FACTOR = 0.5); NaN "
        "when the reference's is 0"
    ),
    "mse_outside": (
        "(0-255)^2, per element: as mse_inside over the outside (kept) pixels, / (n_outside * 3)"
    ),
    "psnr_outside": (
        "dB, PER ELEMENT (this project's definition): 10 log10(255^2 / mse_outside); inf "
        "when mse_outside = 0"
    ),
    "bb_psnr_outside": (
        "dB, BrushBench's definition (channel-SUMMED MSE in [0, 1] units, 3 mse_outside / "
        "255^2, peak 1): 20 log10(1 / sqrt(that)) = psnr_outside - 4.77 dB; 1000 when that "
        "MSE < 1e-10. Compare with BRUSHBENCH_BB_PSNR_RANGE_DB"
    ),
    "mse_outside_vae": (
        "(0-255)^2, per element: the VAE floor, mse_outside of the image's VAE round trip "
        "(posterior mode, the model's own VAE and image processor, no denoising; "
        "pipeline_choice.vae_roundtrip) on the same outside pixels"
    ),
    "psnr_outside_vae": "dB, per element: psnr_outside of the VAE round trip",
    "bb_psnr_outside_vae": "dB, BrushBench's definition: bb_psnr_outside of the VAE round trip",
    "excess_over_floor": "(0-255)^2: mse_outside - mse_outside_vae",
}

#: A diffusers inpainting folder, or a pipeline already loaded from one.
Model = str | os.PathLike[str] | Any
#: Masks: mask id -> bool (H, W) for every image, or (width, height) -> such a mapping.
Masks = Mapping[str, np.ndarray] | Callable[[int, int], Mapping[str, np.ndarray]]


# ------------------------------------------------------------------------ arithmetic


def _squared_error_sum(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> int:
    """Exact integer sum of squared differences over the (H, W) pixels ``where`` selects
    and all 3 channels (int64: no wrap-around, no float rounding)."""
    diff = a[where].astype(np.int64) - b[where].astype(np.int64)
    return int(np.sum(diff * diff))


def masked_mse(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    """Per-element MSE of two uint8 (H, W, 3) images over the pixels ``where`` (bool
    (H, W)) selects, in 8-bit levels^2; NaN when it selects none."""
    n = int(where.sum())
    return math.nan if n == 0 else _squared_error_sum(a, b, where) / (3 * n)


def psnr_db(mse: float) -> float:
    """Per-element PSNR in dB: 10 log10(255^2 / mse); inf for 0, NaN for NaN."""
    if math.isnan(mse):
        return math.nan
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def bb_psnr_db(mse: float) -> float:
    """BrushBench's PSNR of a per-element MSE in 8-bit levels^2: its MSE sums the 3
    channels in [0, 1] units (3 mse / 255^2), its peak is 1; 1000 dB below 1e-10."""
    if math.isnan(mse):
        return math.nan
    bb_mse = 3 * mse / 255.0**2
    return BB_PSNR_IDENTICAL if bb_mse < _BB_MIN_MSE else 20 * math.log10(1 / math.sqrt(bb_mse))


def bb_psnr_to_mse(bb_psnr: float) -> float:
    """The per-element MSE (8-bit levels^2) at which BrushBench's PSNR is ``bb_psnr`` dB:
    255^2 / 3 * 10^(-bb_psnr / 10) (18 dB -> 343, 22 dB -> 137)."""
    return 255.0**2 / 3 * 10 ** (-bb_psnr / 10)


def mean_fill(image: np.ndarray, inpaint: np.ndarray) -> np.ndarray:
    """``image`` (uint8 (H, W, 3)) with every pixel ``inpaint`` selects replaced by the
    mean colour of the others, per channel, rounded half to even to uint8 (the sum is an
    exact integer; one float64 division)."""
    keep = ~inpaint
    n_keep = int(keep.sum())
    if n_keep == 0:
        raise InputError("mean fill: the mask keeps no pixel, so there is no mean colour")
    sums = image[keep].astype(np.int64).sum(axis=0)
    colour = np.rint(sums / n_keep).astype(np.uint8)
    filled = image.copy()
    filled[inpaint] = colour
    return filled


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
        "inside_over_mean_fill": _ratio(mse, floor),
    }


def _reference_columns(
    case: _Case, row: Mapping[str, Any], ref_output: np.ndarray, ref: str
) -> dict[str, Any]:
    mse_ref = masked_mse(ref_output, case.image, case.inpaint)
    return {
        "reference": ref,
        "mse_inside_reference": mse_ref,
        "inside_over_mean_fill_reference": _ratio(mse_ref, row["mse_inside_mean_fill"]),
        "inside_over_reference": _ratio(row["mse_inside"], mse_ref),
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


def _ratio(num: float, den: float) -> float:
    return math.nan if den == 0 or math.isnan(den) else num / den


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


# ------------------------------------------------------------------------ summary, files


def _mean(rows: Sequence[Mapping[str, Any]], column: str) -> float:
    return float(np.mean([float(r[column]) for r in rows]))


def _bar_ratio(rows: Sequence[Mapping[str, Any]], num: str, den: str, bar: float) -> dict[str, Any]:
    """A bar on the ratio of two columns' means over all rows (pooled: one flat hole whose
    mean fill is nearly exact would swamp a mean of per-row ratios), with the per-row
    ratios' median and maximum and the share of rows that meet it alone."""
    num_mean, den_mean = _mean(rows, num), _mean(rows, den)
    per_row = np.array([_ratio(float(r[num]), float(r[den])) for r in rows])
    finite = per_row[np.isfinite(per_row)]
    ratio = _ratio(num_mean, den_mean)
    return {
        f"{num}_mean": num_mean,
        f"{den}_mean": den_mean,
        "ratio_of_means": ratio,
        "ratio_median": float(np.median(finite)) if finite.size else math.nan,
        "ratio_max": float(finite.max()) if finite.size else math.nan,
        "rows_meeting_bar": float(np.mean(finite <= bar)) if finite.size else math.nan,
        "bar": bar,
        "passes": bool(ratio <= bar),
    }


def _position(value: float, low: float, high: float) -> str:
    return "below" if value < low else "above" if value > high else "within"


def summarize(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per model: the bars it is measured against (pass/fail on the pooled ratio, see
    :func:`_bar_ratio`) and the outside error's means beside BrushBench's range. The
    BrushBench comparison is a report, not a bar: ``bb_psnr_outside_mean`` is the mean of
    per-row values, BrushBench's own aggregation; ``position`` says where it falls."""
    if not rows:
        raise InputError("quality summary: no rows")
    low, high = BRUSHBENCH_BB_PSNR_RANGE_DB
    models: dict[str, Any] = {}
    for label in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == label]
        entry: dict[str, Any] = {
            "rows": len(mine),
            "unet_in_channels": int(mine[0]["unet_in_channels"]),
            "images": sorted({r["image"] for r in mine}),
            "masks": list(dict.fromkeys(r["mask_id"] for r in mine)),
        }
        if "mse_inside" in mine[0]:
            entry["inside_vs_mean_fill"] = _bar_ratio(
                mine, "mse_inside", "mse_inside_mean_fill", INSIDE_OVER_MEAN_FILL_BAR
            )
        if "mse_inside_reference" in mine[0]:
            entry["inside_vs_reference"] = {
                "reference": mine[0]["reference"],
                **_bar_ratio(
                    mine, "mse_inside", "mse_inside_reference", FAR_BELOW_REFERENCE_FACTOR
                ),
            }
        if "mse_outside" in mine[0]:
            bb_mean = _mean(mine, "bb_psnr_outside")
            mse_mean = _mean(mine, "mse_outside")
            entry["outside"] = {
                "mse_outside_mean": mse_mean,
                "mse_outside_vae_mean": _mean(mine, "mse_outside_vae"),
                "excess_over_floor_mean": _mean(mine, "excess_over_floor"),
                "psnr_outside_mean": _mean(mine, "psnr_outside"),
                "bb_psnr_outside_mean": bb_mean,
                "bb_psnr_outside_vae_mean": _mean(mine, "bb_psnr_outside_vae"),
                "brushbench_bb_psnr_range_db": [low, high],
                "brushbench_mse_outside_range": [bb_psnr_to_mse(high), bb_psnr_to_mse(low)],
                "brushbench_source": BRUSHBENCH_SOURCE,
                "position": _position(bb_mean, low, high),
            }
        models[label] = entry
    return {"models": models}


def settings_record() -> dict[str, Any]:
    """The call every row measures, for the files' records."""
    return {
        "strength": STRENGTH,
        "steps": STEPS,
        "guidance_scale": GUIDANCE_SCALE,
        "prompt": PROMPT,
        "scheduler": "default (the folder's own)",
        "call": "maskleak.pipeline_choice.denoise, output_type pil = round(np * 255) to uint8",
        "generator": "one torch.Generator('cpu').manual_seed(seed) per call",
        "mse": "per element, 8-bit levels^2",
        "bars": {
            "inside_over_mean_fill": INSIDE_OVER_MEAN_FILL_BAR,
            "inside_over_reference": FAR_BELOW_REFERENCE_FACTOR,
        },
        "brushbench_bb_psnr_range_db": list(BRUSHBENCH_BB_PSNR_RANGE_DB),
    }


def write_quality(
    rows: Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    parameters: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``rows`` to the Parquet file ``path`` (maskleak.provenance.write_parquet:
    the record holds :func:`settings_record`, the caller's ``parameters`` (model folders
    and fingerprints, images, seeds, ...) and each column's definition) and the summary
    (:func:`summarize`, same record) to ``path`` with suffix ``.json``; returns the
    summary. A column not in :data:`COLUMNS` is an InputError naming it."""
    import pandas as pd

    from maskleak.provenance import versions, write_json, write_parquet

    if not rows:
        raise InputError(f"{os.fspath(path)}: no quality rows to write")
    names = list(rows[0])
    unknown = [c for c in names if c not in COLUMNS]
    if unknown:
        raise InputError(f"{os.fspath(path)}: quality column(s) {unknown} have no definition")
    record = {
        "stage": "training_quality",
        "settings": settings_record(),
        "parameters": dict(parameters or {}),
    }
    frame = pd.DataFrame([dict(r) for r in rows], columns=names)
    write_parquet(frame, path, {**record, "columns": {c: COLUMNS[c] for c in names}})
    summary = {**record, **summarize(rows)}
    write_json(Path(path).with_suffix(".json"), _json_safe({**summary, "versions": versions()}))
    return summary


def _json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (an identical outside's inf PSNR, a NaN
    ratio) as None: JSON has no inf or NaN, and the project writes strict JSON."""
    if isinstance(value, Mapping):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
