from maskleak.figures.worst_case import worst_case
from maskleak.logs import log_to
from maskleak.provenance import read_table

with log_to(snakemake.log[0]):
    metrics = read_table(snakemake.input.metrics, "metrics")
    worst_case(metrics, snakemake.wildcards.model, snakemake.wildcards.image, snakemake.output[0])
