# e2e-tts: cascaded vs end-to-end trained discrete-token LLM TTS.
# Read as a table of contents: data -> cascade (tokenizer, LLM, flow, vocoder) -> E2E
# (joint tokenizer, reward model, LLM through FM+RM) -> evaluation -> report.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "params.yaml"


# Validation only: the schema's defaults are filled by the CLI (e2etts.config), never into
# `config`, whose sections become the rules' params (a filled default would change them).
validate(config, "workflow/schemas/params.schema.yaml", set_default=False)


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/vocoder.smk"
include: "workflow/rules/cascade.smk"
include: "workflow/rules/e2e.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/designs.smk"
include: "workflow/rules/bench.smk"


rule all:
    input:
        rules.data_all.input,
        rules.cascade_all.input,
        rules.e2e_all.input,
        rules.evaluate_all.input,
    default_target: True
