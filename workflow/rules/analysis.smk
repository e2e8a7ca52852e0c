rule metrics:
    input:
        manifests=PLAN.manifests(),
        regions=list(PLAN.region_maps().values()),
    output:
        "results/metrics.parquet",
    log:
        "logs/metrics.log",
    benchmark:
        "benchmarks/metrics.tsv"
    threads: 2
    params:
        band_px=PLAN.band_px,
        region_maps=PLAN.region_maps(),
    script:
        "../scripts/metrics.py"


rule trends:
    input:
        "results/metrics.parquet",
    output:
        "results/trends.parquet",
    log:
        "logs/trends.log",
    script:
        "../scripts/trends.py"
