rule metrics_image:
    input:
        manifest=PLAN.path(plan_config.MANIFEST),
        regions=get_region_map,
    output:
        PLAN.path(plan_config.METRICS_PART),
    log:
        f"{LOGS}/metrics/{{model}}/{{image}}.log",
    benchmark:
        f"{BENCHMARKS}/metrics/{{model}}/{{image}}.tsv"
    params:
        code=library_code("metrics_image.py"),
        band_px=PLAN.band_px,
    script:
        "../scripts/metrics_image.py"


rule metrics:
    input:
        PLAN.metrics_parts(),
    output:
        PLAN.path(plan_config.METRICS),
    log:
        f"{LOGS}/metrics.log",
    params:
        code=library_code("metrics.py"),
    script:
        "../scripts/metrics.py"


rule trends:
    input:
        PLAN.path(plan_config.METRICS),
    output:
        PLAN.path(plan_config.TRENDS),
    log:
        f"{LOGS}/trends.log",
    params:
        code=library_code("trends.py"),
    script:
        "../scripts/trends.py"
