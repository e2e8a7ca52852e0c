"""Sweep values as the config gives them and as files name them: lists or
``numpy.linspace`` ranges (optionally rounded, as the study's were), canonical floats, and
the short labels that file names carry."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from maskleak.errors import InputError


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
    radius_pct: dict[str, float]
    strengths: dict[str, float]
    seeds: list[int]
    #: The models it runs and its variants' passes (variant -> passes), in config order.
    models: list[str] = field(default_factory=list)
    passes: dict[str, int] = field(default_factory=lambda: {"baseline": 1})

    @property
    def variants(self) -> list[str]:
        return list(self.passes)

    @property
    def per_image(self) -> int:
        """Inpaintings (PNGs) of one model on one image: radii x strengths x seeds x the
        variants' passes."""
        n = len(self.radius_pct) * len(self.strengths) * len(self.seeds)
        return n * sum(self.passes.values())
