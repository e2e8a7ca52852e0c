from maskleak.logs import log_to
from maskleak.masks import write_masks

with log_to(snakemake.log[0]):
    write_masks(snakemake.input[0], snakemake.params.radius_pct, list(snakemake.output))
