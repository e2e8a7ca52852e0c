rule figure_strength_grid:
    input:
        metrics="results/metrics.parquet",
        trends="results/trends.parquet",
    output:
        report(
            "results/figures/{model}/strength_grid.png",
            caption="../report/strength_grid.rst",
            category="Strength sweep",
            subcategory="{model}",
            labels={
                "model": "{model}",
                "figure": "MSE vs strength, per image (Fig 4.2)",
            },
        ),
    log:
        "logs/figures/{model}/strength_grid.log",
    params:
        kind="strength_grid",
    script:
        "../scripts/figure.py"


rule figure_strength_trend:
    input:
        metrics="results/metrics.parquet",
        trends="results/trends.parquet",
    output:
        report(
            "results/figures/{model}/strength_trend.png",
            caption="../report/strength_trend.rst",
            category="Strength sweep",
            subcategory="{model}",
            labels={
                "model": "{model}",
                "figure": "mean MSE vs strength, fit (Fig 4.3)",
            },
        ),
    log:
        "logs/figures/{model}/strength_trend.log",
    params:
        kind="strength_trend",
    script:
        "../scripts/figure.py"


rule figure_worst_case:
    input:
        metrics="results/metrics.parquet",
        trends="results/trends.parquet",
    output:
        report(
            "results/figures/{model}/worst_case/{image}.png",
            caption="../report/worst_case.rst",
            category="Worst cases",
            subcategory="{model}",
            labels={"model": "{model}", "image": "{image}"},
        ),
    log:
        "logs/figures/{model}/worst_case/{image}.log",
    params:
        kind="worst_case",
    script:
        "../scripts/figure.py"


rule figure_area_curves:
    input:
        metrics="results/metrics.parquet",
        trends="results/trends.parquet",
    output:
        report(
            "results/figures/{model}/area_curves.png",
            caption="../report/area_curves.rst",
            category="Mask-size sweep",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "MSE vs disc area (Fig 4.10)"},
        ),
    log:
        "logs/figures/{model}/area_curves.log",
    params:
        kind="area_curves",
    script:
        "../scripts/figure.py"


rule figure_radius_gallery:
    input:
        metrics="results/metrics.parquet",
        trends="results/trends.parquet",
    output:
        report(
            "results/figures/{model}/radius_gallery.png",
            caption="../report/radius_gallery.rst",
            category="Mask-size sweep",
            subcategory="{model}",
            labels={
                "model": "{model}",
                "figure": "one image at several radii (Fig 4.11)",
            },
        ),
    log:
        "logs/figures/{model}/radius_gallery.log",
    params:
        kind="radius_gallery",
        gallery=PLAN.figures.get("gallery"),
    script:
        "../scripts/figure.py"


rule figure_model_comparison:
    input:
        metrics="results/metrics.parquet",
        trends="results/trends.parquet",
    output:
        report(
            "results/figures/model_comparison.png",
            caption="../report/model_comparison.rst",
            category="Beyond the study",
            labels={"figure": "models compared; mask-edge band vs far"},
        ),
    log:
        "logs/figures/model_comparison.log",
    params:
        kind="model_comparison",
    script:
        "../scripts/figure.py"
