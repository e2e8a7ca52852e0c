rule metrics:
    input:
        manifests=PLAN.manifests(),
        regions=list(PLAN.region_maps().values()),
    output:
        PLAN.path(plan_config.METRICS),
    log:
        f"{LOGS}/metrics.log",
    benchmark:
        f"{BENCHMARKS}/metrics.tsv"
    threads: 2
    params:
        code=library_code("metrics.py"),
        band_px=PLAN.band_px,
        region_maps=PLAN.region_maps(),
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
