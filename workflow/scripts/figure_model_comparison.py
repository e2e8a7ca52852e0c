from maskleak.figures.common import read_table
from maskleak.figures.model_comparison import model_comparison
from maskleak.logs import log_to

with log_to(snakemake.log[0]):
    model_comparison(read_table(snakemake.input.metrics, "metrics"), snakemake.output[0])
