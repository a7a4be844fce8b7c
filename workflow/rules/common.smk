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
