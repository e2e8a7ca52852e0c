"""The console summary of a plan: what a run (or dry run) of a config means, printed by
the workflow when it is parsed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from maskleak import mechanisms
from maskleak.config import RESULTS
from maskleak.sweeps import Experiment

if TYPE_CHECKING:
    from maskleak.config import Plan


def summary(plan: Plan) -> str:
    """For the console: what a run (or dry run) of this config means, then one line
    per experiment with its exact radii, strengths and seeds (as file names carry
    them)."""
    parts = []
    for e in plan.experiments.values():
        variants = ""
        if e.variants != [mechanisms.BASELINE]:
            variants = f" x {sum(e.passes.values())} variant passes"
        parts.append(
            f"{e.name}: {len(plan.images)} images x {len(e.models)} models x "
            f"{_masks_text(e)} x {len(e.strengths)} strengths x "
            f"{len(e.seeds)} seeds{variants} = "
            f"{e.per_image * len(plan.images) * len(e.models)}"
        )
    return (
        f"maskleak plan (run {plan.run!r}, outputs in {plan.path(RESULTS)}/): "
        f"{plan.n_inpaintings()} inpaintings in "
        f"{len(plan.images) * len(plan.models)} inpaint jobs (one per model and image; "
        f"inpaintings shared by experiments are computed once) -- "
        + "; ".join(parts)
        + "\n  models: "
        + ", ".join(f"{m} ({plan.model_pipeline(m)} pipeline)" for m in plan.models)
        + "".join(
            f"\n  {e.name}: {_mask_list(e)}"
            f"; strengths ({len(e.strengths)}): {', '.join(e.strengths)}"
            f"; seeds: {', '.join(map(str, e.seeds))}"
            + (
                f"; models: {', '.join(e.models)}; variants: "
                + ", ".join(f"{v} ({n} passes)" if n > 1 else v for v, n in e.passes.items())
                if e.variants != [mechanisms.BASELINE] or e.models != plan.models
                else ""
            )
            for e in plan.experiments.values()
        )
    )


def _discs_only(experiment: Experiment) -> bool:
    """Whether the masks are exactly the study's discs under their own names (r80), so
    that listing the radii names every file."""
    return list(experiment.masks) == [f"r{label}" for label in experiment.radius_pct]


def _masks_text(experiment: Experiment) -> str:
    """``4 radii`` for the study's discs, else ``12 masks``."""
    return f"{len(experiment.masks)} {'radii' if _discs_only(experiment) else 'masks'}"


def _mask_list(experiment: Experiment) -> str:
    """``radius_pct (4): 20, 40, 60, 80`` for the study's discs, else the mask ids."""
    if _discs_only(experiment):
        return f"radius_pct ({len(experiment.radius_pct)}): {', '.join(experiment.radius_pct)}"
    return f"masks ({len(experiment.masks)}): {', '.join(experiment.masks)}"
