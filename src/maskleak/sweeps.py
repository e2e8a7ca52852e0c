"""Sweep values as the config gives them and as files name them: lists or
``numpy.linspace`` ranges (optionally rounded, as the study's were), canonical floats, and
the short labels that file names carry."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from maskleak import mechanisms
from maskleak.errors import InputError

EXPERIMENTS = ("strength_sweep", "mask_size_sweep", "mechanism_sweep", "mask_shape_sweep")
#: The thesis' experiments: their figures show each pipeline as it ships.
THESIS_EXPERIMENTS = ("strength_sweep", "mask_size_sweep")


def number_label(value: float) -> str:
    """Short, stable file-name label: 80.0 -> '80', 0.5 -> '0.5', 1/99 -> '0.0101'."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


#: Decimals every swept value is rounded to, whichever notation the config used.
VALUE_DECIMALS = 9


def canonical_value(value: float) -> float:
    """``value`` rounded to ``VALUE_DECIMALS`` decimals, with -0.0 as 0.0: the one float
    that file names, cache keys and table values all use for it."""
    return round(float(value), VALUE_DECIMALS) + 0.0


def expand_values(spec: Any, key: str) -> list[float]:
    """A list of numbers, or ``{start, stop, num}`` for ``num`` evenly spaced values
    (numpy.linspace, endpoints included, as the study's sweeps were), with an optional
    ``round: d`` that rounds them as ``numpy.round(values, d)`` (the study's strengths
    were ``np.round(np.linspace(0, 1, 100), 2)``, which has no 0.50).

    Every value is canonicalised (``canonical_value``), so ``{start: 0, stop: 1, num: 6}``
    and ``[0, 0.2, 0.4, 0.6, 0.8, 1]`` give the same floats (linspace's
    0.6000000000000001 is 0.6) and so the same inpaintings."""
    if isinstance(spec, Mapping):
        missing = {"start", "stop", "num"} - set(spec)
        if missing:
            raise InputError(f"config key {key}: range needs {sorted(missing)}")
        values = np.linspace(float(spec["start"]), float(spec["stop"]), int(spec["num"]))
        if spec.get("round") is not None:
            values = np.round(values, int(spec["round"]))
            if len(np.unique(values)) != len(values):
                raise InputError(
                    f"config key {key}.round: rounding to {spec['round']} decimals makes "
                    "values repeat; use more decimals or fewer values"
                )
        result = [float(v) for v in values]
    elif isinstance(spec, Sequence) and not isinstance(spec, str):
        result = [float(v) for v in spec]
    else:
        raise InputError(f"config key {key}: expected a list or {{start, stop, num}}, got {spec!r}")
    if not result:
        raise InputError(f"config key {key}: no values")
    if any(not math.isfinite(v) for v in result):
        raise InputError(f"config key {key}: values must be finite, got {result}")
    return [canonical_value(v) for v in result]


def unique_labels(values: Sequence[float], key: str) -> dict[str, float]:
    """Label -> value for ``values``; an error naming ``key`` when two values would share
    a file-name label (:func:`number_label`)."""
    labels: dict[str, float] = {}
    for value in values:
        label = number_label(value)
        if label in labels and labels[label] != value:
            raise InputError(
                f"config key {key}: {labels[label]!r} and {value!r} both round to '{label}' "
                "(4 decimals); use values that differ in the first 4 decimals"
            )
        labels[label] = value
    return labels


@dataclass(frozen=True)
class Experiment:
    name: str
    #: Mask id -> spec (maskleak.mask_specs.MaskSpec), in config order.
    masks: dict[str, Any]
    strengths: dict[str, float]
    seeds: list[int]
    #: The models it runs and its variants' passes (variant -> passes), in config order.
    models: list[str] = field(default_factory=list)
    passes: dict[str, int] = field(default_factory=lambda: {"baseline": 1})

    @property
    def variants(self) -> list[str]:
        return list(self.passes)

    @property
    def radius_pct(self) -> dict[str, float]:
        """Label (:func:`number_label`) -> radius percentage of its discs drawn as the
        study drew them (circle masks without dilation or blur, named or not)."""
        return {
            number_label(spec.radius_pct): spec.radius_pct
            for spec in self.masks.values()
            if spec.is_study_disc
        }

    @property
    def per_image(self) -> int:
        """Inpaintings (PNGs) of one model on one image: masks x strengths x seeds x the
        variants' passes."""
        n = len(self.masks) * len(self.strengths) * len(self.seeds)
        return n * sum(self.passes.values())


def read_variants(spec: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Config ``variants``: name -> the mechanisms it sets (checked), with ``baseline``
    (nothing set) built in."""
    if mechanisms.BASELINE in spec:
        raise InputError(
            f"config key variants.{mechanisms.BASELINE}: the name is taken by each "
            "pipeline as it ships; give the variant another name"
        )
    variants: dict[str, dict[str, Any]] = {mechanisms.BASELINE: {}}
    for name, changes in spec.items():
        variants[name] = mechanisms.check_variant(changes, f"variants.{name}")
    return variants


def read_experiments(
    spec: Mapping[str, Any],
    models: Sequence[str],
    variants: Mapping[str, Mapping[str, Any]],
    images: Sequence[str] = (),
) -> dict[str, Experiment]:
    """Config ``experiments``, each checked beyond the schema and naming the config key:
    values in range and distinct, models and variants known, the thesis' sweeps with
    ``baseline``, and every model in some experiment. ``images``: the run's image names,
    which a mask folder's files are matched to."""
    from maskleak.mask_specs import read_masks

    experiments: dict[str, Experiment] = {}
    for name, entry in spec.items():
        key = f"experiments.{name}"
        if name not in EXPERIMENTS:
            raise InputError(f"config key {key}: unknown experiment (use {EXPERIMENTS})")
        strengths = expand_values(entry["strengths"], f"{key}.strengths")
        if any(not 0 <= s <= 1 for s in strengths):
            raise InputError(f"config key {key}.strengths: values must be in [0, 1]")
        seeds = [int(s) for s in entry["seeds"]]
        if len(set(seeds)) != len(seeds):
            raise InputError(f"config key {key}.seeds: seeds repeat: {seeds}")
        experiments[name] = Experiment(
            name,
            read_masks(entry, key, images),
            unique_labels(strengths, f"{key}.strengths"),
            seeds,
            _experiment_models(entry, key, models),
            _experiment_passes(name, entry, key, variants),
        )
    if not experiments:
        raise InputError(f"config key experiments: name at least one of {EXPERIMENTS}")
    for model in models:
        if not any(model in e.models for e in experiments.values()):
            raise InputError(
                f"config key models.{model}: no experiment runs it "
                "(add it to an experiment's models, or remove it)"
            )
    return experiments


def _experiment_models(entry: Mapping[str, Any], key: str, models: Sequence[str]) -> list[str]:
    names = list(entry.get("models") or models)
    for i, model in enumerate(names):
        if model not in models:
            raise InputError(f"config key {key}.models[{i}]: unknown model {model!r}")
    return names


def _experiment_passes(
    name: str, entry: Mapping[str, Any], key: str, variants: Mapping[str, Mapping[str, Any]]
) -> dict[str, int]:
    """Variant -> passes, for the variants the experiment names."""
    names = list(entry.get("variants") or [mechanisms.BASELINE])
    for i, variant in enumerate(names):
        if variant not in variants:
            raise InputError(
                f"config key {key}.variants[{i}]: unknown variant {variant!r} "
                f"(define it under variants, or use {mechanisms.BASELINE})"
            )
    if name in THESIS_EXPERIMENTS and mechanisms.BASELINE not in names:
        raise InputError(
            f"config key {key}.variants: must include {mechanisms.BASELINE} (the thesis "
            "figures show each pipeline as it ships)"
        )
    return {v: int(variants[v].get("passes", 1)) for v in names}
