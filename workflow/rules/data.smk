rule data_all:
    input:
        expand("data/features/{split}.pt", split=SPLITS),
        "results/metrics/corpus.json",
        "data/manifests/dev_items.tsv",


rule prepare_corpus:
    input:
        corpus=corpus_listing,
    output:
        manifest="data/corpus/raw_manifest.tsv",
    params:
        cfg=corpus_cfg(),
        wav_dir="data/corpus/wavs",
    threads: workflow.cores
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        CONDA_ENV
    log:
        "logs/data/prepare_corpus.log",
    benchmark:
        "benchmarks/data/prepare_corpus.tsv"
    shell:
        "e2etts prepare-corpus --params {params.cfg:q} --manifest {output.manifest}"
        " --wav-dir {params.wav_dir} --jobs {threads} > {log} 2>&1"


rule validate_manifests:
    input:
        raw=rules.prepare_corpus.output.manifest,
        audio=corpus_audio,
    output:
        manifests=expand("data/manifests/{split}.tsv", split=SPLITS),
        report="data/manifests/data_report.json",
    params:
        cfg=corpus_cfg(),
        out_dir=lambda wc, output: os.path.dirname(output.report),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        CONDA_ENV
    log:
        "logs/data/validate_manifests.log",
    benchmark:
        "benchmarks/data/validate_manifests.tsv"
    shell:
        "e2etts validate --params {params.cfg:q} --raw {input.raw}"
        " --out-dir {params.out_dir} > {log} 2>&1"


rule extract_features:
    input:
        manifest="data/manifests/{split}.tsv",
    output:
        features="data/features/{split}.pt",
    params:
        text_frontend=config["data"].get("text_frontend", "chars"),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        CONDA_ENV
    log:
        "logs/data/features_{split}.log",
    benchmark:
        "benchmarks/data/features_{split}.tsv"
    shell:
        "e2etts features --manifest {input.manifest} --out {output.features}"
        " --text-frontend {params.text_frontend} --threads {threads} > {log} 2>&1"


rule speaker_check:
    input:
        manifests=expand("data/manifests/{split}.tsv", split=SPLITS),
    output:
        report="results/metrics/corpus.json",
    params:
        per_speaker=config["data"].get("speaker_check_utts", 4),
        seed=config["seed"],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        CONDA_ENV
    log:
        "logs/data/speaker_check.log",
    benchmark:
        "benchmarks/data/speaker_check.tsv",
    shell:
        "e2etts speaker-check --manifests {input.manifests} --per-speaker {params.per_speaker}"
        " --seed {params.seed} --out {output.report} > {log} 2>&1"


# The fixed dev list of the learning curves (curves.n_items items; unseen sentences, seen
# and unseen voices), made like the test list.
rule make_dev_items:
    input:
        dev="data/manifests/dev.tsv",
        train="data/manifests/train.tsv",
    output:
        dev_items="data/manifests/dev_items.tsv",
    params:
        n_items=config["curves"]["n_items"],
        seed=config["seed"],
    threads: 1
    conda:
        CONDA_ENV
    log:
        "logs/data/make_dev_items.log",
    benchmark:
        "benchmarks/data/make_dev_items.tsv",
    shell:
        "e2etts make-items --test {input.dev} --train {input.train} --n-items {params.n_items}"
        " --seed {params.seed} --out {output.dev_items} > {log} 2>&1"
