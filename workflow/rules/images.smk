localrules:
    download_image,


rule download_image:
    output:
        plan_config.RAW_IMAGE,
    log:
        "logs/download_image/{image}.log",
    params:
        source=get_image_source,
        fingerprint=get_source_fingerprint,
    script:
        "../scripts/download_image.py"


rule downsample:
    input:
        plan_config.RAW_IMAGE,
    output:
        plan_config.IMAGE,
    log:
        "logs/downsample/{image}.log",
    params:
        max_side=config["downsample"]["max_side"],
        multiple=config["downsample"]["multiple"],
    script:
        "../scripts/downsample.py"


rule mask:
    input:
        plan_config.IMAGE,
    output:
        mask_outputs(),
    log:
        "logs/mask/{image}.log",
    params:
        radius_pct=PLAN.radius_pct,
    script:
        "../scripts/mask.py"


rule regions:
    input:
        plan_config.IMAGE,
    output:
        plan_config.REGIONS,
    log:
        "logs/regions/{image}.log",
    wildcard_constraints:
        image=procedural_image_names(),
    params:
        source=get_image_source,
    script:
        "../scripts/regions.py"
