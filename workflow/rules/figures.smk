# One rule per figure, each running its own script (workflow/scripts/figure_<name>.py)
# that calls one function of maskleak.figures.<name>, with only the tables it reads.
# params.code: rerun when the library code of that script changes. params.caption: the
# values the report caption states (maskleak.figures.captions), computed when a job runs
# so that a config without, e.g., a gallery still parses.

from maskleak.figures import captions


rule figure_strength_grid:
    input:
        metrics=PLAN.path(plan_config.METRICS),
    output:
        report(
            f"{FIGURES}/{{model}}/strength_grid.png",
            caption="../report/strength_grid.rst",
            category="Strength sweep",
            subcategory="{model}",
            labels={
                "model": "{model}",
                "figure": "MSE vs strength, per image (Fig 4.2)",
            },
        ),
    log:
        f"{LOGS}/figures/{{model}}/strength_grid.log",
    params:
        code=library_code("figure_strength_grid.py"),
        caption=lambda wildcards: captions.strength_sweep(PLAN),
    script:
        "../scripts/figure_strength_grid.py"


rule figure_strength_trend:
    input:
        metrics=PLAN.path(plan_config.METRICS),
        trends=PLAN.path(plan_config.TRENDS),
    output:
        report(
            f"{FIGURES}/{{model}}/strength_trend.png",
            caption="../report/strength_trend.rst",
            category="Strength sweep",
            subcategory="{model}",
            labels={
                "model": "{model}",
                "figure": "mean MSE vs strength, fit (Fig 4.3)",
            },
        ),
    log:
        f"{LOGS}/figures/{{model}}/strength_trend.log",
    params:
        code=library_code("figure_strength_trend.py"),
        caption=lambda wildcards: captions.strength_sweep(PLAN),
    script:
        "../scripts/figure_strength_trend.py"


rule figure_worst_case:
    input:
        metrics=PLAN.path(plan_config.METRICS),
    output:
        report(
            f"{FIGURES}/{{model}}/worst_case/{{image}}.png",
            caption="../report/worst_case.rst",
            category="Worst cases",
            subcategory="{model}",
            labels={"model": "{model}", "image": "{image}"},
        ),
    log:
        f"{LOGS}/figures/{{model}}/worst_case/{{image}}.log",
    params:
        code=library_code("figure_worst_case.py"),
        caption=lambda wildcards: captions.strength_sweep(PLAN),
    script:
        "../scripts/figure_worst_case.py"


rule figure_area_curves:
    input:
        metrics=PLAN.path(plan_config.METRICS),
        trends=PLAN.path(plan_config.TRENDS),
    output:
        report(
            f"{FIGURES}/{{model}}/area_curves.png",
            caption="../report/area_curves.rst",
            category="Mask-size sweep",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "MSE vs disc area (Fig 4.10)"},
        ),
    log:
        f"{LOGS}/figures/{{model}}/area_curves.log",
    params:
        code=library_code("figure_area_curves.py"),
        caption=lambda wildcards: captions.mask_size_sweep(PLAN),
    script:
        "../scripts/figure_area_curves.py"


rule figure_radius_gallery:
    input:
        metrics=PLAN.path(plan_config.METRICS),
    output:
        report(
            f"{FIGURES}/{{model}}/radius_gallery.png",
            caption="../report/radius_gallery.rst",
            category="Mask-size sweep",
            subcategory="{model}",
            labels={
                "model": "{model}",
                "figure": "one image at several radii (Fig 4.11)",
            },
        ),
    log:
        f"{LOGS}/figures/{{model}}/radius_gallery.log",
    params:
        code=library_code("figure_radius_gallery.py"),
        gallery=PLAN.figures.get("gallery"),
        caption=lambda wildcards: captions.radius_gallery(PLAN),
    script:
        "../scripts/figure_radius_gallery.py"


rule figure_model_comparison:
    input:
        metrics=PLAN.path(plan_config.METRICS),
    output:
        report(
            f"{FIGURES}/model_comparison.png",
            caption="../report/model_comparison.rst",
            category="Beyond the study",
            labels={"figure": "models compared; mask-edge band vs far"},
        ),
    log:
        f"{LOGS}/figures/model_comparison.log",
    params:
        code=library_code("figure_model_comparison.py"),
        caption=lambda wildcards: captions.model_comparison(PLAN),
    script:
        "../scripts/figure_model_comparison.py"
