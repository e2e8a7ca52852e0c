from maskleak.landscapes import write_region_map
from maskleak.logs import log_to

with log_to(snakemake.log[0]):
    write_region_map(snakemake.params.source, snakemake.input[0], snakemake.output[0])
