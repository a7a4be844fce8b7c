import json
import os
from pathlib import Path
from types import SimpleNamespace

SPLITS = ["train", "dev", "test"]
# Systems the report compares (docs/method.md); toplines that bound them (docs/evaluation.md).
SYSTEMS = ["cascade", "e2e_tok", "e2e_fm", "e2e_full"]
# Token resynthesis for each tokenizer (cascade CTC tokenizer; E1 joint tokenizer).
TOPLINES = ["gt", "gt_vocoded", "resynth_cascade", "resynth_e2e_tok"]
CONDA_ENV = "../envs/e2etts.yaml"
# Training jobs are the long poles of the DAG: when a core frees up, start the next training
# before the short synthesis/scoring jobs, which fill the gaps. In the session-6 run the
# scheduler picked evaluation jobs first at 01:54 and E2 fm started 11 min late, leaving one
# core idle for the last ~20 min (docs/benchmarks.md, "Session 6"). Scheduling only: no
# job's inputs, commands or numbers change.
TRAIN_PRIORITY = 10


def section_json(*keys):
    """The named params sections as one JSON string (a rule's `params:`)."""
    return json.dumps({k: config[k] for k in keys}, sort_keys=True)


def launcher(wildcards, resources):
    """The command a training job starts with: `e2etts`, or torchrun with resources.nproc processes
    (DDP). The count comes from the profile (set-resources: train_llm: nproc: 4), never
    from code."""
    n = int(getattr(resources, "nproc", 1))
    if n > 1:
        return f"torchrun --standalone --nproc_per_node {n} -m e2etts.cli"
    return "e2etts"


def corpus_cfg():
    """seed + data without the text front end: audio and manifests do not depend on it, so
    switching chars <-> phones re-extracts features but does not re-synthesize the corpus."""
    data = {k: v for k, v in config["data"].items() if k != "text_frontend"}
    return json.dumps({"seed": config["seed"], "data": data}, sort_keys=True)


# What the data rules read of a real corpus (data.source ljspeech | libritts), so that a
# changed corpus re-runs them and an unchanged one re-runs nothing (issue 21, item 2: rows
# added to metadata.csv left the old manifest in use). Listed when the DAG is built: for
# LJSpeech one directory listing, for LibriTTS one recursive glob. A file that does not
# exist is left out (the reader then stops with its own message naming the layout); its
# appearing later changes the input set, which re-runs the rule (rerun trigger "input").
def _corpus_root():
    data = config["data"]
    if data["source"] == "embedded" or not data.get("corpus_path"):
        return None
    return Path(data["corpus_path"])


def _corpus_wavs(root):
    if config["data"]["source"] == "ljspeech":
        return sorted(str(p) for p in (root / "wavs").glob("*.wav"))
    return sorted(str(p) for p in root.rglob("*.wav"))


def corpus_listing(wc):
    """prepare_corpus's inputs: LJSpeech metadata.csv; LibriTTS every wav (the reader lists
    them) and every transcript (<utt>.normalized.txt) it reads."""
    root = _corpus_root()
    if root is None:
        return []
    if config["data"]["source"] == "ljspeech":
        meta = root / "metadata.csv"
        return [str(meta)] if meta.is_file() else []
    return _corpus_wavs(root) + sorted(str(p) for p in root.rglob("*.normalized.txt"))


def corpus_audio(wc):
    """validate_manifests's inputs: the corpus wavs it decodes (none for the embedded corpus,
    whose wavs prepare_corpus writes)."""
    root = _corpus_root()
    return [] if root is None else _corpus_wavs(root)


def vocoder_checkpoint():
    """The shared vocoder's checkpoint, or nothing when Griffin-Lim (no training) is used."""
    if config["vocoder"]["type"] == "vocos":
        return ["results/checkpoints/vocoder/final.pt"]
    return []


CKPT = "results/checkpoints"
# Training logs (loss, held-out metrics, learning curves) carry wall-clock columns, so they
# live apart from the checkpoints: a checkpoint directory then hashes the same in two runs
# with the same seed (docs/reproducibility.md). Not a DVC output; read by `dvc plots`.
TRAIN_LOGS = "results/train_logs"


def train_log_dir(wc, output):
    """results/checkpoints/<system>/<component> -> results/train_logs/<system>/<component>."""
    ckpt_dir = os.path.dirname(output.model)
    return TRAIN_LOGS + ckpt_dir[len(CKPT):]


def stage2_init(component):
    """Input function: E1 weights to start from, for e2e_tok only."""

    def inner(wc):
        return [f"{CKPT}/e2e_tok/init/{component}.pt"] if wc.system == "e2e_tok" else []

    return inner


def align_tokenizer(wc):
    """Input function: the tokens' tokenizer, whose CTC head aligns text symbols to tokens,
    for an LLM in the interleaved format (llm.model.alignment); E2 uses e2e_tok's."""
    if config["llm"]["model"].get("alignment", "prefix") != "interleaved":
        return []
    return [f"{CKPT}/{getattr(wc, 'system', 'e2e_tok')}/tokenizer/final.pt"]


def curves_on(wc):
    return wc.system == "cascade" and config["curves"]["enabled"]


# The eval keys a learning-curve probe reads. The evaluation's own judge (eval.asr_model,
# asr_model_dir, asr_batch_size), the test list and the report are not among them, so
# changing those re-scores the systems without re-running (or re-resuming) training.
CURVE_EVAL_KEYS = ("asr_compute_type", "asr_max_tokens_per_second", "sim_backend")


def curve_eval():
    keys = CURVE_EVAL_KEYS
    if config["curves"]["asr_model"] is None:  # the probe borrows the evaluation's judge
        keys += ("asr_model", "asr_model_dir", "asr_beam_size")
    return {k: config["eval"][k] for k in keys}


def component_cfg(component):
    def inner(wc):
        keys = ("seed", component, f"stage2_{component}") if wc.system == "e2e_tok" else ("seed", component)
        cfg = {k: config[k] for k in keys}
        if curves_on(wc):  # the probe synthesizes and scores like the evaluation does
            cfg.update({k: config[k] for k in ("curves", "synthesis", "vocoder")}, eval=curve_eval())
        return json.dumps(cfg, sort_keys=True)

    return inner


def curve_inputs(component):
    """Input function (unpack): the dev list, tokenizer and (LLM) flow of the probe."""

    def inner(wc):
        if not curves_on(wc):
            return {}
        inputs = {
            "curve_items": "data/manifests/dev_items.tsv",
            "curve_tokenizer": f"{CKPT}/cascade/tokenizer/final.pt",
        }
        if component == "llm":
            inputs["curve_flow"] = f"{CKPT}/cascade/flow/final.pt"
        return inputs

    return inner


def curve_args(wc, input):
    """The probe's command-line flags, from the inputs curve_inputs added."""
    names = ("curve_items", "curve_tokenizer", "curve_flow")
    return " ".join(f"--{n.replace('_', '-')} {getattr(input, n)}" for n in names if hasattr(input, n))


# The tokenizers, named by the system whose checkpoint directory holds them: the cascade's
# CTC tokenizer and the joint E1 tokenizer (frozen for every E2E system).
TOKENIZERS = ["cascade", "e2e_tok"]


def tokenizer_of(name):
    """The tokenizer a system or resynthesis topline speaks with ("" for gt, gt_vocoded)."""
    name = name[len("resynth_"):] if name.startswith("resynth_") else name
    if name not in SYSTEMS:
        return ""
    return "cascade" if name == "cascade" else "e2e_tok"


def system_components(wc):
    """Which checkpoints make up each system (docs/method.md, 'The systems compared')."""
    tok_system = tokenizer_of(wc.system)
    llm_system = wc.system if wc.system != "cascade" else "cascade"
    return {
        "tokenizer": f"{CKPT}/{tok_system}/tokenizer/final.pt",
        "llm": f"{CKPT}/{llm_system}/llm/final.pt",
        "flow": f"{CKPT}/{tok_system}/flow/final.pt",
        "vocoder": vocoder_checkpoint(),
    }


def system_files(system):
    """A system's system.json and every checkpoint it points at (system_components)."""
    parts = system_components(SimpleNamespace(system=system))
    return [f"{CKPT}/{system}/system.json", parts["tokenizer"], parts["llm"], parts["flow"], *parts["vocoder"]]


# Stage targets (the DVC stages' commands and `rule all` request them). Snakemake rebuilds a
# missing intermediate file only when a job downstream of it has to run: a deleted
# checkpoint directory under a present, newer system.json was "Nothing to be done", with
# system.json pointing at a file that no longer exists (issue 21, item 3). A rule without
# outputs always runs when targeted, and Snakemake rebuilds whatever of its inputs is
# missing and everything downstream of that; so each stage target lists every file the
# stage writes and later stages read.
def stage_files(stage):
    if stage == "cascade":
        return [*system_files("cascade"), *expand("data/tokens/cascade/{split}.pt", split=SPLITS),
                "results/metrics/tokens_cascade.json"]
    if stage == "e2e":
        files = [*expand("data/tokens/e2e_tok/{split}.pt", split=SPLITS), "results/metrics/tokens_e2e_tok.json"]
        for system in ("e2e_tok", "e2e_fm", "e2e_full"):
            files += system_files(system)
        return list(dict.fromkeys(files))
    raise ValueError(stage)
