from maskleak.inpaint import run_job_from_params
from maskleak.logs import log_to

with log_to(snakemake.log[0]):
    run_job_from_params(
        model_dir=snakemake.input.model,
        model_name=snakemake.wildcards.model,
        image_path=snakemake.input.image,
        image_name=snakemake.wildcards.image,
        tasks=snakemake.params.tasks,
        settings=snakemake.params.settings,
        variant=snakemake.params.variant,
        manifest_path=snakemake.output[0],
        threads=snakemake.threads,
    )
