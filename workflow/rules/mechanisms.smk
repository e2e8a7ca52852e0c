# "Why it leaks" (issue 10): the mechanism sweep's figures, one rule per figure, each
# running its own script (workflow/scripts/figure_<name>.py), and the why table with its
# report page. Figures go to results/<run>/figures/<model>/why/<name>.png, only for the
# models the mechanism sweep runs. params.caption: the values each report caption states
# (maskleak.why.captions), computed when a job runs. Its helpers (mechanism_outputs,
# mechanism_models) are in common.smk.


# Each mechanism's share of the outside error, each switch's effect and the growth over
# repeated passes, with intervals: the table, and the page that opens "Why it leaks".
rule why:
    input:
        metrics=PLAN.path(plan_config.METRICS),
    output:
        table=PLAN.path(plan_config.WHY),
        page=report(
            PLAN.path(plan_config.WHY_PAGE),
            caption="../report/why.rst",
            category=why_captions.REPORT_CATEGORY,
            labels={"figure": "which mechanism accounts for which share"},
        ),
    log:
        f"{LOGS}/why.log",
    benchmark:
        f"{BENCHMARKS}/why.tsv"
    params:
        code=library_code("why.py"),
        figures=why_captions.figure_paths(PLAN),
        caption=lambda wildcards: why_captions.page(PLAN),
    script:
        "../scripts/why.py"


rule figure_attribution:
    input:
        metrics=PLAN.path(plan_config.METRICS),
    output:
        report(
            f"{FIGURES}/{{model}}/{why_captions.FOLDER}/attribution.png",
            caption="../report/attribution.rst",
            category=why_captions.REPORT_CATEGORY,
            subcategory="{model}",
            labels={"model": "{model}", "figure": why_captions.FIGURES["attribution"]},
        ),
    log:
        f"{LOGS}/figures/{{model}}/{why_captions.FOLDER}/attribution.log",
    wildcard_constraints:
        model=mechanism_models(),
    params:
        code=library_code("figure_attribution.py"),
        caption=lambda wildcards: why_captions.figure(PLAN, wildcards.model),
    script:
        "../scripts/figure_attribution.py"


rule figure_distance_profile:
    input:
        profile=PLAN.path(plan_config.PROFILE),
    output:
        report(
            f"{FIGURES}/{{model}}/{why_captions.FOLDER}/distance_profile.png",
            caption="../report/distance_profile.rst",
            category=why_captions.REPORT_CATEGORY,
            subcategory="{model}",
            labels={
                "model": "{model}",
                "figure": why_captions.FIGURES["distance_profile"],
            },
        ),
    log:
        f"{LOGS}/figures/{{model}}/{why_captions.FOLDER}/distance_profile.log",
    wildcard_constraints:
        model=mechanism_models(),
    params:
        code=library_code("figure_distance_profile.py"),
        caption=lambda wildcards: why_captions.figure(PLAN, wildcards.model),
    script:
        "../scripts/figure_distance_profile.py"


rule figure_texture_deciles:
    input:
        profile=PLAN.path(plan_config.PROFILE),
        metrics=PLAN.path(plan_config.METRICS),
    output:
        report(
            f"{FIGURES}/{{model}}/{why_captions.FOLDER}/texture_deciles.png",
            caption="../report/texture_deciles.rst",
            category=why_captions.REPORT_CATEGORY,
            subcategory="{model}",
            labels={
                "model": "{model}",
                "figure": why_captions.FIGURES["texture_deciles"],
            },
        ),
    log:
        f"{LOGS}/figures/{{model}}/{why_captions.FOLDER}/texture_deciles.log",
    wildcard_constraints:
        model=mechanism_models(),
    params:
        code=library_code("figure_texture_deciles.py"),
        caption=lambda wildcards: why_captions.figure(PLAN, wildcards.model),
    script:
        "../scripts/figure_texture_deciles.py"


rule figure_passes:
    input:
        metrics=PLAN.path(plan_config.METRICS),
    output:
        report(
            f"{FIGURES}/{{model}}/{why_captions.FOLDER}/passes.png",
            caption="../report/passes.rst",
            category=why_captions.REPORT_CATEGORY,
            subcategory="{model}",
            labels={"model": "{model}", "figure": why_captions.FIGURES["passes"]},
        ),
    log:
        f"{LOGS}/figures/{{model}}/{why_captions.FOLDER}/passes.log",
    wildcard_constraints:
        model=mechanism_models(),
    params:
        code=library_code("figure_passes.py"),
        caption=lambda wildcards: why_captions.figure(PLAN, wildcards.model),
    script:
        "../scripts/figure_passes.py"


rule figure_paste_back:
    input:
        metrics=PLAN.path(plan_config.METRICS),
    output:
        report(
            f"{FIGURES}/{{model}}/{why_captions.FOLDER}/paste_back.png",
            caption="../report/paste_back.rst",
            category=why_captions.REPORT_CATEGORY,
            subcategory="{model}",
            labels={"model": "{model}", "figure": why_captions.FIGURES["paste_back"]},
        ),
    log:
        f"{LOGS}/figures/{{model}}/{why_captions.FOLDER}/paste_back.log",
    wildcard_constraints:
        model=mechanism_models(),
    params:
        code=library_code("figure_paste_back.py"),
        caption=lambda wildcards: why_captions.figure(PLAN, wildcards.model),
    script:
        "../scripts/figure_paste_back.py"


rule figure_colour_drift:
    input:
        metrics=PLAN.path(plan_config.METRICS),
    output:
        report(
            f"{FIGURES}/{{model}}/{why_captions.FOLDER}/colour_drift.png",
            caption="../report/colour_drift.rst",
            category=why_captions.REPORT_CATEGORY,
            subcategory="{model}",
            labels={
                "model": "{model}",
                "figure": why_captions.FIGURES["colour_drift"],
            },
        ),
    log:
        f"{LOGS}/figures/{{model}}/{why_captions.FOLDER}/colour_drift.log",
    wildcard_constraints:
        model=mechanism_models(),
    params:
        code=library_code("figure_colour_drift.py"),
        caption=lambda wildcards: why_captions.figure(PLAN, wildcards.model),
    script:
        "../scripts/figure_colour_drift.py"
