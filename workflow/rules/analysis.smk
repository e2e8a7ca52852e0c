from maskleak.claims import catalogue as claims_catalogue


# One job per inpaint manifest (model and image): its rows of the metrics table and of
# the profile (outside error by distance and texture bin), merged by the metrics rule.
rule metrics_image:
    input:
        manifest=PLAN.path(plan_config.MANIFEST),
        regions=get_region_map,
    output:
        metrics=PLAN.path(plan_config.METRICS_PART),
        profile=PLAN.path(plan_config.PROFILE_PART),
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
        metrics=PLAN.metrics_parts(),
        profile=PLAN.profile_parts(),
    output:
        metrics=PLAN.path(plan_config.METRICS),
        profile=PLAN.path(plan_config.PROFILE),
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


# Each of the study's 8 claims tested on this run's metrics, per model and metric: the
# table, and the verdict page that opens the report (its category sorts first).
rule claims:
    input:
        PLAN.path(plan_config.METRICS),
    output:
        table=PLAN.path(plan_config.CLAIMS),
        page=report(
            PLAN.path(plan_config.CLAIMS_PAGE),
            caption="../report/claims.rst",
            category=claims_catalogue.REPORT_CATEGORY,
            labels={"figure": "verdicts on the study's 8 claims"},
        ),
    log:
        f"{LOGS}/claims.log",
    benchmark:
        f"{BENCHMARKS}/claims.tsv"
    params:
        code=library_code("claims.py"),
        caption=claims_catalogue.report_caption(
            PLAN.path(plan_config.CLAIMS), PLAN.path(plan_config.CLAIMS_PAGE), FIGURES
        ),
    script:
        "../scripts/claims.py"
