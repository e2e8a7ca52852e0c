from maskleak.logs import log_to
from maskleak.training.stages.text_parts import text_parts_stage

with log_to(snakemake.log[0]):
    text_parts_stage(snakemake.params.training, snakemake.output)
