from maskleak.logs import log_to
from maskleak.training.stages.vae_stage import train_vae_stage

with log_to(snakemake.log[0]):
    train_vae_stage(
        snakemake.params.training,
        snakemake.output.model,
        snakemake.output.history,
        snakemake.threads,
        snakemake.params.code,
    )
