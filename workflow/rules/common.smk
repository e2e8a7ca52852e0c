import os
import re

from snakemake.logging import logger
from snakemake.utils import validate

from maskleak import config as plan_config
from maskleak import resources as job_resources

validate(config, schema="../schemas/config.schema.yaml")

PLAN = plan_config.Plan(config)
logger.info(PLAN.summary())

NAME = "[A-Za-z0-9][A-Za-z0-9_.-]*"


wildcard_constraints:
    image=NAME,
    model=NAME,


def get_final_outputs():
    outputs = ["results/metrics.parquet", "results/trends.parquet"]
    outputs += figure_outputs()
    return outputs


def figure_outputs():
    figures = PLAN.figures
    outputs = ["results/figures/model_comparison.png"]
    for model in PLAN.models:
        if "strength_sweep" in PLAN.experiments:
            outputs.append(f"results/figures/{model}/strength_grid.png")
            outputs.append(f"results/figures/{model}/strength_trend.png")
            outputs += [
                f"results/figures/{model}/worst_case/{image}.png"
                for image in figures.get("worst_case_images", [])
            ]
        if "mask_size_sweep" in PLAN.experiments:
            outputs.append(f"results/figures/{model}/area_curves.png")
            if figures.get("gallery"):
                outputs.append(f"results/figures/{model}/radius_gallery.png")
    if "strength_sweep" not in PLAN.experiments:
        outputs.remove("results/figures/model_comparison.png")
    return outputs


def get_image_source(wildcards):
    return PLAN.image_source(wildcards.image)


def get_source_fingerprint(wildcards):
    """Size and mtime of a local source file, so that replacing the file reruns its
    download job. Local files are not declared inputs: a dry run of a config whose data
    is not on this machine must still show the whole DAG."""
    source = PLAN.image_source(wildcards.image)
    if source["kind"] != "file" or not os.path.exists(source["path"]):
        return ""
    stat = os.stat(source["path"])
    return f"{stat.st_size}-{stat.st_mtime_ns}"


def mask_outputs():
    return PLAN.mask_paths("{image}")


def get_masks(wildcards):
    return PLAN.mask_paths(wildcards.image)


def get_model_spec(wildcards):
    return PLAN.model_spec(wildcards.model)


def get_model_dir(wildcards):
    return PLAN.model_dir(wildcards.model)


def get_model_variant(wildcards):
    return PLAN.model_spec(wildcards.model).get("variant")


def get_inpaint_tasks(wildcards):
    return PLAN.tasks(wildcards.model, wildcards.image)


def one_of(names):
    """Regex matching exactly these names; one that matches nothing if there are none."""
    return "|".join(re.escape(name) for name in names) if names else "(?!)"


def built_model_names():
    return one_of(PLAN.built_models())


def procedural_image_names():
    return one_of(PLAN.procedural_images())


def get_inpaint_runtime_min(wildcards, attempt):
    n_steps = job_resources.unet_steps(
        PLAN.tasks(wildcards.model, wildcards.image), config["inpaint"]["steps"]
    )
    max_side = config["downsample"]["max_side"]
    return job_resources.inpaint_runtime_min(n_steps, max_side, attempt)


def get_inpaint_mem_mb(wildcards, attempt):
    kind = PLAN.model_spec(wildcards.model)["kind"]
    return job_resources.inpaint_mem_mb(kind, attempt)
