from maskleak.logs import log_to
from maskleak.mask_specs import write_mask_files

with log_to(snakemake.log[0]):
    write_mask_files(snakemake.input.image, snakemake.params.masks, list(snakemake.output))
