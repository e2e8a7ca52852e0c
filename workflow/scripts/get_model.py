from maskleak.logs import log_to
from maskleak.model_folders import get_model

with log_to(snakemake.log[0]):
    get_model(snakemake.params.spec, snakemake.output[0])
