from maskleak.logs import log_to
from maskleak.sources import fetch_image

with log_to(snakemake.log[0]):
    fetch_image(snakemake.params.source, snakemake.output[0], ", ".join(snakemake.params.images))
