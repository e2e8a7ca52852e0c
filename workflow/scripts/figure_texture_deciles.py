from maskleak.figures.texture_deciles import texture_deciles
from maskleak.logs import log_to
from maskleak.provenance import read_table

with log_to(snakemake.log[0]):
    profile = read_table(snakemake.input.profile, "profile")
    metrics = read_table(snakemake.input.metrics, "metrics")
    texture_deciles(profile, metrics, snakemake.wildcards.model, snakemake.output[0])
