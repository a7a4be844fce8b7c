# E1 designs side by side on the dev list (issue 16): params e1_designs. Each design
# e1_<name> trains its own E1 (train_joint_e1, with the design's overrides and warm starts),
# exports it, extracts its tokens and token statistics, trains a flow on them with the
# stage2_flow schedule (train_flow), and resynthesizes `e1_designs.dev_items` dev-list items
# through that flow; the cascade's and the default E1's (e2e_tok) tokens are resynthesized on
# the same items. Decisions are made here, never on the test list.
DESIGN_ROWS = ["cascade", "e2e_tok", *E1_DESIGNS]


rule make_design_items:
    input:
        dev="data/manifests/dev.tsv",
        train="data/manifests/train.tsv",
    output:
        dev_items="results/designs/items.tsv",
    params:
        n_items=config["e1_designs"]["dev_items"],
        seed=config["seed"],
    threads: 1
    conda:
        CONDA_ENV
    log:
        "logs/designs/make_items.log",
    benchmark:
        "benchmarks/designs/make_items.tsv",
    shell:
        "e2etts make-items --test {input.dev} --train {input.train} --n-items {params.n_items}"
        " --seed {params.seed} --out {output.dev_items} > {log} 2>&1"


rule design_resynth:
    input:
        system=f"{CKPT}/s{{seed}}/{{row}}/system.json",
        dev_items=rules.make_design_items.output.dev_items,
    output:
        stats="results/designs/s{seed}/{row}/synthesis.json",
    wildcard_constraints:
        row="|".join(DESIGN_ROWS),
    params:
        system_dir=lambda wc, input: os.path.dirname(input.system),
        out_dir=lambda wc, output: os.path.dirname(output.stats),
    threads: 1
    conda:
        CONDA_ENV
    log:
        "logs/s{seed}/designs/resynth_{row}.log",
    benchmark:
        "benchmarks/s{seed}/designs/resynth_{row}.tsv",
    shell:
        "e2etts topline resynth --items {input.dev_items} --system {params.system_dir}"
        " --seed {wildcards.seed} --out-dir {params.out_dir} > {log} 2>&1"


rule score_design:
    input:
        dev_items=rules.make_design_items.output.dev_items,
        stats="results/designs/s{seed}/{row}/synthesis.json",
    output:
        metrics="results/metrics/designs/s{seed}/{row}.json",
        per_utt="results/metrics/designs/s{seed}/{row}.tsv",
    wildcard_constraints:
        row="|".join(DESIGN_ROWS),
    params:
        cfg=section_json("eval"),
        wav_dir=lambda wc, input: os.path.dirname(input.stats),
    threads: 1
    resources:
        mem_mb=3000,
    conda:
        CONDA_ENV
    log:
        "logs/s{seed}/designs/score_{row}.log",
    benchmark:
        "benchmarks/s{seed}/designs/score_{row}.tsv",
    shell:
        "e2etts score --params {params.cfg:q} --items {input.dev_items} --wav-dir {params.wav_dir}"
        " --system {wildcards.row} --per-utt {output.per_utt} --metrics {output.metrics}"
        " --threads {threads} > {log} 2>&1"


# One table: per design (and seed), dev token-resynthesis WER and SIM with intervals and
# tests against the cascade's tokens, and the tokenizer's H and I (train split).
rule summarize_designs:
    input:
        metrics=expand("results/metrics/designs/s{seed}/{row}.json", seed=SEEDS, row=DESIGN_ROWS),
        per_utt=expand("results/metrics/designs/s{seed}/{row}.tsv", seed=SEEDS, row=DESIGN_ROWS),
        token_stats=expand("results/metrics/tokens/s{seed}/tokens_{row}.json", seed=SEEDS, row=DESIGN_ROWS),
    output:
        summary="results/metrics/e1_designs.json",
    params:
        tokenizer_of=" ".join(f"{r}={r}" for r in DESIGN_ROWS),
    threads: 1
    conda:
        CONDA_ENV
    log:
        "logs/designs/summarize.log",
    benchmark:
        "benchmarks/designs/summarize.tsv",
    shell:
        "e2etts summarize --metrics {input.metrics} --token-stats {input.token_stats}"
        " --tokenizer-of {params.tokenizer_of} --out {output.summary} > {log} 2>&1"


rule e1_designs:
    input:
        rules.summarize_designs.output.summary,
