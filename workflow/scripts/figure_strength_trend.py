from maskleak.figures.strength_trend import strength_trend
from maskleak.logs import log_to
from maskleak.provenance import read_table

with log_to(snakemake.log[0]):
    metrics = read_table(snakemake.input.metrics, "metrics")
    trends = read_table(snakemake.input.trends, "trends")
    strength_trend(metrics, trends, snakemake.wildcards.model, snakemake.output[0])
