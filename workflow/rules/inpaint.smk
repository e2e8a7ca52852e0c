rule inpaint:
    input:
        model=get_model_dir,
        image=plan_config.IMAGE,
        masks=get_masks,
    output:
        plan_config.MANIFEST,
    log:
        "logs/inpaint/{model}/{image}.log",
    benchmark:
        "benchmarks/inpaint/{model}/{image}.tsv"
    threads: 1
    resources:
        gpu=1,
    params:
        tasks=get_inpaint_tasks,
        settings=config["inpaint"],
        variant=get_model_variant,
    script:
        "../scripts/inpaint.py"
