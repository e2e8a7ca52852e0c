"""How a claim's statistic and its 95 % interval become a verdict: the rules, in one place.

Every claim test (:mod:`maskleak.claims.strength`, :mod:`~maskleak.claims.regions`,
:mod:`~maskleak.claims.mask_size`) reduces the claim to one statistic, a ``reference``
value it is compared with and a ``direction``:

* ``direction = "greater"`` (the claim says the statistic exceeds ``reference``, e.g. a
  slope > 0, a ratio > 1):

  - **holds** if the whole interval lies above ``reference`` (``ci_low > reference``);
    an effect shown to exist holds even when it is small: if the interval also lies
    inside the practical-equivalence band ``reference ± margin``, the evidence says "the
    effect is real but small";
  - **does not hold** if the whole interval lies at or below it (``ci_high <=
    reference``), or if it straddles ``reference`` inside the band (``margin > 0``): any
    effect is then known to be too small to matter;
  - **inconclusive** otherwise (the interval straddles ``reference`` and is wider
    than the band).

* ``direction = "less"``: the mirror image (holds if ``ci_high < reference``; does not
  hold if ``ci_low >= reference`` or the interval straddles it inside the band).

* **not testable here** when the run's data cannot give the statistic (too few
  strengths, no ground-truth regions, no version of the wrapped metric for that part of
  the image, ...); the evidence then says why. A run with one image and one seed has
  nothing to resample: its interval would have zero width, so every testable claim is
  **inconclusive** there.

The practical margin: :data:`PRACTICAL_REL` of the level the statistic is about (for
slopes, a change across the swept range smaller than 10 % of the mean level; for ratios,
0.9-1.1). The study itself called its Fig 4.3 trend "growth": 9.694x² − 4.105x + 40 rises
from 40.0 at strength 0 to 45.6 at strength 1, +14 %. A change below 10 % across the
whole swept range is smaller than any effect the study reported as one, and claim 6
("mask size has little effect") is judged against the same 10 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

# Only the standard library here: the workflow imports this (through
# maskleak.claims.catalogue) when it is parsed, and must not pay for numpy or pandas.

HOLDS = "holds"
DOES_NOT_HOLD = "does not hold"
INCONCLUSIVE = "inconclusive"
NOT_TESTABLE = "not testable here"
#: Every value of the table's ``verdict`` column.
VERDICTS: tuple[str, ...] = (HOLDS, DOES_NOT_HOLD, INCONCLUSIVE, NOT_TESTABLE)

#: A change smaller than this share of its level counts as practically nil ("little"):
#: below the +14 % the study's own Fig 4.3 trend rises across strengths 0-1 and calls
#: growth (see the module docstring).
PRACTICAL_REL: float = 0.10

#: A rank correlation below this counts as no relation: Cohen's "small" effect size for a
#: correlation (claim 4, tested with a Spearman correlation on every image).
PRACTICAL_RHO: float = 0.10

Direction = Literal["greater", "less"]


@dataclass(frozen=True)
class Finding:
    """One claim tested on one model and metric: a row of the claims table without the
    claim's and model's identity. ``value``, ``ci_low``, ``ci_high``, ``reference`` and
    ``margin`` are in ``unit``; all NaN (and the verdict ``not testable here``) where
    the data cannot test the claim."""

    statistic: str
    value: float
    ci_low: float
    ci_high: float
    unit: str
    reference: float
    margin: float
    direction: Direction
    verdict: str
    evidence: str
    n_images: int
    n_seeds: int
    resampled: str


def inside_margin(ci_low: float, ci_high: float, reference: float, margin: float) -> bool:
    """Whether the interval lies inside the practical-equivalence band ``reference ±
    margin`` (never, for ``margin <= 0``)."""
    return margin > 0 and reference - margin <= ci_low and ci_high <= reference + margin


def verdict(
    ci_low: float, ci_high: float, reference: float, direction: Direction, margin: float = 0.0
) -> str:
    """The verdict for an interval (see the module docstring for the rules). An interval
    with a NaN bound is ``inconclusive``."""
    if math.isnan(ci_low) or math.isnan(ci_high):
        return INCONCLUSIVE
    inside_band = inside_margin(ci_low, ci_high, reference, margin)
    if direction == "greater":
        if ci_low > reference:
            return HOLDS
        if ci_high <= reference or inside_band:
            return DOES_NOT_HOLD
        return INCONCLUSIVE
    if ci_high < reference:
        return HOLDS
    if ci_low >= reference or inside_band:
        return DOES_NOT_HOLD
    return INCONCLUSIVE


def not_testable(
    statistic: str, unit: str, why: str, n_images: int = 0, n_seeds: int = 0
) -> Finding:
    """The finding for a claim the data cannot test; ``why`` is the evidence sentence."""
    nan = math.nan
    return Finding(
        statistic=statistic,
        value=nan,
        ci_low=nan,
        ci_high=nan,
        unit=unit,
        reference=nan,
        margin=nan,
        direction="greater",
        verdict=NOT_TESTABLE,
        evidence=why,
        n_images=n_images,
        n_seeds=n_seeds,
        resampled="",
    )


def number(value: float) -> str:
    """A number as the evidence sentences write it: 3 significant digits, no exponent
    for everyday magnitudes (``12.3``, ``0.0457``, ``1,234``), a typographic minus."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        text = f"{magnitude:,.0f}"
    elif magnitude >= 1e-3:
        digits = max(0, 2 - math.floor(math.log10(magnitude)))
        text = f"{magnitude:.{digits}f}"
    else:
        text = f"{magnitude:.2e}"
    return ("−" if value < 0 else "") + text


def plain(value: float) -> str:
    """A swept setting (strength, radius percentage) as the config writes it: ``0.6``,
    ``1``, ``0.25``, ``80``."""
    return f"{value:.4g}"


def counted(n: int, singular: str, plural: str = "") -> str:
    """``n`` things in words: ``1 image``, ``3 images``, ``0 radii`` (``plural`` where it
    is not ``singular`` + "s")."""
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


def percent(value: float) -> str:
    """A share as a signed percentage with 3 significant digits: ``+14.0 %``."""
    if math.isnan(value):
        return "NaN %"
    return ("+" if value > 0 else "") + number(100 * value) + " %"
