from maskleak.logs import log_to
from maskleak.trends import write_trends

with log_to(snakemake.log[0]):
    write_trends(snakemake.input[0], snakemake.output[0])
