# The shared vocoder (only when vocoder.type is vocos; Griffin-Lim needs no training).


rule train_vocoder:
    input:
        manifests=expand("data/manifests/{split}.tsv", split=["train", "dev"]),
        features="data/features/train.pt",
    output:
        model="results/checkpoints/vocoder/final.pt",
    params:
        launch=launcher,
        cfg=section_json("seed", "vocoder"),
        out_dir=lambda wc, output: os.path.dirname(output.model),
        log_dir=train_log_dir,
        manifest_dir=lambda wc, input: os.path.dirname(input.manifests[0]),
    priority: TRAIN_PRIORITY
    threads: 1
    resources:
        nproc=1,
        mem_mb=4000,
        runtime=120,
        gpu=0,
    conda:
        CONDA_ENV
    log:
        "logs/vocoder/train_vocoder.log",
    benchmark:
        "benchmarks/vocoder/train_vocoder.tsv"
    shell:
        "{params.launch} train vocoder --params {params.cfg:q} --manifest-dir {params.manifest_dir}"
        " --out-dir {params.out_dir} --log-dir {params.log_dir} --threads {threads} > {log} 2>&1"
