from maskleak.images import downsample_png
from maskleak.logs import log_to

with log_to(snakemake.log[0]):
    downsample_png(
        snakemake.input[0],
        snakemake.output[0],
        max_side=snakemake.params.max_side,
        multiple=snakemake.params.multiple,
    )
