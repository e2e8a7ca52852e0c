from maskleak.figures.attribution import attribution
from maskleak.logs import log_to
from maskleak.provenance import read_table

with log_to(snakemake.log[0]):
    metrics = read_table(snakemake.input.metrics, "metrics")
    attribution(metrics, snakemake.wildcards.model, snakemake.output[0])
