import json
import os

SPLITS = ["train", "dev", "test"]
# Systems the report compares (METHOD.md) and the toplines that bound them (EVAL.md).
SYSTEMS = ["cascade", "e2e_tok", "e2e_fm", "e2e_full"]
# Token resynthesis for each tokenizer (cascade CTC tokenizer; E1 joint tokenizer).
TOPLINES = ["gt", "gt_vocoded", "resynth_cascade", "resynth_e2e_tok"]
CONDA_ENV = "../envs/e2etts.yaml"


def section_json(*keys):
    """The named params sections as one JSON string (a rule's `params:`)."""
    return json.dumps({k: config[k] for k in keys}, sort_keys=True)


def vocoder_checkpoint():
    """The shared vocoder's checkpoint, or nothing when Griffin-Lim (no training) is used."""
    if config["vocoder"]["type"] == "vocos":
        return ["results/checkpoints/vocoder/final.pt"]
    return []


CKPT = "results/checkpoints"


def stage2_init(component):
    """Input function: E1 weights to start from, for e2e_tok only."""

    def inner(wc):
        return [f"{CKPT}/e2e_tok/init/{component}.pt"] if wc.system == "e2e_tok" else []

    return inner


def component_cfg(component):
    def inner(wc):
        keys = ("seed", component, "stage2") if wc.system == "e2e_tok" else ("seed", component)
        return section_json(*keys)

    return inner


def system_components(wc):
    """Which checkpoints make up each system (METHOD.md, 'Systems the report compares')."""
    tok_system = "cascade" if wc.system == "cascade" else "e2e_tok"
    llm_system = wc.system if wc.system != "cascade" else "cascade"
    return {
        "tokenizer": f"{CKPT}/{tok_system}/tokenizer/final.pt",
        "llm": f"{CKPT}/{llm_system}/llm/final.pt",
        "flow": f"{CKPT}/{tok_system}/flow/final.pt",
        "vocoder": vocoder_checkpoint(),
    }
