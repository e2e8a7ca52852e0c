from maskleak.figures.model_comparison import model_comparison
from maskleak.logs import log_to
from maskleak.provenance import read_table

with log_to(snakemake.log[0]):
    model_comparison(read_table(snakemake.input.metrics, "metrics"), snakemake.output[0])
