from maskleak.logs import log_to
from maskleak.why.table import write_why

with log_to(snakemake.log[0]):
    write_why(
        snakemake.input.metrics,
        snakemake.output.table,
        page_path=snakemake.output.page,
        figures=snakemake.params.figures,
    )
