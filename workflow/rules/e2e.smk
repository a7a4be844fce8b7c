# End-to-end training (docs/method.md): E1 joint tokenizer -> stage-2 consolidation and reward
# fitting -> E2 LLM through the frozen flow and reward model.


rule train_joint_e1:
    input:
        unpack(e1_warm_start),
        features=expand("data/features/{split}.pt", split=["train", "dev"]),
        init=(
            [f"{CKPT}/s{{seed}}/cascade/tokenizer/final.pt"]
            if config["joint_e1"].get("objective", {}).get("init_tokenizer", True)
            else []
        ),
    output:
        model=f"{CKPT}/s{{seed}}/{{e1}}/joint_e1/final.pt",
    wildcard_constraints:
        e1="|".join(E1_SYSTEMS),
    params:
        launch=launcher,
        cfg=e1_cfg,
        out_dir=lambda wc, output: os.path.dirname(output.model),
        log_dir=train_log_dir,
        init=lambda wc, input: f"--init {input.init}" if input.init else "",
        warm=e1_warm_args,
    priority: TRAIN_PRIORITY
    threads: 1
    resources:
        nproc=1,
        mem_mb=6000,
        runtime=120,
        gpu=1,
    conda:
        CONDA_ENV
    log:
        "logs/s{seed}/{e1}/train_joint_e1.log",
    benchmark:
        "benchmarks/s{seed}/{e1}/train_joint_e1.tsv"
    shell:
        "{params.launch} train joint_e1 --params {params.cfg:q} {params.init} {params.warm}"
        " --out-dir {params.out_dir} --log-dir {params.log_dir} --threads {threads} > {log} 2>&1"


rule export_joint_e1:
    input:
        model=rules.train_joint_e1.output.model,
    output:
        parts=expand(f"{CKPT}/s{{{{seed}}}}/{{{{e1}}}}/init/{{part}}.pt", part=["tokenizer", "flow", "llm", "reward"]),
    wildcard_constraints:
        e1="|".join(E1_SYSTEMS),
    params:
        out_dir=lambda wc, output: os.path.dirname(output.parts[0]),
    localrule: True
    conda:
        CONDA_ENV
    log:
        "logs/s{seed}/{e1}/export_joint_e1.log",
    benchmark:
        "benchmarks/s{seed}/{e1}/export_joint_e1.tsv",
    shell:
        "e2etts export-components --checkpoint {input.model} --out-dir {params.out_dir} > {log} 2>&1"


rule frozen_e1_tokenizer:
    input:
        f"{CKPT}/s{{seed}}/{{e1}}/init/tokenizer.pt",
    output:
        f"{CKPT}/s{{seed}}/{{e1}}/tokenizer/final.pt",
    wildcard_constraints:
        e1="|".join(E1_SYSTEMS),
    localrule: True
    conda:
        CONDA_ENV
    log:
        "logs/s{seed}/{e1}/frozen_tokenizer.log",
    benchmark:
        "benchmarks/s{seed}/{e1}/frozen_tokenizer.tsv",
    shell:
        "cp {input} {output} 2> {log}"


rule fit_reward:
    input:
        tokens=expand("data/tokens/s{{seed}}/e2e_tok/{split}.pt", split=["train", "dev"]),
        init=f"{CKPT}/s{{seed}}/e2e_tok/init/reward.pt",
    output:
        model=f"{CKPT}/s{{seed}}/e2e_tok/reward/final.pt",
    params:
        launch=launcher,
        cfg=seeded_json("reward"),
        tokens_dir=lambda wc, input: os.path.dirname(input.tokens[0]),
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
        "logs/s{seed}/e2e_tok/fit_reward.log",
    benchmark:
        "benchmarks/s{seed}/e2e_tok/fit_reward.tsv"
    shell:
        "{params.launch} train reward --params {params.cfg:q} --tokens-dir {params.tokens_dir}"
        " --init {input.init} --out-dir {params.out_dir} --log-dir {params.log_dir} --threads {threads} > {log} 2>&1"


rule train_joint_e2:
    input:
        tokens=expand("data/tokens/s{{seed}}/e2e_tok/{split}.pt", split=["train", "dev"]),
        llm=f"{CKPT}/s{{seed}}/e2e_tok/llm/final.pt",
        flow=f"{CKPT}/s{{seed}}/e2e_tok/flow/final.pt",
        reward=f"{CKPT}/s{{seed}}/e2e_tok/reward/final.pt",
        align_tokenizer=align_tokenizer("e2e_tok"),
    output:
        model=f"{CKPT}/s{{seed}}/e2e_{{variant}}/llm/final.pt",
    wildcard_constraints:
        variant="fm|full",
    params:
        launch=launcher,
        cfg=lambda wc: seeded_json(f"joint_e2_{wc.variant}")(wc),
        tokens_dir=lambda wc, input: os.path.dirname(input.tokens[0]),
        out_dir=lambda wc, output: os.path.dirname(output.model),
        log_dir=train_log_dir,
        align=lambda wc, input: f"--tokenizer {input.align_tokenizer}" if input.align_tokenizer else "",
    priority: TRAIN_PRIORITY
    threads: 1
    resources:
        nproc=1,
        mem_mb=6000,
        runtime=120,
        gpu=1,
    conda:
        CONDA_ENV
    log:
        "logs/s{seed}/e2e_{variant}/train_joint_e2.log",
    benchmark:
        "benchmarks/s{seed}/e2e_{variant}/train_joint_e2.tsv"
    shell:
        "{params.launch} train joint_e2 --section joint_e2_{wildcards.variant} --params {params.cfg:q}"
        " --tokens-dir {params.tokens_dir} --init {input.llm} --flow {input.flow}"
        " --reward {input.reward} {params.align} --out-dir {params.out_dir} --log-dir {params.log_dir} --threads {threads} > {log} 2>&1"


# What the DVC `e2e` stage builds (stage_files: a missing one is rebuilt).
rule e2e_all:
    input:
        stage_files("e2e"),


# One seed's E2E stage (the DVC stage e2e@<seed>).
for _seed in SEEDS:

    rule:
        name:
            f"e2e_s{_seed}"
        input:
            stage_files("e2e", _seed),
