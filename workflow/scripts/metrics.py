from maskleak.logs import log_to
from maskleak.metrics import write_metrics

with log_to(snakemake.log[0]):
    write_metrics(
        list(snakemake.input.manifests),
        snakemake.output[0],
        band_px=snakemake.params.band_px,
        threads=snakemake.threads,
        region_maps=snakemake.params.region_maps,
    )
