"""What the report captions say about a run, computed from its plan: values as a person
writes them (``20, 40, 60, 80 %``, ``0–1 in 100 evenly spaced values``), where the run's
tables are, and whether a figure can show what the config asked for.

Each figure rule passes one of these dicts as ``params.caption``; its caption template
(workflow/report/*.rst) reads ``snakemake.params.caption``. The workflow imports this
module when it is parsed; the figure scripts do not."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from maskleak import config as plan_config
from maskleak.bootstrap import LEVEL, N_RESAMPLES
from maskleak.config import Plan
from maskleak.sweeps import expand_values, number_label
from maskleak.trends import STUDY_PUBLISHED_FIT, equation

#: Lists up to this long are written out in full.
MAX_LISTED = 8

RADIUS_RULE = "r = floor(p/100 · min(w, h)/2)"


def _with_unit(text: str, unit: str) -> str:
    return f"{text} {unit}" if unit else text


def values_text(spec: Any, key: str, unit: str = "") -> str:
    """A config list or ``{start, stop, num}`` range as a person writes it: ``20, 40 %``
    for a short list, ``0–1 in 100 evenly spaced values`` for a long even one."""
    values = expand_values(spec, key)
    if len(values) <= MAX_LISTED:
        return _with_unit(", ".join(number_label(v) for v in values), unit)
    low, high = number_label(min(values)), number_label(max(values))
    span = _with_unit(f"{low}–{high}", unit)
    steps = np.diff(values)
    if np.allclose(steps, steps[0], rtol=1e-6, atol=1e-12):
        return f"{span} in {len(values)} evenly spaced values"
    if isinstance(spec, Mapping) and spec.get("round") is not None:
        return f"{span} in {len(values)} evenly spaced values rounded to {spec['round']} decimals"
    return f"{len(values)} values from {span}"


def named(singular: str, plural: str, n: int, text: str) -> str:
    """``strength 0.5`` or ``strengths 0, 0.5, 1``."""
    return f"{singular if n == 1 else plural} {text}"


def seeds_text(seeds: Sequence[int]) -> str:
    """``seed 0`` or ``seeds 0, 1, 2``."""
    listed = ", ".join(str(s) for s in seeds)
    return f"seed {listed}" if len(seeds) == 1 else f"seeds {listed}"


def over_seeds_text(seeds: Sequence[int]) -> str:
    """How a curve treats the seeds: ``at seed 0`` or ``mean over seeds 0, 1``."""
    return f"at {seeds_text(seeds)}" if len(seeds) == 1 else f"mean over {seeds_text(seeds)}"


def _percent() -> str:
    return f"{LEVEL * 100:g} %"


def seed_band_text(n_seeds: int) -> str:
    """What the per-image figures shade: the t-interval over the seeds, or why nothing."""
    if n_seeds < 2:
        return "No confidence band is drawn: each setting ran one seed."
    return (
        f"Shaded: the {_percent()} confidence band of the mean over the {n_seeds} seeds"
        f" (Student t, {n_seeds - 1} degree{'s' if n_seeds > 2 else ''} of freedom)."
    )


def image_band_text(n_images: int) -> str:
    """What the image-averaging figures shade: the t-interval over the images' seed
    means, or why nothing."""
    if n_images < 2:
        return "No confidence band is drawn: the run has one image."
    return (
        f"Shaded: the {_percent()} confidence band of the mean over the {n_images} images"
        f" (Student t over each image's mean over its seeds, {n_images - 1}"
        f" degree{'s' if n_images > 2 else ''} of freedom)."
    )


def fit_interval_text(n_images: int, n_seeds: int) -> str:
    """How the trend coefficients' intervals were made (``the legend gives …``)."""
    if n_images < 2 and n_seeds < 2:
        return "no interval for the coefficients (one image, one seed: nothing to resample)"
    if n_images < 2:
        what = "the seeds"
    elif n_seeds < 2:
        what = "the images"
    else:
        what = "the images and, within each drawn image, its seeds"
    return (
        f"each coefficient's {_percent()} bootstrap interval ({N_RESAMPLES} resamples of"
        f" {what}, each refitted as the fit itself)"
    )


def _tables(plan: Plan) -> dict[str, str]:
    return {
        "results": plan.path(plan_config.RESULTS),
        "metrics": plan.path(plan_config.METRICS),
        "trends": plan.path(plan_config.TRENDS),
    }


def _sweep(plan: Plan, name: str) -> Mapping[str, Any]:
    return plan.config["experiments"][name]


def sweep_values(plan: Plan, name: str) -> dict[str, Any]:
    """Experiment ``name``'s strengths, radii and seeds as a caption states them (values
    as written in the config), with their counts."""
    spec = _sweep(plan, name)
    key = f"experiments.{name}"
    experiment = plan.experiments[name]
    strengths = values_text(spec["strengths"], f"{key}.strengths")
    n_strengths, n_radii = len(experiment.strengths), len(experiment.radius_pct)
    if spec.get("radius_pct") is not None:
        radii = named(
            "radius", "radii", n_radii, values_text(spec["radius_pct"], f"{key}.radius_pct", "%")
        )
    else:
        discs = ", ".join(experiment.radius_pct)
        radii = named("radius", "radii", n_radii, f"{discs} %") if n_radii else "no disc"
    # Masks of other families (maskleak.mask_specs) than the study's discs.
    others = [mask_id for mask_id, spec in experiment.masks.items() if not spec.is_study_disc]
    if others:
        radii += f", and {len(others)} other mask{'s' if len(others) > 1 else ''}"
        radii += f" ({', '.join(others)})"
    return {
        "strengths": named("strength", "strengths", n_strengths, strengths),
        "n_strengths": n_strengths,
        "radii": radii,
        "n_radii": n_radii,
        "seeds": seeds_text(experiment.seeds),
        "over_seeds": over_seeds_text(experiment.seeds),
        "n_seeds": len(experiment.seeds),
    }


def _common(plan: Plan, name: str) -> dict[str, Any]:
    """The facts of one experiment that several captions state."""
    experiment = plan.experiments[name]
    return {
        **_tables(plan),
        **sweep_values(plan, name),
        "n_images": len(plan.images),
        "seed_band": seed_band_text(len(experiment.seeds)),
        "image_band": image_band_text(len(plan.images)),
        "steps": int(plan.config["inpaint"]["steps"]),
        "radius_rule": RADIUS_RULE,
    }


def strength_sweep(plan: Plan) -> dict[str, Any]:
    """Caption values of the strength-sweep figures (grid, trend, worst cases). ``fit``:
    whether the sweep has the 3 strengths a degree-2 fit needs."""
    facts = _common(plan, "strength_sweep")
    return {
        **facts,
        "fit": facts["n_strengths"] >= 3,
        "fit_interval": fit_interval_text(facts["n_images"], facts["n_seeds"]),
        "published_fit": equation(list(STUDY_PUBLISHED_FIT)).removeprefix("y = "),
    }


def mask_size_sweep(plan: Plan) -> dict[str, Any]:
    """Caption values of the area curves. ``fit``: whether the sweep has the 2 radii a
    linear fit needs."""
    facts = _common(plan, "mask_size_sweep")
    return {**facts, "fit": facts["n_radii"] >= 2}


def _available(wanted: float, values: Sequence[float]) -> bool:
    return any(math.isclose(wanted, v, rel_tol=0.0, abs_tol=1e-9) for v in values)


def radius_gallery(plan: Plan) -> dict[str, Any]:
    """Caption values of the radius gallery: the requested strength and radii, and
    whether the mask-size sweep has them (else the figure shows the nearest ones)."""
    gallery = plan.figures["gallery"]
    experiment = plan.experiments["mask_size_sweep"]
    strengths = list(experiment.strengths.values())
    radii = list(experiment.radius_pct.values())
    wanted_radii = [float(r) for r in gallery["radius_pct"]]
    return {
        **_common(plan, "mask_size_sweep"),
        "image": str(gallery["image"]),
        "strength": named("strength", "", 1, number_label(float(gallery["strength"]))),
        "wanted_radii": named(
            "radius",
            "radii",
            len(wanted_radii),
            values_text(wanted_radii, "figures.gallery.radius_pct", "%"),
        ),
        "nearest_strength": not _available(float(gallery["strength"]), strengths),
        "nearest_radii": not all(_available(r, radii) for r in wanted_radii),
    }


def model_comparison(plan: Plan) -> dict[str, Any]:
    """Caption values of the model comparison: models, edge band width, whether the run
    has procedural images (the flat / textured panel), the confidence band."""
    return {
        **_tables(plan),
        "image_band": image_band_text(len(plan.images)),
        "models": ", ".join(plan.models),
        "band_px": plan.band_px,
        "procedural": bool(plan.procedural_images()),
        "strengths": _common(plan, "strength_sweep")["strengths"],
    }
