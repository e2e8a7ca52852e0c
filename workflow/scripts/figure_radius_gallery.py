from maskleak.figures.radius_gallery import radius_gallery
from maskleak.logs import log_to
from maskleak.provenance import read_table

with log_to(snakemake.log[0]):
    metrics = read_table(snakemake.input.metrics, "metrics")
    gallery = snakemake.params.gallery
    radius_gallery(
        metrics,
        snakemake.wildcards.model,
        gallery["image"],
        gallery["strength"],
        gallery["radius_pct"],
        snakemake.output[0],
    )
