from maskleak.figures.mask_shape import mask_shape
from maskleak.logs import log_to
from maskleak.provenance import read_table

with log_to(snakemake.log[0]):
    metrics = read_table(snakemake.input.metrics, "metrics")
    fits = read_table(snakemake.input.fits, "mask_shape")
    mask_shape(metrics, fits, snakemake.wildcards.model, snakemake.output[0])
