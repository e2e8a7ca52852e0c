import os
import re
import sys
from pathlib import Path

from snakemake.logging import logger

from maskleak import code_version
from maskleak import config as plan_config
from maskleak import resources as job_resources
from maskleak import trained_models
from maskleak import workflow_hints
from maskleak.schema import validate_config
from maskleak.why import captions as why_captions

validate_config(config, f"{workflow.current_basedir}/../schemas/config.schema.yaml")

PLAN = plan_config.Plan(
    config, plan_config.default_run_name(workflow.overwrite_configfiles)
)
logger.info(PLAN.summary())
if workflow.is_main_process and "--unlock" not in sys.argv:
    for hint in (
        workflow_hints.unlock_hint(workflow.overwrite_configfiles),
        workflow_hints.missing_inpaintings_hint(
            PLAN.manifests(), workflow.overwrite_configfiles
        ),
    ):
        if hint:
            logger.warning(hint)

# This run's folders; rules fill in their wildcards.
RESULTS = PLAN.path(plan_config.RESULTS)
LOGS = PLAN.path(plan_config.LOGS)
BENCHMARKS = PLAN.path(plan_config.BENCHMARKS)
FIGURES = PLAN.path(plan_config.FIGURES)
SHARED_LOGS = plan_config.SHARED_LOGS

NAME = "[A-Za-z0-9][A-Za-z0-9_.-]*"


wildcard_constraints:
    image=NAME,
    model=NAME,


SCRIPTS = Path(workflow.current_basedir).parent / "scripts"


def library_code(script):
    """Hash of the maskleak code ``script`` imports: a rule's ``params.code``, so that a
    library edit reruns exactly the rules whose scripts run the edited code."""
    return code_version.code_hash(SCRIPTS / script)


def get_model_code(wildcards):
    """Built (tiny) and assembled (trained) models are remade when the code that makes
    them changes; a hub download is not repeated for a library edit."""
    if PLAN.built_models()[wildcards.model_key]["kind"] not in ("tiny", "trained"):
        return ""
    return library_code("get_model.py")


def get_model_inputs(wildcards):
    """A trained model's component files (so new weights remake its folder); nothing for
    the other kinds."""
    spec = PLAN.built_models()[wildcards.model_key]
    if spec["kind"] != "trained":
        return []
    return trained_models.component_files(spec["path"], spec["unet_in_channels"])


def get_final_outputs():
    outputs = [PLAN.path(plan_config.METRICS), PLAN.path(plan_config.TRENDS)]
    outputs += [PLAN.path(plan_config.CLAIMS), PLAN.path(plan_config.CLAIMS_PAGE)]
    outputs += figure_outputs()
    outputs += mechanism_outputs()
    outputs += PLAN.mask_shape_outputs()
    return outputs


def figure_outputs():
    figures = PLAN.figures
    folder = PLAN.path(plan_config.FIGURES)
    outputs = []
    strength_models = PLAN.experiment_models("strength_sweep")
    if strength_models:
        outputs.append(f"{folder}/model_comparison.png")
    for model in strength_models:
        outputs.append(f"{folder}/{model}/strength_grid.png")
        outputs.append(f"{folder}/{model}/strength_trend.png")
        outputs += [
            f"{folder}/{model}/worst_case/{image}.png"
            for image in figures.get("worst_case_images", [])
        ]
    for model in PLAN.experiment_models("mask_size_sweep"):
        outputs.append(f"{folder}/{model}/area_curves.png")
        # The gallery is a figure of the study's discs: drawn only when the sweep has some.
        if figures.get("gallery") and PLAN.experiments["mask_size_sweep"].radius_pct:
            outputs.append(f"{folder}/{model}/radius_gallery.png")
    return outputs


def mechanism_outputs():
    """The final outputs of "Why it leaks" for this config: the why table, its page and
    each mechanism figure; none when the config has no mechanism sweep."""
    return why_captions.outputs(PLAN)


def mask_shape_models():
    return one_of(PLAN.experiment_models("mask_shape_sweep"))


def mechanism_models():
    return one_of(PLAN.experiment_models(why_captions.EXPERIMENT))


def get_raw_image(wildcards):
    return PLAN.raw_image(wildcards.image)


def get_image_spec(wildcards):
    return PLAN.image_source(wildcards.image)


def get_image_source(wildcards):
    return PLAN.source_spec(wildcards.source)[0]


def get_source_users(wildcards):
    return PLAN.source_spec(wildcards.source)[1]


def get_source_fingerprint(wildcards):
    """Size and mtime of a local source file, so that replacing the file reruns its
    download job. Local files are not declared inputs: a dry run of a config whose data
    is not on this machine must still show the whole DAG."""
    source = PLAN.source_spec(wildcards.source)[0]
    if source["kind"] != "file" or not os.path.exists(source["path"]):
        return ""
    stat = os.stat(source["path"])
    return f"{stat.st_size}-{stat.st_mtime_ns}"


def mask_outputs():
    return PLAN.mask_paths("{image}")


def source_keys():
    return one_of(sorted({PLAN.source_key(image) for image in PLAN.images}))


def get_masks(wildcards):
    return PLAN.mask_paths(wildcards.image)


def get_mask_records(wildcards):
    """What draws each of the image's masks (maskleak.mask_specs), in output order."""
    return PLAN.mask_records(wildcards.image)


def get_user_masks(wildcards):
    """The user's mask files the image's masks are read from (file and folder masks)."""
    return PLAN.mask_user_files(wildcards.image)


def get_region_map(wildcards):
    """The image's ground-truth region map (procedural landscapes), or nothing."""
    return PLAN.region_map(wildcards.image) or []


def get_model_spec(wildcards):
    return PLAN.built_models()[wildcards.model_key]


def get_model_dir(wildcards):
    return PLAN.model_dir(wildcards.model)


def get_model_variant(wildcards):
    return PLAN.model_spec(wildcards.model).get("variant")


def get_inpaint_settings(wildcards):
    return PLAN.inpaint_settings(wildcards.model)


def get_inpaint_tasks(wildcards):
    return PLAN.tasks(wildcards.model, wildcards.image)


def one_of(names):
    """Regex matching exactly these names; one that matches nothing if there are none."""
    return "|".join(re.escape(name) for name in names) if names else "(?!)"


def get_training_settings(wildcards):
    """The ``training`` section, its defaults filled in by the schema."""
    return PLAN.config["training"]


def get_trained_components():
    """Every folder of the trained layout that train_tiny_models makes."""
    return [
        PLAN.path(plan_config.TRAINED_COMPONENT, component=c)
        for c in trained_models.COMPONENTS
    ]


def get_training_quality_inputs(wildcards):
    """The trained layout's folders and the run's downsampled images (held out)."""
    inputs = {
        f"component_{c}": p
        for c, p in zip(trained_models.COMPONENTS, get_trained_components())
    }
    inputs.update(
        {f"image_{i}": PLAN.path(plan_config.IMAGE, image=i) for i in PLAN.images}
    )
    return inputs


def built_model_keys():
    return one_of(list(PLAN.built_models()))


def procedural_image_names():
    return one_of(PLAN.procedural_images())


def get_inpaint_runtime_min(wildcards, attempt):
    n_steps = job_resources.unet_steps(
        PLAN.tasks(wildcards.model, wildcards.image),
        config["inpaint"]["steps"],
        PLAN.model_pipeline(wildcards.model),
    )
    max_side = config["downsample"]["max_side"]
    return job_resources.inpaint_runtime_min(n_steps, max_side, attempt)


def get_inpaint_mem_mb(wildcards, attempt):
    kind = PLAN.model_spec(wildcards.model)["kind"]
    return job_resources.inpaint_mem_mb(kind, attempt)
