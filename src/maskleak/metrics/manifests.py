"""Reading and checking the inpaint manifests the metrics are computed from."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from maskleak.errors import InputError

#: The pipeline of a manifest written before the ``pipeline`` key existed: every
#: inpainting then ran today's diffusers pipeline
#: (:data:`maskleak.pipeline_choice.DEFAULT_PIPELINE`). Not imported from there: the
#: metrics rules' code hash follows imports, and pipeline_choice imports the model code,
#: whose edits must not rerun the metrics.
DEFAULT_PIPELINE = "diffusers"


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
    radius_pct: float
    strength: float
    seed: int
    steps_run: int
    mode: str
    mask_path: str
    inpainted_path: str
    #: The image's VAE round trip (encode to the posterior mode, decode; the manifest's
    #: top-level ``vae_roundtrip_path``); None for a manifest written before it existed.
    vae_roundtrip_path: str | None = None


def _field(obj: Mapping[str, Any], key: str, kind: str, manifest: str, where: str) -> Any:
    """``obj[key]`` checked against ``kind`` ('str', 'int' or 'number')."""
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
    else:
        ok = exact is float or exact is int
        ok = ok or (isinstance(value, int | float) and not isinstance(value, bool))
    if not ok:
        label = f"{where}.{key}" if where else key
        raise InputError(f"manifest {manifest}: key {label!r} must be {kind}, got {value!r}")
    return float(value) if kind == "number" else value


def read_manifest(path: str | os.PathLike[str]) -> list[Entry]:
    """The entries of one inpaint manifest, each field type-checked; InputError naming
    the manifest and the key for anything missing or malformed. A manifest without the
    top-level ``pipeline`` key is read as :data:`DEFAULT_PIPELINE`; one without
    ``vae_roundtrip_path`` (written before the inpaint job saved the round trip) gives
    entries whose ``vae_roundtrip_path`` is None (their VAE-floor metrics are NaN)."""
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
    roundtrip = None
    if "vae_roundtrip_path" in data:
        roundtrip = _field(data, "vae_roundtrip_path", "str", name, "")
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
        entries.append(
            Entry(
                manifest=name,
                model=model,
                pipeline=pipeline,
                image=image,
                image_path=image_path,
                steps=steps,
                experiment=_field(item, "experiment", "str", name, where),
                radius_pct=_field(item, "radius_pct", "number", name, where),
                strength=_field(item, "strength", "number", name, where),
                seed=_field(item, "seed", "int", name, where),
                steps_run=_field(item, "steps_run", "int", name, where),
                mode=_field(item, "mode", "str", name, where),
                mask_path=_field(item, "mask_path", "str", name, where),
                inpainted_path=_field(item, "inpainted_path", "str", name, where),
                vae_roundtrip_path=roundtrip,
            )
        )
    return entries
