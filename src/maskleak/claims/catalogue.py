"""The study's 8 claims (STUDY.md, "The study's claims"): number, short text, the sweep
that tests each, and the report figures that show it; and what the verdict page's report
caption says. Standard library only: the workflow imports this when it is parsed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from maskleak.claims.verdicts import PRACTICAL_REL, plain

#: The report category of the verdict page. Snakemake's report lists its categories
#: alphabetically (menu.js: localeCompare), and the verdicts must come first, before
#: "Beyond the study", "Mask-size sweep", "Strength sweep" and "Worst cases".
REPORT_CATEGORY = "A verdict on each claim"


@dataclass(frozen=True)
class Claim:
    """One of the study's claims: its number, a short text, the sweep that tests it and
    the report figures that show it (file stems, or the folder of a figure family such as
    worst_case/<image>.png, under results/<run>/figures/)."""

    number: int
    text: str
    experiment: str
    figures: tuple[str, ...]


CLAIMS: tuple[Claim, ...] = (
    Claim(
        1,
        "Inpainting changes pixels outside the mask",
        "strength_sweep",
        ("strength_grid", "strength_trend", "worst_case"),
    ),
    Claim(
        2,
        "Outside-mask MSE grows with strength",
        "strength_sweep",
        ("strength_trend", "strength_grid"),
    ),
    Claim(
        3,
        "Its variance across images grows with strength, spiking at >= 0.6",
        "strength_sweep",
        ("strength_trend", "strength_grid"),
    ),
    Claim(
        4,
        "Flat regions change little, textured regions more",
        "strength_sweep",
        ("model_comparison",),
    ),
    Claim(
        5,
        "The band at the mask's edge changes most",
        "strength_sweep",
        ("model_comparison", "worst_case"),
    ),
    Claim(6, "Mask size has little effect", "mask_size_sweep", ("area_curves", "radius_gallery")),
    Claim(7, "For small masks strength matters less", "mask_size_sweep", ("area_curves",)),
    Claim(
        8,
        "Noise is added to the whole image (the study's hypothesis)",
        "strength_sweep",
        ("model_comparison", "worst_case"),
    ),
)


def report_caption(table: str, page: str, figures: str) -> dict[str, Any]:
    """The values the verdict page's caption (workflow/report/claims.rst) states: where
    the claims table, the page and the figures are, the practical margin, and per claim
    its number, text and figure stems (to link the report's figures)."""
    return {
        "table": table,
        "page": page,
        "figures": figures,
        "practical": f"{plain(100 * PRACTICAL_REL)} %",
        "claims": [
            {"number": c.number, "text": c.text, "figures": list(c.figures)} for c in CLAIMS
        ],
    }
