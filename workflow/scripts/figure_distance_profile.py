from maskleak.figures.distance_profile import distance_profile
from maskleak.logs import log_to
from maskleak.provenance import read_table

with log_to(snakemake.log[0]):
    profile = read_table(snakemake.input.profile, "profile")
    distance_profile(profile, snakemake.wildcards.model, snakemake.output[0])
