# Trained tiny models (issue 12): snakemake train_tiny_models --cores all, not part of the
# default run. The VAE first, then the 9- and 4-channel UNets on its latents, one thread
# each so the two train side by side on 2 cores; all from training.seed, deterministic at a
# given thread count. Outputs are results/<run>/training/models/<component> in the layout
# of the committed resources/trained.


localrules:
    train_tiny_models,


rule train_tiny_models:
    input:
        get_trained_components(),
        PLAN.path(plan_config.TRAINING_SUMMARY),


rule training_text_parts:
    output:
        text_encoder=directory(
            PLAN.path(plan_config.TRAINED_COMPONENT, component="text_encoder")
        ),
        tokenizer=directory(
            PLAN.path(plan_config.TRAINED_COMPONENT, component="tokenizer")
        ),
    log:
        f"{LOGS}/training/text_parts.log",
    params:
        training=get_training_settings,
        code=library_code("training_text_parts.py"),
    script:
        "../scripts/training_text_parts.py"


rule train_vae:
    output:
        model=directory(PLAN.path(plan_config.TRAINED_COMPONENT, component="vae")),
        history=PLAN.path(plan_config.TRAINING_HISTORY, component="vae"),
    log:
        f"{LOGS}/training/vae.log",
    benchmark:
        f"{BENCHMARKS}/training/vae.tsv"
    threads: 2
    params:
        training=get_training_settings,
        code=library_code("train_vae.py"),
    script:
        "../scripts/train_vae.py"


rule train_unet:
    input:
        vae=PLAN.path(plan_config.TRAINED_COMPONENT, component="vae"),
        text_encoder=PLAN.path(plan_config.TRAINED_COMPONENT, component="text_encoder"),
        tokenizer=PLAN.path(plan_config.TRAINED_COMPONENT, component="tokenizer"),
    output:
        model=directory(
            PLAN.path(
                plan_config.TRAINED_COMPONENT, component="unet{unet_in_channels}"
            )
        ),
        scheduler=directory(
            PLAN.path(
                plan_config.TRAINED_COMPONENT, component="scheduler{unet_in_channels}"
            )
        ),
        history=PLAN.path(
            plan_config.TRAINING_HISTORY, component="unet{unet_in_channels}"
        ),
    log:
        f"{LOGS}/training/unet{{unet_in_channels}}.log",
    benchmark:
        f"{BENCHMARKS}/training/unet{{unet_in_channels}}.tsv"
    wildcard_constraints:
        unet_in_channels="4|9",
    threads: 1
    params:
        training=get_training_settings,
        code=library_code("train_unet.py"),
    script:
        "../scripts/train_unet.py"


rule training_quality:
    input:
        unpack(get_training_quality_inputs),
    output:
        vae=PLAN.path(plan_config.TRAINING_TABLE, table="vae_quality"),
        denoising=PLAN.path(plan_config.TRAINING_TABLE, table="denoising"),
        inpaint=PLAN.path(plan_config.TRAINING_TABLE, table="inpaint_quality"),
        summary=PLAN.path(plan_config.TRAINING_SUMMARY),
    log:
        f"{LOGS}/training/quality.log",
    benchmark:
        f"{BENCHMARKS}/training/quality.tsv"
    threads: 2
    params:
        training=get_training_settings,
        layout=PLAN.path(plan_config.TRAINED_COMPONENT, component=""),
        code=library_code("training_quality.py"),
    script:
        "../scripts/training_quality.py"
