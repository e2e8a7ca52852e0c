from maskleak.claims.table import write_claims
from maskleak.logs import log_to

with log_to(snakemake.log[0]):
    write_claims(snakemake.input[0], snakemake.output.table, page_path=snakemake.output.page)
