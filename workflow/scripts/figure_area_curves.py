from maskleak.figures.area_curves import area_curves
from maskleak.logs import log_to
from maskleak.provenance import read_table

with log_to(snakemake.log[0]):
    metrics = read_table(snakemake.input.metrics, "metrics")
    trends = read_table(snakemake.input.trends, "trends")
    area_curves(metrics, trends, snakemake.wildcards.model, snakemake.output[0])
