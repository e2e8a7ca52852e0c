# maskleak: how much does diffusion inpainting change the pixels it was told to keep?
# Rules: download -> downsample -> mask -> inpaint -> metrics -> trends -> figures -> report;
# the mechanism sweep adds "why it leaks" (mechanisms.smk): attribution, switches, figures.
# the mask-shape sweep adds "leak against mask shape" (mask_shape.smk): fits, figure.
# snakemake train_tiny_models trains the offline tiny models (training.smk), not by default.


from snakemake.utils import min_version

min_version("9.0")


# A --configfile on the command line replaces the default instead of being merged into
# it: every config file describes a whole experiment (images, models, sweeps).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/images.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/inpaint.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/mechanisms.smk"
include: "workflow/rules/mask_shape.smk"
include: "workflow/rules/training.smk"


rule all:
    default_target: True
    input:
        get_final_outputs(),
