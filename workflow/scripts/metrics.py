from maskleak.logs import log_to
from maskleak.metrics import merge_metrics

with log_to(snakemake.log[0]):
    merge_metrics(list(snakemake.input), snakemake.output[0])
