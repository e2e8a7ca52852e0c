from maskleak.logs import log_to
from maskleak.metrics import merge_metrics, merge_profile

with log_to(snakemake.log[0]):
    merge_metrics(list(snakemake.input.metrics), snakemake.output.metrics)
    merge_profile(list(snakemake.input.profile), snakemake.output.profile)
