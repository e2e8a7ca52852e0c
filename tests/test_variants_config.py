"""Pipeline variants in the config: the plan's checks, its tasks' file names and counts."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from maskleak.config import Plan
from maskleak.errors import InputError
from maskleak.schema import validate_config

FOLDER = "results/default/inpainted"


def config() -> dict[str, Any]:
    """A small valid config: one procedural image, the 4-channel tiny model with both
    pipelines, the thesis' strength sweep and a mechanism sweep with four variants."""
    return {
        "images": {"land": {"kind": "procedural", "seed": 3, "width": 160, "height": 96}},
        "downsample": {"max_side": 64, "multiple": 32},
        "models": {
            "tiny4": {"kind": "tiny", "unet_in_channels": 4, "seed": 0},
            "tiny4_study": {"kind": "tiny", "unet_in_channels": 4, "seed": 0, "pipeline": "study"},
        },
        "inpaint": {"steps": 3},
        "variants": {
            "mask_cover": {"latent_mask": "cover"},
            "paste_soft": {"paste_back": "soft"},
            "passes_3": {"passes": 3},
            "no_final_paste": {"final_latent_paste": False},
        },
        "experiments": {
            "strength_sweep": {"radius_pct": [80], "strengths": [0.0, 0.5], "seeds": [0]},
            "mechanism_sweep": {
                "variants": ["baseline", "mask_cover", "paste_soft", "passes_3", "no_final_paste"],
                "radius_pct": [60],
                "strengths": [0.5],
                "seeds": [0],
            },
        },
    }


def edited(*edits: tuple[tuple[str, ...], Any]) -> dict[str, Any]:
    """config() with each (key path, value) set; value None deletes the key."""
    result = config()
    for path, value in edits:
        node = result
        for key in path[:-1]:
            node = node[key]
        if value is None:
            del node[path[-1]]
        else:
            node[path[-1]] = value
    return result


def test_the_config_is_valid_and_validation_keeps_the_plan():
    validated = config()
    validate_config(validated)
    assert Plan(validated).tasks("tiny4", "land") == Plan(config()).tasks("tiny4", "land")


@pytest.mark.parametrize(
    ("edits", "message"),
    [
        (
            [(("experiments", "mechanism_sweep", "variants"), ["baseline", "nope"])],
            r"^config key experiments\.mechanism_sweep\.variants\[1\]: unknown variant 'nope'",
        ),
        (
            [(("variants", "baseline"), {"latent_mask": "cover"})],
            r"^config key variants\.baseline: the name is taken",
        ),
        (
            [(("variants", "blur"), {"paste_back": "hard", "paste_blur_px": 2})],
            r"^config key variants\.blur\.paste_blur_px: only soft paste-back blurs",
        ),
        (
            [(("variants", "blur"), {"paste_blur_px": 2})],
            r"^config key variants\.blur\.paste_blur_px: only soft paste-back blurs",
        ),
        (
            [
                (("experiments", "strength_sweep", "models"), ["tiny4"]),
                (("experiments", "mechanism_sweep", "models"), ["tiny4"]),
            ],
            r"^config key models\.tiny4_study: no experiment runs it",
        ),
        (
            [(("experiments", "strength_sweep", "variants"), ["mask_cover"])],
            r"^config key experiments\.strength_sweep\.variants: must include baseline",
        ),
        (
            [(("experiments", "mechanism_sweep", "models"), ["tiny4", "tiny9"])],
            r"^config key experiments\.mechanism_sweep\.models\[1\]: unknown model 'tiny9'",
        ),
    ],
)
def test_plan_errors_name_the_key(edits, message):
    with pytest.raises(InputError, match=message):
        Plan(edited(*edits))


def test_a_mechanism_sweep_may_leave_baseline_out():
    plan = Plan(edited((("experiments", "mechanism_sweep", "variants"), ["mask_cover"])))
    sweep = [t for t in plan.tasks("tiny4", "land") if t["experiment"] == "mechanism_sweep"]
    assert [t["variant"] for t in sweep] == ["mask_cover"]


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        (
            {"latent_mask": "bilinear"},
            r"^config key variants\.x\.latent_mask: 'bilinear' is not one of",
        ),
        ({"latent_encoding": "median"}, r"^config key variants\.x\.latent_encoding: 'median'"),
        ({"paste_back": "blend"}, r"^config key variants\.x\.paste_back: 'blend' is not one of"),
        ({"dtype": "float64"}, r"^config key variants\.x\.dtype: 'float64' is not one of"),
        ({"passes": 0}, r"^config key variants\.x\.passes: must be >= 1, got 0"),
        ({"paste_back": "soft", "paste_blur_px": 0}, r"^config key variants\.x\.paste_blur_px"),
        ({"colour": "blue"}, r"^config key variants\.x: unknown key 'colour'"),
        ({}, r"^config key variants\.x: must not be empty"),
    ],
)
def test_schema_rejects_bad_variants(variant, message):
    with pytest.raises(InputError, match=message):
        validate_config(edited((("variants", "x"), variant)))


def test_schema_rejects_an_unknown_experiment_key():
    bad = edited((("experiments", "mechanism_sweep", "variant"), ["baseline"]))
    with pytest.raises(InputError, match=r"^config key experiments\.mechanism_sweep: unknown key"):
        validate_config(bad)


def _paths(plan: Plan, model: str) -> dict[str, list[str]]:
    """variant -> its mechanism sweep task's PNGs (first pass, then pass_paths)."""
    return {
        t["variant"]: [t["inpainted_path"], *t["pass_paths"]]
        for t in plan.tasks(model, "land")
        if t["experiment"] == "mechanism_sweep"
    }


def test_file_names_say_what_a_variant_changes():
    paths = _paths(Plan(config()), "tiny4")
    stem = f"{FOLDER}/tiny4/land/r60_s0.5_seed0"
    assert paths == {
        "baseline": [f"{stem}.png"],
        "mask_cover": [f"{stem}~latent_mask-cover.png"],
        "paste_soft": [f"{stem}~paste_back-soft4.png"],
        # Pass 1 of a repeated inpainting is the baseline's PNG.
        "passes_3": [f"{stem}.png", f"{stem}~pass2.png", f"{stem}~pass3.png"],
        "no_final_paste": [f"{stem}~final_latent_paste-off.png"],
    }


def test_a_variant_that_changes_nothing_for_the_study_pipeline_shares_its_png():
    """The study's pipeline has no final paste: final_latent_paste false is itself."""
    paths = _paths(Plan(config()), "tiny4_study")
    stem = f"{FOLDER}/tiny4_study/land/r60_s0.5_seed0"
    assert paths["no_final_paste"] == paths["baseline"] == [f"{stem}.png"]
    assert paths["mask_cover"] == [f"{stem}~latent_mask-cover.png"]


def test_tasks_carry_the_mechanisms_of_each_pipeline():
    plan = Plan(
        edited(
            (("variants", "mode_pil"), {"latent_encoding": "mode", "latent_mask": "pil_nearest"}),
            (("variants", "soft2"), {"paste_back": "soft", "paste_blur_px": 2}),
            (("experiments", "mechanism_sweep", "variants"), ["mode_pil", "soft2"]),
        )
    )
    diffusers = {t["variant"]: t for t in plan.tasks("tiny4", "land")}
    study = {t["variant"]: t for t in plan.tasks("tiny4_study", "land")}
    assert diffusers["mode_pil"]["mechanisms"] == {
        "latent_encoding": "mode",
        "latent_mask": "pil_nearest",
        "final_latent_paste": True,
        "paste_back": "none",
        "paste_blur_px": 0.0,
        "passes": 1,
        "dtype": None,
    }
    assert diffusers["mode_pil"]["inpainted_path"].endswith(
        "r60_s0.5_seed0~latent_encoding-mode~latent_mask-pil_nearest.png"
    )
    # pil_nearest is the study's own rule: only the encoding differs there.
    assert study["mode_pil"]["mechanisms"]["final_latent_paste"] is False
    assert study["mode_pil"]["inpainted_path"].endswith("r60_s0.5_seed0~latent_encoding-mode.png")
    assert diffusers["soft2"]["mechanisms"]["paste_blur_px"] == 2.0
    assert diffusers["soft2"]["inpainted_path"].endswith("~paste_back-soft2.png")


def test_experiment_models_limit_the_tasks():
    plan = Plan(edited((("experiments", "mechanism_sweep", "models"), ["tiny4"])))
    assert plan.experiment_models("mechanism_sweep") == ["tiny4"]
    assert plan.experiment_models("strength_sweep") == ["tiny4", "tiny4_study"]
    assert plan.experiment_models("mask_size_sweep") == []
    study = plan.tasks("tiny4_study", "land")
    assert {t["experiment"] for t in study} == {"strength_sweep"} and len(study) == 2
    assert plan.mechanisms_of("tiny4_study", "baseline").latent_mask == "pil_nearest"
    assert plan.mechanisms_of("tiny4", "passes_3").passes == 3


def test_counts_include_every_pass_and_the_summary_names_the_variants():
    plan = Plan(config())
    # Per model and image: strength sweep 2; mechanism sweep 1 + 1 + 1 + 3 + 1 = 7 PNGs.
    assert plan.n_inpaintings() == (2 + 7) * 2
    tasks = plan.tasks("tiny4", "land")
    assert len(tasks) == 2 + 5
    assert sum(1 + len(t["pass_paths"]) for t in tasks) == 2 + 7
    summary = plan.summary()
    assert "18 inpaintings in 2 inpaint jobs" in summary
    assert "x 7 variant passes = 14" in summary
    assert (
        "variants: baseline, mask_cover, paste_soft, passes_3 (3 passes), no_final_paste" in summary
    )
    # The thesis sweep lists no variants.
    strength_line = next(
        line for line in summary.splitlines() if line.strip().startswith("strength_sweep:")
    )
    assert "variants" not in strength_line


def test_no_variants_section_means_baseline_only():
    plain = copy.deepcopy(config())
    del plain["variants"]
    del plain["experiments"]["mechanism_sweep"]
    plan = Plan(plain)
    assert plan.variants == {"baseline": {}}
    assert [t["variant"] for t in plan.tasks("tiny4", "land")] == ["baseline", "baseline"]
    tasks = plan.tasks("tiny4", "land")
    assert tasks[0]["inpainted_path"] == f"{FOLDER}/tiny4/land/r80_s0_seed0.png"
    assert all(t["pass_paths"] == [] for t in tasks)
