# Leak against mask shape (issue 11): does the outside error follow the mask's area or its
# edge? The fit table (per model and strength, per mask family and pooled, with bootstrap
# intervals and a verdict) and one figure per model the mask-shape sweep runs.


rule mask_shape:
    input:
        metrics=PLAN.path(plan_config.METRICS),
    output:
        PLAN.path(plan_config.MASK_SHAPE),
    log:
        f"{LOGS}/mask_shape.log",
    benchmark:
        f"{BENCHMARKS}/mask_shape.tsv"
    params:
        code=library_code("mask_shape.py"),
    script:
        "../scripts/mask_shape.py"


rule figure_mask_shape:
    input:
        metrics=PLAN.path(plan_config.METRICS),
        fits=PLAN.path(plan_config.MASK_SHAPE),
    output:
        report(
            PLAN.path(plan_config.MASK_SHAPE_FIGURE),
            caption="../report/mask_shape.rst",
            category="Leak against mask shape",
            subcategory="{model}",
            labels={
                "model": "{model}",
                "figure": "outside error vs area, edge, footprint",
            },
        ),
    log:
        f"{LOGS}/figures/{{model}}/mask_shape.log",
    wildcard_constraints:
        model=mask_shape_models(),
    params:
        code=library_code("figure_mask_shape.py"),
    script:
        "../scripts/figure_mask_shape.py"
