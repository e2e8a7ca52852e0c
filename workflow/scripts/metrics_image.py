from maskleak.logs import log_to
from maskleak.metrics import write_image_metrics

with log_to(snakemake.log[0]):
    write_image_metrics(
        snakemake.input.manifest,
        snakemake.output.metrics,
        band_px=snakemake.params.band_px,
        region_map=snakemake.input.regions or None,
        profile_path=snakemake.output.profile,
    )
