# Component rules shared by the cascade and the E2E stage-2 consolidation.
# cascade: each component trained on its own (docs/method.md, "The cascade").
# e2e_tok: tokenizer from joint E1 (frozen); LLM and flow continue from their E1 weights
#          with the `stage2_llm` / `stage2_flow` schedules.
rule train_tokenizer:
    input:
        features=expand("data/features/{split}.pt", split=["train", "dev"]),
    output:
        model=f"{CKPT}/s{{seed}}/cascade/tokenizer/final.pt",
    params:
        launch=launcher,
        cfg=seeded_json("tokenizer"),
        out_dir=lambda wc, output: os.path.dirname(output.model),
        log_dir=train_log_dir,
    priority: TRAIN_PRIORITY
    threads: 1
    resources:
        nproc=1,
        mem_mb=4000,
        runtime=60,
        gpu=0,
    conda:
        CONDA_ENV
    log:
        "logs/s{seed}/cascade/train_tokenizer.log",
    benchmark:
        "benchmarks/s{seed}/cascade/train_tokenizer.tsv"
    shell:
        "{params.launch} train tokenizer --params {params.cfg:q} --out-dir {params.out_dir} --log-dir {params.log_dir}"
        " --threads {threads} > {log} 2>&1"


rule extract_tokens:
    input:
        tokenizer=f"{CKPT}/s{{seed}}/{{system}}/tokenizer/final.pt",
        features=expand("data/features/{split}.pt", split=SPLITS),
    output:
        tokens=expand("data/tokens/s{{seed}}/{{system}}/{split}.pt", split=SPLITS),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        CONDA_ENV
    log:
        "logs/s{seed}/{system}/extract_tokens.log",
    benchmark:
        "benchmarks/s{seed}/{system}/extract_tokens.tsv",
    shell:
        "e2etts extract-tokens --tokenizer {input.tokenizer} --features {input.features}"
        " --out {output.tokens} --threads {threads} > {log} 2>&1"


# Token diagnostics (issue 16) from the token files alone, so a change of statistics does not
# re-extract tokens: per split, codebook use, H(X_n) and I(X_{n+1}; X_n) within utterances
# (raw plug-in, shuffled-successor baseline, corrected; src/e2etts/token_stats.py).
rule token_stats:
    input:
        tokens=expand("data/tokens/s{{seed}}/{{system}}/{split}.pt", split=SPLITS),
    output:
        stats="results/metrics/tokens/s{seed}/tokens_{system}.json",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        CONDA_ENV
    log:
        "logs/s{seed}/{system}/token_stats.log",
    benchmark:
        "benchmarks/s{seed}/{system}/token_stats.tsv"
    shell:
        "e2etts token-stats --tokens {input.tokens} --out {output.stats} > {log} 2>&1"


rule train_llm:
    input:
        tokens=expand("data/tokens/s{{seed}}/{{system}}/{split}.pt", split=["train", "dev"]),
        init=stage2_init("llm"),
        align_tokenizer=align_tokenizer(None),
    output:
        model=f"{CKPT}/s{{seed}}/{{system}}/llm/final.pt",
    wildcard_constraints:
        system="cascade|e2e_tok",
    params:
        launch=launcher,
        cfg=component_cfg("llm"),
        snapshots=snapshot_arg,
        tokens_dir=lambda wc, input: os.path.dirname(input.tokens[0]),
        out_dir=lambda wc, output: os.path.dirname(output.model),
        log_dir=train_log_dir,
        init=lambda wc, input: f"--init {input.init} --train-section stage2_llm" if input.init else "",
        align=lambda wc, input: f"--tokenizer {input.align_tokenizer}" if input.align_tokenizer else "",
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
        "logs/s{seed}/{system}/train_llm.log",
    benchmark:
        "benchmarks/s{seed}/{system}/train_llm.tsv"
    shell:
        "{params.launch} train llm --params {params.cfg:q} --tokens-dir {params.tokens_dir} {params.init} {params.align}"
        " {params.snapshots} --out-dir {params.out_dir} --log-dir {params.log_dir} --threads {threads} > {log} 2>&1"


rule train_flow:
    input:
        tokens=expand("data/tokens/s{{seed}}/{{system}}/{split}.pt", split=["train", "dev"]),
        init=stage2_init("flow"),
    output:
        model=f"{CKPT}/s{{seed}}/{{system}}/flow/final.pt",
    wildcard_constraints:
        system="|".join(["cascade", *E1_SYSTEMS]),
    params:
        launch=launcher,
        cfg=component_cfg("flow"),
        snapshots=snapshot_arg,
        tokens_dir=lambda wc, input: os.path.dirname(input.tokens[0]),
        out_dir=lambda wc, output: os.path.dirname(output.model),
        log_dir=train_log_dir,
        init=lambda wc, input: f"--init {input.init} --train-section stage2_flow" if input.init else "",
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
        "logs/s{seed}/{system}/train_flow.log",
    benchmark:
        "benchmarks/s{seed}/{system}/train_flow.tsv"
    shell:
        "{params.launch} train flow --params {params.cfg:q} --tokens-dir {params.tokens_dir} {params.init}"
        " {params.snapshots} --out-dir {params.out_dir} --log-dir {params.log_dir} --threads {threads} > {log} 2>&1"


# The compute-matched control (issue 16): the cascade LLM continued for the updates the E2E
# LLM gets beyond it (matched_steps in common.smk), on its own next-token loss, with the
# cascade's tokens, tokenizer (alignment) and flow.
rule train_matched_llm:
    input:
        tokens=expand("data/tokens/s{{seed}}/cascade/{split}.pt", split=["train", "dev"]),
        init=f"{CKPT}/s{{seed}}/cascade/llm/final.pt",
        align_tokenizer=align_tokenizer("cascade"),
    output:
        model=f"{CKPT}/s{{seed}}/cascade_matched/llm/final.pt",
    params:
        launch=launcher,
        cfg=matched_cfg,
        tokens_dir=lambda wc, input: os.path.dirname(input.tokens[0]),
        out_dir=lambda wc, output: os.path.dirname(output.model),
        log_dir=train_log_dir,
        align=lambda wc, input: f"--tokenizer {input.align_tokenizer}" if input.align_tokenizer else "",
    priority: TRAIN_PRIORITY
    threads: 1
    resources:
        nproc=1,
        mem_mb=4000,
        runtime=60,
        gpu=0,
    conda:
        CONDA_ENV
    log:
        "logs/s{seed}/cascade_matched/train_llm.log",
    benchmark:
        "benchmarks/s{seed}/cascade_matched/train_llm.tsv"
    shell:
        "{params.launch} train llm --params {params.cfg:q} --tokens-dir {params.tokens_dir} --init {input.init}"
        " --train-section cascade_matched {params.align} --out-dir {params.out_dir} --log-dir {params.log_dir}"
        " --threads {threads} > {log} 2>&1"


rule assemble_system:
    input:
        unpack(system_components),
    output:
        system=f"{CKPT}/s{{seed}}/{{system}}/system.json",
    params:
        cfg=section_json("vocoder", "synthesis", "synthesis_checks"),
        vocoder_arg=lambda wc, input: f"--vocoder {input.vocoder}" if input.vocoder else "",
    localrule: True
    conda:
        CONDA_ENV
    log:
        "logs/s{seed}/{system}/assemble.log",
    benchmark:
        "benchmarks/s{seed}/{system}/assemble.tsv",
    shell:
        "e2etts assemble-system --params {params.cfg:q} --name {wildcards.system}"
        " --tokenizer {input.tokenizer} --llm {input.llm} --flow {input.flow}"
        " {params.vocoder_arg} --out {output.system} > {log} 2>&1"


# Learning curves (issue 8): the cascade LLM's and flow's snapshots (train --snapshot-every)
# synthesized on the fixed dev list and scored, after training, as a job of their own: the
# decoding and the probes' judge are this rule's params, not the training rules', so changing
# them re-scores the snapshots and trains nothing again. The LLM's probe decodes through the
# trained cascade flow.
rule learning_curve:
    input:
        model=f"{CKPT}/s{{seed}}/cascade/{{component}}/final.pt",
        dev_items="data/manifests/dev_items.tsv",
        tokenizer=f"{CKPT}/s{{seed}}/cascade/tokenizer/final.pt",
        features="data/features/dev.pt",
        flow=lambda wc: f"{CKPT}/s{wc.seed}/cascade/flow/final.pt" if wc.component == "llm" else [],
    output:
        curve=f"{TRAIN_LOGS}/s{{seed}}/cascade/{{component}}/curve_log.tsv",
    wildcard_constraints:
        component="llm|flow",
    params:
        cfg=curve_cfg,
        flow=lambda wc, input: f"--flow {input.flow}" if input.flow else "",
        ckpt_dir=lambda wc, input: os.path.dirname(input.model),
        log_dir=lambda wc, output: os.path.dirname(output.curve),
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    conda:
        CONDA_ENV
    log:
        "logs/s{seed}/cascade/learning_curve_{component}.log",
    benchmark:
        "benchmarks/s{seed}/cascade/learning_curve_{component}.tsv"
    shell:
        "e2etts learning-curve {wildcards.component} --params {params.cfg:q}"
        " --checkpoint-dir {params.ckpt_dir} --log-dir {params.log_dir} --items {input.dev_items}"
        " --tokenizer {input.tokenizer} {params.flow} --features {input.features}"
        " --out {output.curve} --threads {threads} > {log} 2>&1"


# What the DVC `cascade` stage builds (stage_files: a missing one is rebuilt).
rule cascade_all:
    input:
        stage_files("cascade"),


# One seed's cascade stage (the DVC stage cascade@<seed>).
for _seed in SEEDS:

    rule:
        name:
            f"cascade_s{_seed}"
        input:
            stage_files("cascade", _seed),
