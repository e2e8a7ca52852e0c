localrules:
    get_model,


rule get_model:
    input:
        get_model_inputs,
    output:
        directory(plan_config.MODEL_DIR),
    log:
        f"{SHARED_LOGS}/get_model/{{model_key}}.log",
    wildcard_constraints:
        model_key=built_model_keys(),
    params:
        code=get_model_code,
        spec=get_model_spec,
    script:
        "../scripts/get_model.py"
