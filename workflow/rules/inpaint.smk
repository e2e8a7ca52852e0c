rule inpaint:
    input:
        model=get_model_dir,
        image=PLAN.path(plan_config.IMAGE),
        masks=get_masks,
    output:
        PLAN.path(plan_config.MANIFEST),
    log:
        f"{LOGS}/inpaint/{{model}}/{{image}}.log",
    benchmark:
        f"{BENCHMARKS}/inpaint/{{model}}/{{image}}.tsv"
    threads: 1
    # Runtime and memory scale with the job's work and grow on each retry (see
    # maskleak.resources); on a cluster the gpu request becomes `sbatch --gpus=1`.
    resources:
        gpu=1,
        runtime=get_inpaint_runtime_min,
        mem_mb=get_inpaint_mem_mb,
    params:
        code=library_code("inpaint.py"),
        tasks=get_inpaint_tasks,
        settings=get_inpaint_settings,
        variant=get_model_variant,
    script:
        "../scripts/inpaint.py"
