# The cascaded baseline: each component trained on its own (METHOD.md, "Cascaded baseline").
CASCADE = "results/checkpoints/cascade"


rule train_tokenizer:
    input:
        features=expand("data/features/{split}.pt", split=["train", "dev"]),
    output:
        model=f"{CASCADE}/tokenizer/final.pt",
    params:
        cfg=section_json("seed", "tokenizer"),
        out_dir=lambda wc, output: os.path.dirname(output.model),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=0,
    conda:
        CONDA_ENV
    log:
        "logs/cascade/train_tokenizer.log",
    benchmark:
        "benchmarks/cascade/train_tokenizer.tsv"
    shell:
        "e2etts train tokenizer --params {params.cfg:q} --out-dir {params.out_dir}"
        " --threads {threads} > {log} 2>&1"


rule extract_tokens:
    input:
        tokenizer="results/checkpoints/{system}/tokenizer/final.pt",
        features=expand("data/features/{split}.pt", split=SPLITS),
    output:
        tokens=expand("data/tokens/{{system}}/{split}.pt", split=SPLITS),
        stats="results/metrics/tokens_{system}.json",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        CONDA_ENV
    log:
        "logs/{system}/extract_tokens.log",
    shell:
        "e2etts extract-tokens --tokenizer {input.tokenizer} --features {input.features}"
        " --out {output.tokens} --stats {output.stats} --threads {threads} > {log} 2>&1"


rule train_llm:
    input:
        tokens=expand("data/tokens/cascade/{split}.pt", split=["train", "dev"]),
    output:
        model=f"{CASCADE}/llm/final.pt",
    params:
        cfg=section_json("seed", "llm"),
        out_dir=lambda wc, output: os.path.dirname(output.model),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=0,
    conda:
        CONDA_ENV
    log:
        "logs/cascade/train_llm.log",
    benchmark:
        "benchmarks/cascade/train_llm.tsv"
    shell:
        "e2etts train llm --params {params.cfg:q} --tokens-dir data/tokens/cascade"
        " --out-dir {params.out_dir} --threads {threads} > {log} 2>&1"


rule train_flow:
    input:
        tokens=expand("data/tokens/cascade/{split}.pt", split=["train", "dev"]),
    output:
        model=f"{CASCADE}/flow/final.pt",
    params:
        cfg=section_json("seed", "flow"),
        out_dir=lambda wc, output: os.path.dirname(output.model),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=0,
    conda:
        CONDA_ENV
    log:
        "logs/cascade/train_flow.log",
    benchmark:
        "benchmarks/cascade/train_flow.tsv"
    shell:
        "e2etts train flow --params {params.cfg:q} --tokens-dir data/tokens/cascade"
        " --out-dir {params.out_dir} --threads {threads} > {log} 2>&1"


rule assemble_cascade:
    input:
        tokenizer=rules.train_tokenizer.output.model,
        llm=rules.train_llm.output.model,
        flow=rules.train_flow.output.model,
        vocoder=vocoder_checkpoint(),
    output:
        system=f"{CASCADE}/system.json",
    params:
        cfg=section_json("seed", "data", "tokenizer", "llm", "flow", "vocoder", "synthesis"),
        vocoder_arg=lambda wc, input: f"--vocoder {input.vocoder}" if input.vocoder else "",
    localrule: True
    conda:
        CONDA_ENV
    log:
        "logs/cascade/assemble.log",
    shell:
        "e2etts assemble-system --params {params.cfg:q} --name cascade"
        " --tokenizer {input.tokenizer} --llm {input.llm} --flow {input.flow}"
        " {params.vocoder_arg} --out {output.system} > {log} 2>&1"
