# Benchmarks (docs/benchmarks.md): not part of `all`; run on demand with
#   snakemake --profile workflow/profiles/default results/bench/bench_cpu.json
# Step throughput per stage (mel frames/s, model-FLOPs utilization against the measured
# matmul peak), synthesis RTF per stage, KV-cache speed-up, peak training memory.
rule benchmark:
    output:
        figures="results/bench/bench_{device}.json",
    wildcard_constraints:
        device="cpu|cuda",
    params:
        batch=16,
    threads: 1
    resources:
        mem_mb=6000,
        runtime=30,
        gpu=lambda wc: int(wc.device == "cuda"),
    conda:
        CONDA_ENV
    log:
        "logs/bench/bench_{device}.log",
    benchmark:
        "benchmarks/bench/bench_{device}.tsv",
    shell:
        "python -m e2etts.bench --params params.yaml --device {wildcards.device}"
        " --threads {threads} --batch {params.batch} --out {output.figures} > {log} 2>&1"
