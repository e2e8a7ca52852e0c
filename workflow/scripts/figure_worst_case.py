from maskleak.figures.common import read_table
from maskleak.figures.worst_case import worst_case
from maskleak.logs import log_to

with log_to(snakemake.log[0]):
    metrics = read_table(snakemake.input.metrics, "metrics")
    worst_case(metrics, snakemake.wildcards.model, snakemake.wildcards.image, snakemake.output[0])
