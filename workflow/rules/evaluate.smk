# Evaluation (docs/evaluation.md): one test list, the same judges for systems and toplines.
# Synthesis and scoring are separate rules, so changing a judge re-scores without
# re-synthesizing.


wildcard_constraints:
    system="|".join(SYSTEMS + E1_DESIGNS),
    name="|".join(SYSTEMS + TOPLINES),
    seeded="|".join(SEEDED),
    seed_free="|".join(SEED_FREE),


rule make_items:
    input:
        test="data/manifests/test.tsv",
        train="data/manifests/train.tsv",
    output:
        test_items="results/eval/items.tsv",
    params:
        n_items=config["eval"]["n_items"],
        seed=config["seed"],
    threads: 1
    conda:
        CONDA_ENV
    log:
        "logs/eval/make_items.log",
    benchmark:
        "benchmarks/eval/make_items.tsv",
    shell:
        "e2etts make-items --test {input.test} --train {input.train} --n-items {params.n_items}"
        " --seed {params.seed} --out {output.test_items} > {log} 2>&1"


rule synthesize_system:
    input:
        system="results/checkpoints/s{seed}/{system}/system.json",
        test_items=rules.make_items.output.test_items,
    output:
        stats="results/samples/s{seed}/{system}/synthesis.json",
    params:
        system_dir=lambda wc, input: os.path.dirname(input.system),
        out_dir=lambda wc, output: os.path.dirname(output.stats),
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
    conda:
        CONDA_ENV
    log:
        "logs/s{seed}/eval/synthesize_{system}.log",
    benchmark:
        "benchmarks/s{seed}/eval/synthesize_{system}.tsv"
    shell:
        "e2etts synthesize --system {params.system_dir} --items {input.test_items}"
        " --out-dir {params.out_dir} --seed {wildcards.seed} --threads {threads} > {log} 2>&1"


rule topline_gt:
    input:
        test_items=rules.make_items.output.test_items,
    output:
        stats="results/samples/gt/synthesis.json",
    params:
        out_dir=lambda wc, output: os.path.dirname(output.stats),
    threads: 1
    conda:
        CONDA_ENV
    log:
        "logs/eval/topline_gt.log",
    benchmark:
        "benchmarks/eval/topline_gt.tsv",
    shell:
        "e2etts topline gt --items {input.test_items} --out-dir {params.out_dir} > {log} 2>&1"


rule topline_gt_vocoded:
    input:
        test_items=rules.make_items.output.test_items,
        vocoder=vocoder_checkpoint(),
    output:
        stats="results/samples/gt_vocoded/synthesis.json",
    params:
        cfg=section_json("seed", "vocoder"),
        out_dir=lambda wc, output: os.path.dirname(output.stats),
        vocoder_arg=lambda wc, input: f"--vocoder {input.vocoder}" if input.vocoder else "",
    threads: 1
    conda:
        CONDA_ENV
    log:
        "logs/eval/topline_gt_vocoded.log",
    benchmark:
        "benchmarks/eval/topline_gt_vocoded.tsv",
    shell:
        "e2etts topline gt_vocoded --items {input.test_items} --params {params.cfg:q}"
        " {params.vocoder_arg} --out-dir {params.out_dir} > {log} 2>&1"


rule topline_resynth:
    input:
        system="results/checkpoints/s{seed}/{system}/system.json",
        test_items=rules.make_items.output.test_items,
    output:
        stats="results/samples/s{seed}/resynth_{system}/synthesis.json",
    params:
        system_dir=lambda wc, input: os.path.dirname(input.system),
        out_dir=lambda wc, output: os.path.dirname(output.stats),
    threads: 1
    conda:
        CONDA_ENV
    log:
        "logs/s{seed}/eval/topline_resynth_{system}.log",
    benchmark:
        "benchmarks/s{seed}/eval/topline_resynth_{system}.tsv",
    shell:
        "e2etts topline resynth --items {input.test_items} --system {params.system_dir}"
        " --seed {wildcards.seed} --out-dir {params.out_dir} > {log} 2>&1"


rule score:
    input:
        test_items=rules.make_items.output.test_items,
        stats="results/samples/{seed_free}/synthesis.json",
    output:
        metrics="results/metrics/systems/{seed_free}.json",
        per_utt="results/metrics/systems/{seed_free}.tsv",
    params:
        cfg=section_json("eval"),
        wav_dir=lambda wc, input: os.path.dirname(input.stats),
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    conda:
        CONDA_ENV
    log:
        "logs/eval/score_{seed_free}.log",
    benchmark:
        "benchmarks/eval/score_{seed_free}.tsv"
    shell:
        "e2etts score --params {params.cfg:q} --items {input.test_items} --wav-dir {params.wav_dir}"
        " --system {wildcards.seed_free} --per-utt {output.per_utt} --metrics {output.metrics}"
        " --threads {threads} > {log} 2>&1"


rule score_seeded:
    input:
        test_items=rules.make_items.output.test_items,
        stats="results/samples/s{seed}/{seeded}/synthesis.json",
    output:
        metrics="results/metrics/systems/s{seed}/{seeded}.json",
        per_utt="results/metrics/systems/s{seed}/{seeded}.tsv",
    params:
        cfg=section_json("eval"),
        wav_dir=lambda wc, input: os.path.dirname(input.stats),
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    conda:
        CONDA_ENV
    log:
        "logs/s{seed}/eval/score_{seeded}.log",
    benchmark:
        "benchmarks/s{seed}/eval/score_{seeded}.tsv"
    shell:
        "e2etts score --params {params.cfg:q} --items {input.test_items} --wav-dir {params.wav_dir}"
        " --system {wildcards.seeded} --per-utt {output.per_utt} --metrics {output.metrics}"
        " --threads {threads} > {log} 2>&1"


rule summarize:
    input:
        metrics=metric_files("json"),
        per_utt=metric_files("tsv"),
        token_stats=[f for s in SEEDS for f in token_stat_files(s)],
    output:
        summary="results/metrics/summary.json",
    params:
        # name=tokenizer for every row that speaks through one (token diagnostics, issue 16)
        tokenizer_of=" ".join(
            f"{n}={tokenizer_of(n)}" for n in TOPLINES + SYSTEMS if tokenizer_of(n)
        ),
    threads: 1
    conda:
        CONDA_ENV
    log:
        "logs/eval/summarize.log",
    benchmark:
        "benchmarks/eval/summarize.tsv",
    shell:
        "e2etts summarize --metrics {input.metrics} --token-stats {input.token_stats}"
        " --tokenizer-of {params.tokenizer_of} --out {output.summary} > {log} 2>&1"


rule report:
    input:
        summary=rules.summarize.output.summary,
        test_items=rules.make_items.output.test_items,
        systems=expand("results/checkpoints/s{seed}/{system}/system.json", seed=SEEDS, system=SYSTEMS),
        curves=curve_files(SEEDS[0]),  # the report draws the first seed's training curves
    output:
        html="results/report/index.html",
        readme="results/report/README.md",
    params:
        out_dir=lambda wc, output: os.path.dirname(output.html),
        n_audio=config["eval"].get("report_items", 5),
    threads: 1
    conda:
        CONDA_ENV
    log:
        "logs/eval/report.log",
    benchmark:
        "benchmarks/eval/report.tsv",
    shell:
        "e2etts report --summary {input.summary} --items {input.test_items}"
        " --metrics-dir results/metrics/systems --samples-dir results/samples"
        " --train-logs-dir results/train_logs --n-audio {params.n_audio}"
        " --out-dir {params.out_dir} > {log} 2>&1"


# What the DVC `evaluate` stage builds: every declared output of the evaluation, so a
# deleted one is rebuilt (stage_files in common.smk says why a plain file target is not enough).
rule evaluate_all:
    input:
        rules.make_items.output.test_items,
        sample_files(),
        metric_files("json"),
        metric_files("tsv"),
        rules.summarize.output.summary,
        rules.report.output,


# One seed's scored rows (metrics and per-item scores of every seeded system), without the
# summary: a claim trained one seed per session (a command dies with its session) adds its
# scores to the committed ones, and `make claim-summary` summarizes them all. The seed's token
# statistics are built here too: the summary reads them, and `claim-summary` may not.
for _seed in SEEDS:

    rule:
        name:
            f"scores_s{_seed}"
        input:
            seeded_metric_files(_seed, "json"),
            seeded_metric_files(_seed, "tsv"),
            token_stat_files(_seed),
