"""What the workflow and the report captions of "Why it leaks" read from the plan: which
mechanism figures a run draws and where, their report labels, and the values each
caption states (the sweep's strengths, radii, seeds, images and variants), computed when
a job runs so that a config without a mechanism sweep still parses.

The workflow imports this module when it is parsed; the figure scripts do not."""

from __future__ import annotations

from typing import Any

from maskleak import config as plan_config
from maskleak import mechanisms
from maskleak.bootstrap import LEVEL, N_RESAMPLES
from maskleak.config import Plan
from maskleak.figures.captions import image_band_text, sweep_values
from maskleak.why.columns import EXPERIMENT
from maskleak.why.labels import changes_text, variant_label

#: The report section of the page and the figures.
REPORT_CATEGORY = "Why it leaks"
#: The mechanism figures live in results/<run>/figures/<model>/<FOLDER>/<name>.png.
FOLDER = "why"
#: Figure name -> its report label ("figure"), in the order the report lists them.
FIGURES: dict[str, str] = {
    "attribution": "outside error split: VAE floor, latent footprint, beyond",
    "distance_profile": "outside error vs distance from the mask edge",
    "texture_deciles": "outside error by texture decile",
    "passes": "outside error over repeated passes",
    "paste_back": "paste-back: outside error removed vs seam cost",
    "colour_drift": "colour drift (ΔE, channel shifts) vs mask area",
}
#: The only mask-size sweep the colour-drift figure also reads.
MASK_SIZE_SWEEP = "mask_size_sweep"


def _changed(plan: Plan, model: str, variant: str) -> dict[str, Any]:
    """The mechanisms ``variant`` changes in ``model``'s pipeline, passes included."""
    mech = plan.mechanisms_of(model, variant)
    changed = mechanisms.differences(plan.model_pipeline(model), mech)
    if mech.passes > 1:
        changed["passes"] = mech.passes
    return changed


def figure_names(plan: Plan, model: str) -> list[str]:
    """The mechanism figures ``model`` gets: all but ``passes`` (only with a variant of
    several passes) and ``paste_back`` (only with a variant that pastes back)."""
    variants = plan.experiments[EXPERIMENT].variants
    has_passes = any(plan.mechanisms_of(model, v).passes > 1 for v in variants)
    has_paste = any(
        plan.mechanisms_of(model, v).paste_back != mechanisms.PASTE_NONE for v in variants
    )
    skip = {"passes"} if not has_passes else set()
    skip |= {"paste_back"} if not has_paste else set()
    return [name for name in FIGURES if name not in skip]


def figure_path(plan: Plan, model: str, name: str) -> str:
    return f"{plan.path(plan_config.FIGURES)}/{model}/{FOLDER}/{name}.png"


def figure_paths(plan: Plan) -> dict[str, list[tuple[str, str]]]:
    """Per model of the mechanism sweep: (report label, path) of each of its figures."""
    return {
        model: [
            (FIGURES[name], figure_path(plan, model, name)) for name in figure_names(plan, model)
        ]
        for model in plan.experiment_models(EXPERIMENT)
    }


def outputs(plan: Plan) -> list[str]:
    """The final outputs of "Why it leaks": the why table, its page and every mechanism
    figure; none when the config has no mechanism sweep."""
    if not plan.experiment_models(EXPERIMENT):
        return []
    paths = [plan.path(plan_config.WHY), plan.path(plan_config.WHY_PAGE)]
    return paths + [path for shown in figure_paths(plan).values() for _, path in shown]


def figure(plan: Plan, model: str) -> dict[str, Any]:
    """Caption values of ``model``'s mechanism figures: the sweep's facts, its variants
    (name, what each changes in this pipeline, legend label, passes), which variants
    repeat passes or paste back, and whether the mask-size sweep runs this model (the
    colour-drift figure then reads its rows too)."""
    variants: list[dict[str, Any]] = []
    for variant in plan.experiments[EXPERIMENT].variants:
        text = changes_text(_changed(plan, model, variant))
        mech = plan.mechanisms_of(model, variant)
        variants.append(
            {
                "name": variant,
                "changes": text,
                "label": variant_label(variant, text),
                "passes": mech.passes,
                "paste_back": mech.paste_back,
            }
        )
    mask_size = model in plan.experiment_models(MASK_SIZE_SWEEP)
    return {
        **sweep_values(plan, EXPERIMENT),
        "model": model,
        "pipeline": plan.model_pipeline(model),
        "n_images": len(plan.images),
        "image_band": image_band_text(len(plan.images)),
        "band_px": plan.band_px,
        "variants": variants,
        "passes_variants": [v["label"] for v in variants if v["passes"] > 1],
        "paste_variants": [
            v["label"] for v in variants if v["paste_back"] != mechanisms.PASTE_NONE
        ],
        "mask_size": mask_size,
        "mask_size_sweep": sweep_values(plan, MASK_SIZE_SWEEP) if mask_size else {},
        "metrics": plan.path(plan_config.METRICS),
        "profile": plan.path(plan_config.PROFILE),
        "why": plan.path(plan_config.WHY),
    }


def page(plan: Plan) -> dict[str, Any]:
    """Caption values of the "Why it leaks" page: its table, the figures folder (to link
    the report's figures), the models, the interval's level and resamples."""
    return {
        "table": plan.path(plan_config.WHY),
        "page": plan.path(plan_config.WHY_PAGE),
        "metrics": plan.path(plan_config.METRICS),
        "figures": plan.path(plan_config.FIGURES),
        "folder": FOLDER,
        "models": plan.experiment_models(EXPERIMENT),
        "level": f"{LEVEL * 100:g} %",
        "n_resamples": N_RESAMPLES,
        **(sweep_values(plan, EXPERIMENT) if plan.experiment_models(EXPERIMENT) else {}),
        "n_images": len(plan.images),
    }
