from maskleak.figures import render
from maskleak.logs import log_to

with log_to(snakemake.log[0]):
    render(
        snakemake.params.kind,
        metrics_path=snakemake.input.metrics,
        trends_path=snakemake.input.trends,
        out_path=snakemake.output[0],
        wildcards=dict(snakemake.wildcards),
        options=dict(snakemake.params),
    )
