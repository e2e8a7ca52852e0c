localrules:
    get_model,


rule get_model:
    output:
        directory(plan_config.MODEL_DIR),
    log:
        "logs/get_model/{model}.log",
    wildcard_constraints:
        model=built_model_names(),
    params:
        spec=get_model_spec,
    script:
        "../scripts/get_model.py"
