from maskleak.logs import log_to
from maskleak.training.stages.unet_stage import train_unet_stage

with log_to(snakemake.log[0]):
    train_unet_stage(
        snakemake.params.training,
        int(snakemake.wildcards.unet_in_channels),
        snakemake.input,
        snakemake.output.model,
        snakemake.output.scheduler,
        snakemake.output.history,
        snakemake.threads,
        snakemake.params.code,
    )
