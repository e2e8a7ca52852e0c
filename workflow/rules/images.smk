localrules:
    download_image,


rule download_image:
    output:
        plan_config.RAW_IMAGE,
    log:
        f"{SHARED_LOGS}/download_image/{{source}}.log",
    wildcard_constraints:
        source=source_keys(),
    params:
        code=library_code("download_image.py"),
        source=get_image_source,
        images=get_source_users,
        fingerprint=get_source_fingerprint,
    script:
        "../scripts/download_image.py"


rule downsample:
    input:
        get_raw_image,
    output:
        PLAN.path(plan_config.IMAGE),
    log:
        f"{LOGS}/downsample/{{image}}.log",
    params:
        code=library_code("downsample.py"),
        max_side=config["downsample"]["max_side"],
        multiple=config["downsample"]["multiple"],
    script:
        "../scripts/downsample.py"


rule mask:
    input:
        image=PLAN.path(plan_config.IMAGE),
        user_masks=get_user_masks,
    output:
        mask_outputs(),
    log:
        f"{LOGS}/mask/{{image}}.log",
    params:
        code=library_code("mask.py"),
        masks=get_mask_records,
    script:
        "../scripts/mask.py"


rule regions:
    input:
        PLAN.path(plan_config.IMAGE),
    output:
        PLAN.path(plan_config.REGIONS),
    log:
        f"{LOGS}/regions/{{image}}.log",
    wildcard_constraints:
        image=procedural_image_names(),
    params:
        code=library_code("regions.py"),
        source=get_image_spec,
    script:
        "../scripts/regions.py"
