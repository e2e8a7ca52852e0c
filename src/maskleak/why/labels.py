"""How the page, the legends and the captions write a variant and what it changes (a
value as :func:`maskleak.mechanisms.value_label` writes it, as file names do)."""

from __future__ import annotations

from typing import Any

from maskleak.mechanisms import BASELINE, value_label

__all__ = ["BASELINE", "changes_text", "value_label", "variant_label"]


def changes_text(changed: dict[str, Any]) -> str:
    """``latent_mask=cover, passes=3`` for a mapping of the mechanisms a variant changes."""
    return ", ".join(f"{name}={value_label(value)}" for name, value in changed.items())


def variant_label(variant: str, changed: str) -> str:
    """A variant as a legend writes it: ``baseline``, ``mask_cover (latent_mask=cover)``,
    ``final_paste_on (no change here)``."""
    if variant == BASELINE:
        return variant
    return f"{variant} ({changed or 'no change here'})"
