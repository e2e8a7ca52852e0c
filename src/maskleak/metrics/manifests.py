"""Reading and checking the inpaint manifests the metrics are computed from."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from maskleak import latent_mask, mechanisms
from maskleak.errors import InputError
from maskleak.mask_specs import disc_record
from maskleak.mechanisms import BASELINE, Mechanisms

#: The pipeline of a manifest written before the ``pipeline`` key existed: every
#: inpainting then ran today's diffusers pipeline. From :mod:`maskleak.mechanisms`, not
#: pipeline_choice: the metrics rules' code hash follows imports, and pipeline_choice
#: imports the model code, whose edits must not rerun the metrics.
DEFAULT_PIPELINE = mechanisms.DIFFUSERS


@dataclass(frozen=True)
class Entry:
    """One inpainting listed in a manifest, with its manifest's run-wide fields."""

    manifest: str
    model: str
    pipeline: str  # "diffusers" or "study" (maskleak.pipeline_choice.PIPELINES)
    image: str
    image_path: str
    steps: int
    experiment: str
    #: The disc's radius percentage; None for masks of other shapes.
    radius_pct: float | None
    strength: float
    seed: int
    steps_run: int
    mode: str
    mask_path: str
    inpainted_path: str
    #: The image's VAE round trip (encode to the posterior mode, decode; the manifest's
    #: top-level ``vae_roundtrip_path``); None for a manifest written before it existed.
    vae_roundtrip_path: str | None = None
    #: The same with a (seeded) posterior sample (``vae_roundtrip_sample_path``), or None.
    vae_roundtrip_sample_path: str | None = None
    #: The UNet's input channels (4: latents blended under a latent mask; 9: every latent
    #: regenerated); None when the manifest does not say (footprint unknown).
    unet_in_channels: int | None = None
    #: The pipeline variant that made it (:mod:`maskleak.mechanisms`).
    variant: str = BASELINE
    #: Which pass of a repeated inpainting (1 = inpainted from the original).
    pass_number: int = 1
    #: The mechanisms the variant ran with (the pipeline's own unless it changed some).
    mechanisms: Mechanisms = Mechanisms()
    #: The run-wide dtype the job ran with (the manifest's ``common.dtype``), or None.
    common_dtype: str | None = None
    #: The mask's id and family (maskleak.mask_specs), its dilation and pipeline blur.
    mask_id: str = ""
    mask_kind: str = "circle"
    mask_dilate_px: int = 0
    mask_blur_px: float = 0.0


def _field(obj: Mapping[str, Any], key: str, kind: str, manifest: str, where: str) -> Any:
    """``obj[key]`` checked against ``kind`` ('str', 'int', 'number' or 'bool')."""
    try:
        value = obj[key]
    except KeyError:
        label = f"{where}.{key}" if where else key
        raise InputError(f"manifest {manifest}: missing key {label!r}") from None
    # json.load makes exact str/int/float objects: test those first (thousands of fields
    # per manifest), then the general rule. bool is an int subclass; a JSON true/false
    # is never a valid number here.
    exact = type(value)
    if kind == "str":
        ok = exact is str or isinstance(value, str)
    elif kind == "int":
        ok = exact is int or (isinstance(value, int) and not isinstance(value, bool))
    elif kind == "bool":
        ok = exact is bool
    else:
        ok = exact is float or exact is int
        ok = ok or (isinstance(value, int | float) and not isinstance(value, bool))
    if not ok:
        label = f"{where}.{key}" if where else key
        raise InputError(f"manifest {manifest}: key {label!r} must be {kind}, got {value!r}")
    return float(value) if kind == "number" else value


def _optional(
    obj: Mapping[str, Any], key: str, kind: str, manifest: str, where: str, default: Any
) -> Any:
    """``obj[key]`` checked as :func:`_field` does, or ``default`` when absent."""
    return _field(obj, key, kind, manifest, where) if key in obj else default


def _choice(value: str, choices: tuple[str, ...], manifest: str, label: str) -> str:
    if value not in choices:
        raise InputError(
            f"manifest {manifest}: key {label!r} must be one of {choices}, got {value!r}"
        )
    return value


#: The type of each field of :class:`Mechanisms` in a manifest, and its allowed values
#: (None: any); the same fields in the same order (tested).
_MECHANISM_KINDS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "latent_encoding": ("str", mechanisms.LATENT_ENCODINGS),
    "latent_mask": ("str", latent_mask.RULES),
    "final_latent_paste": ("bool", None),
    "paste_back": ("str", mechanisms.PASTE_BACKS),
    "paste_blur_px": ("number", None),
    "passes": ("int", None),
    "dtype": ("str or null", mechanisms.DTYPES),
}


def _mechanisms(
    item: Mapping[str, Any], manifest: str, where: str, default: Mechanisms
) -> Mechanisms:
    """An entry's ``mechanisms`` object: exactly the fields of :class:`Mechanisms`, each
    type-checked (and its value, where the choices are fixed); ``default`` when absent."""
    if "mechanisms" not in item:
        return default
    spec = item["mechanisms"]
    label = f"{where}.mechanisms"
    if not isinstance(spec, dict):
        raise InputError(f"manifest {manifest}: key {label!r} must be an object, got {spec!r}")
    unknown = sorted(set(spec) - set(_MECHANISM_KINDS))
    if unknown:
        raise InputError(f"manifest {manifest}: key {label!r} has unknown fields {unknown}")
    values: dict[str, Any] = {}
    for name, (kind, choices) in _MECHANISM_KINDS.items():
        if kind == "str or null":
            if name not in spec:
                raise InputError(f"manifest {manifest}: missing key {f'{label}.{name}'!r}")
            value = spec[name]
            if value is not None and not isinstance(value, str):
                raise InputError(
                    f"manifest {manifest}: key {f'{label}.{name}'!r} must be str or null, "
                    f"got {value!r}"
                )
        else:
            value = _field(spec, name, kind, manifest, label)
        if choices is not None and value is not None:
            _choice(value, choices, manifest, f"{label}.{name}")
        values[name] = value
    if values["passes"] < 1:
        raise InputError(f"manifest {manifest}: key {f'{label}.passes'!r} must be >= 1")
    return Mechanisms(**values)


def read_manifest(path: str | os.PathLike[str]) -> list[Entry]:
    """The entries of one inpaint manifest, each field type-checked; InputError naming
    the manifest and the key for anything missing or malformed. A manifest without the
    top-level ``pipeline`` key is read as :data:`DEFAULT_PIPELINE`; one without
    ``vae_roundtrip_path`` (written before the inpaint job saved the round trip) gives
    entries whose ``vae_roundtrip_path`` is None (their VAE-floor metrics are NaN).

    Optional too (older manifests lack them): top-level ``unet_in_channels`` (4 or 9;
    None when absent), ``vae_roundtrip_sample_path`` (None) and ``common.dtype``; per
    entry ``variant`` (:data:`maskleak.mechanisms.BASELINE`), ``pass`` (an int >= 1, at
    most the mechanisms' ``passes``; 1) and ``mechanisms`` (the pipeline's own,
    :func:`maskleak.mechanisms.pipeline_defaults`)."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise InputError(f"manifest {name} not found; rerun the inpaint rule") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"manifest {name} is not readable JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"manifest {name}: top level must be a JSON object")

    model = _field(data, "model", "str", name, "")
    # Optional: manifests written before the pipeline choice existed lack it.
    pipeline = DEFAULT_PIPELINE
    if "pipeline" in data:
        pipeline = _field(data, "pipeline", "str", name, "")
    image = _field(data, "image", "str", name, "")
    image_path = _field(data, "image_path", "str", name, "")
    steps = _field(data, "steps", "int", name, "")
    # Optional too: older manifests have no VAE round trip to measure the floor with.
    roundtrip = _optional(data, "vae_roundtrip_path", "str", name, "", None)
    sample = _optional(data, "vae_roundtrip_sample_path", "str", name, "", None)
    channels = _optional(data, "unet_in_channels", "int", name, "", None)
    if channels is not None and channels not in (4, 9):
        raise InputError(f"manifest {name}: key 'unet_in_channels' must be 4 or 9, got {channels}")
    common = data.get("common")
    common_dtype = None
    if isinstance(common, dict) and "dtype" in common:
        common_dtype = _field(common, "dtype", "str", name, "common")
    own: Mechanisms | None = None  # the pipeline's defaults, looked up when first needed
    items = data.get("inpaintings")
    if not isinstance(items, list):
        raise InputError(
            f"manifest {name}: key 'inpaintings' must be a list, got {type(items).__name__}"
        )

    entries = []
    for i, item in enumerate(items):
        where = f"inpaintings[{i}]"
        if not isinstance(item, dict):
            raise InputError(f"manifest {name}: key {where!r} must be an object")
        if own is None and "mechanisms" not in item:
            try:
                own = mechanisms.pipeline_defaults(pipeline)
            except InputError as exc:
                raise InputError(f"manifest {name}: {exc}") from None
        used = _mechanisms(item, name, where, own)  # type: ignore[arg-type]
        pass_number = _optional(item, "pass", "int", name, where, 1)
        radius = None
        if item.get("radius_pct", 0) is not None:
            radius = _field(item, "radius_pct", "number", name, where)
        mask = _mask(item, radius, name, where)
        if not 1 <= pass_number <= used.passes:
            raise InputError(
                f"manifest {name}: key {f'{where}.pass'!r} must be 1 to its mechanisms' "
                f"passes ({used.passes}), got {pass_number}"
            )
        entries.append(
            Entry(
                manifest=name,
                model=model,
                pipeline=pipeline,
                image=image,
                image_path=image_path,
                steps=steps,
                experiment=_field(item, "experiment", "str", name, where),
                radius_pct=radius,
                strength=_field(item, "strength", "number", name, where),
                seed=_field(item, "seed", "int", name, where),
                steps_run=_field(item, "steps_run", "int", name, where),
                mode=_field(item, "mode", "str", name, where),
                mask_path=_field(item, "mask_path", "str", name, where),
                inpainted_path=_field(item, "inpainted_path", "str", name, where),
                vae_roundtrip_path=roundtrip,
                vae_roundtrip_sample_path=sample,
                unet_in_channels=channels,
                variant=_optional(item, "variant", "str", name, where, BASELINE),
                pass_number=pass_number,
                mechanisms=used,
                common_dtype=common_dtype,
                **mask,
            )
        )
    return entries


def _mask(
    item: Mapping[str, Any], radius: float | None, manifest: str, where: str
) -> dict[str, Any]:
    """An entry's mask fields from its ``mask`` record; a manifest written before mask
    families existed has only ``radius_pct``: the study's disc, named ``r<label>``."""
    mask = item.get("mask")
    if mask is None:
        if radius is None:
            raise InputError(f"manifest {manifest}: key {where!r} has neither mask nor radius_pct")
        disc = disc_record(radius)
        return {"mask_id": disc["mask_id"], "mask_kind": disc["mask_kind"]}
    if not isinstance(mask, dict):
        raise InputError(f"manifest {manifest}: key {f'{where}.mask'!r} must be an object")
    at = f"{where}.mask"
    return {
        "mask_id": _field(mask, "mask_id", "str", manifest, at),
        "mask_kind": _field(mask, "mask_kind", "str", manifest, at),
        "mask_dilate_px": _optional(mask, "dilate_px", "int", manifest, at, 0),
        "mask_blur_px": float(_optional(mask, "blur_px", "number", manifest, at, 0.0)),
    }
