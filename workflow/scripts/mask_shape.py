from maskleak.logs import log_to
from maskleak.shape.fit import write_fits

with log_to(snakemake.log[0]):
    write_fits(snakemake.input.metrics, snakemake.output[0])
