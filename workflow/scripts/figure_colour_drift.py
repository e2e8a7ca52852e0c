from maskleak.figures.colour_drift import colour_drift
from maskleak.logs import log_to
from maskleak.provenance import read_table

with log_to(snakemake.log[0]):
    metrics = read_table(snakemake.input.metrics, "metrics")
    colour_drift(metrics, snakemake.wildcards.model, snakemake.output[0])
