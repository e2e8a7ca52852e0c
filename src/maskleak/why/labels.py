"""How the page, the legends and the captions write a mechanism value and a variant.
Standard library only: the workflow imports this (through :mod:`maskleak.why.captions`)
when it is parsed."""

from __future__ import annotations

import math
from typing import Any

BASELINE = "baseline"  # maskleak.mechanisms.BASELINE (a test checks they agree)


def value_label(value: Any) -> str:
    """A mechanism value as written: ``on``/``off`` for a switch, ``4`` for 4.0,
    ``default`` for an unset value (None, NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "default"
    # numpy's bool (a table's value) is no bool subclass: known by its type's name.
    if type(value).__name__ in ("bool", "bool_"):
        return "on" if bool(value) else "off"
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        return f"{float(value):g}"
    return str(value)


def changes_text(changed: dict[str, Any]) -> str:
    """``latent_mask=cover, passes=3`` for a mapping of the mechanisms a variant changes."""
    return ", ".join(f"{name}={value_label(value)}" for name, value in changed.items())


def variant_label(variant: str, changed: str) -> str:
    """A variant as a legend writes it: ``baseline``, ``mask_cover (latent_mask=cover)``,
    ``final_paste_on (no change here)``."""
    if variant == BASELINE:
        return variant
    return f"{variant} ({changed or 'no change here'})"
