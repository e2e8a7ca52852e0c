from maskleak.logs import log_to
from maskleak.training.stages.quality_stage import quality_stage

with log_to(snakemake.log[0]):
    images = {
        key.removeprefix("image_"): path
        for key, path in snakemake.input.items()
        if key.startswith("image_")
    }
    quality_stage(
        snakemake.params.training,
        images,
        snakemake.params.layout,
        snakemake.output,
        snakemake.threads,
    )
