import json
import os
from pathlib import Path
from types import SimpleNamespace

SPLITS = ["train", "dev", "test"]
# Systems the report compares (docs/method.md), the compute-matched control among them, and
# the toplines that bound them (docs/evaluation.md).
SYSTEMS = ["cascade", "cascade_matched", "e2e_tok", "e2e_fm", "e2e_full"]
# Token resynthesis for each tokenizer (cascade CTC tokenizer; E1 joint tokenizer).
TOPLINES = ["gt", "gt_vocoded", "resynth_cascade", "resynth_e2e_tok"]
# Rows that do not depend on a training seed (the recordings and the vocoded recordings);
# every other row is trained, synthesized and scored once per training seed.
SEED_FREE = ["gt", "gt_vocoded"]
SEEDED = [n for n in TOPLINES + SYSTEMS if n not in SEED_FREE]
# Training seeds (params `seeds`): each one's outputs live under an `s<seed>` folder.
SEEDS = [int(s) for s in config["seeds"]]
# E1 designs compared on the dev list (params e1_designs; none by default): each is a
# "system" e1_<name> with its own E1 run, tokenizer, tokens and stage-2 flow, like e2e_tok.
E1_DESIGNS = [f"e1_{name}" for name in config["e1_designs"]["designs"]]
E1_SYSTEMS = ["e2e_tok", *E1_DESIGNS]
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
    """results/checkpoints/s<seed>/<system>/<component> -> results/train_logs/s<seed>/<system>/<component>."""
    ckpt_dir = os.path.dirname(output.model)
    return TRAIN_LOGS + ckpt_dir[len(CKPT):]


def seeded_cfg(wc, keys, **replaced):
    """A training job's params JSON: the named params sections (or `replaced` ones) and
    `seed`, the job's training seed (wildcard `seed`). For the default's first seed this is
    the JSON of before seeds existed, so its jobs did not re-run."""
    cfg = {**{k: config[k] for k in keys}, **replaced}
    return json.dumps({"seed": int(wc.seed), **cfg}, sort_keys=True)


def seeded_json(*keys):
    """seeded_cfg of the named sections, as a rule's `params:` function."""
    return lambda wc: seeded_cfg(wc, keys)


def stage2_init(component):
    """Input function: E1 weights to start from, for an E1 system (e2e_tok, an E1 design)."""

    def inner(wc):
        return [f"{CKPT}/s{wc.seed}/{wc.system}/init/{component}.pt"] if wc.system in E1_SYSTEMS else []

    return inner


def e1_design(wc):
    """The overrides of an E1 design ({} for the default E1, e2e_tok)."""
    if wc.e1 == "e2e_tok":
        return {}
    return config["e1_designs"]["designs"][wc.e1[len("e1_"):]]


def e1_cfg(wc):
    """train_joint_e1's params: the default E1's sections, with a design's overrides merged
    into joint_e1 (the same JSON as before designs existed for e2e_tok)."""
    joint = json.loads(json.dumps(config["joint_e1"]))
    design = e1_design(wc)
    for part in ("objective", "train", "param_groups"):
        if part in design:
            joint.setdefault(part, {}).update(design[part])
    return seeded_cfg(wc, ("tokenizer", "flow", "llm", "reward"), joint_e1=joint)


def e1_warm_start(wc):
    """Input function (unpack): the cascade components an E1 design starts from."""
    return {f"warm_{c}": f"{CKPT}/s{wc.seed}/cascade/{c}/final.pt" for c in e1_design(wc).get("warm_start", [])}


def e1_warm_args(wc, input):
    return " ".join(f"--init-{n[len('warm_'):]} {getattr(input, n)}" for n in ("warm_flow", "warm_llm") if hasattr(input, n))


def align_tokenizer(tokens_of):
    """Input function: the tokens' tokenizer, whose CTC head aligns text symbols to tokens,
    for an LLM in the interleaved format (llm.model.alignment). tokens_of: the system whose
    tokens the LLM reads (None: the job's `system` wildcard); E2 reads e2e_tok's, the
    control the cascade's."""

    def inner(wc):
        if config["llm"]["model"].get("alignment", "prefix") != "interleaved":
            return []
        return [f"{CKPT}/s{wc.seed}/{tokenizer_of(tokens_of or wc.system)}/tokenizer/final.pt"]

    return inner


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
        keys = (component, f"stage2_{component}") if wc.system in E1_SYSTEMS else (component,)
        return seeded_cfg(wc, keys)

    return inner


def curve_cfg(wc):
    """The learning-curve rule's params: the probe synthesizes and scores like the
    evaluation does (curves, synthesis, vocoder, the eval keys of curve_eval)."""
    return seeded_cfg(wc, ("curves", "synthesis", "vocoder"), eval=curve_eval())


def matched_steps():
    """The control's updates: what the E2E LLM gets beyond the cascade LLM's schedule
    (E1 + stage 2 + E2 full - cascade LLM). An E2E chain with no more updates than the
    cascade has no control to build, and says so."""
    e2e = sum(config[s]["train"]["max_steps"] for s in ("joint_e1", "stage2_llm", "joint_e2_full"))
    extra = e2e - config["llm"]["train"]["max_steps"]
    if extra <= 0:
        raise ValueError(
            f"cascade_matched: the E2E LLM gets {e2e} updates, the cascade LLM"
            f" {config['llm']['train']['max_steps']}: nothing to match (params.yaml)"
        )
    return extra


def matched_cfg(wc):
    """The control's params: the LLM's model section and the cascade_matched schedule, with
    max_steps from matched_steps()."""
    train = {**config["cascade_matched"]["train"], "max_steps": matched_steps()}
    return seeded_cfg(wc, ("llm",), cascade_matched={"train": train})


def snapshot_arg(wc):
    """The training command's snapshot flag: the cascade LLM and flow export their weights
    every curves.every_steps for the learning-curve rule. Only the schedule is a training
    input; what the probes read (curve_cfg) is not."""
    return f"--snapshot-every {config['curves']['every_steps']}" if curves_on(wc) else ""


def curve_files(seed):
    """One seed's learning curves (the cascade LLM and flow), none with curves off."""
    if not config["curves"]["enabled"]:
        return []
    return [f"results/train_logs/s{seed}/cascade/{c}/curve_log.tsv" for c in ("llm", "flow")]


# The tokenizers, named by the system whose checkpoint directory holds them: the cascade's
# CTC tokenizer and the joint E1 tokenizer (frozen for every E2E system).
TOKENIZERS = ["cascade", "e2e_tok"]


def tokenizer_of(name):
    """The tokenizer a system or resynthesis topline speaks with ("" for gt, gt_vocoded)."""
    name = name[len("resynth_"):] if name.startswith("resynth_") else name
    if name not in SYSTEMS:
        return ""
    return "cascade" if name in ("cascade", "cascade_matched") else "e2e_tok"


def system_components(wc):
    """Which checkpoints make up each system of a seed (docs/method.md, 'The systems
    compared'): the control is the cascade with its own LLM."""
    root = f"{CKPT}/s{wc.seed}"
    if wc.system in E1_DESIGNS:  # resynthesized only: the design's E1 LLM completes the set
        return {
            "tokenizer": f"{root}/{wc.system}/tokenizer/final.pt",
            "llm": f"{root}/{wc.system}/init/llm.pt",
            "flow": f"{root}/{wc.system}/flow/final.pt",
            "vocoder": vocoder_checkpoint(),
        }
    tok_system = tokenizer_of(wc.system)
    return {
        "tokenizer": f"{root}/{tok_system}/tokenizer/final.pt",
        "llm": f"{root}/{wc.system}/llm/final.pt",
        "flow": f"{root}/{tok_system}/flow/final.pt",
        "vocoder": vocoder_checkpoint(),
    }


def system_files(system, seed):
    """A system's system.json and every checkpoint it points at (system_components)."""
    parts = system_components(SimpleNamespace(system=system, seed=seed))
    return [f"{CKPT}/s{seed}/{system}/system.json", parts["tokenizer"], parts["llm"], parts["flow"], *parts["vocoder"]]


# Stage targets (the DVC stages' commands and `rule all` request them). Snakemake rebuilds a
# missing intermediate file only when a job downstream of it has to run: a deleted
# checkpoint directory under a present, newer system.json was "Nothing to be done", with
# system.json pointing at a file that no longer exists (issue 21, item 3). A rule without
# outputs always runs when targeted, and Snakemake rebuilds whatever of its inputs is
# missing and everything downstream of that; so each stage target lists every file the
# stage writes and later stages read. One seed's files, or every seed's (seed None).
def stage_files(stage, seed=None):
    if seed is None:
        return list(dict.fromkeys(f for s in SEEDS for f in stage_files(stage, s)))
    if stage == "cascade":
        files = [*expand(f"data/tokens/s{seed}/cascade/{{split}}.pt", split=SPLITS),
                 f"results/metrics/tokens/s{seed}/tokens_cascade.json"]
        for system in ("cascade", "cascade_matched"):
            files += system_files(system, seed)
        return list(dict.fromkeys(files + curve_files(seed)))
    if stage == "e2e":
        files = [*expand(f"data/tokens/s{seed}/e2e_tok/{{split}}.pt", split=SPLITS),
                 f"results/metrics/tokens/s{seed}/tokens_e2e_tok.json"]
        for system in ("e2e_tok", "e2e_fm", "e2e_full"):
            files += system_files(system, seed)
        return list(dict.fromkeys(files))
    raise ValueError(stage)


def seeded_metric_files(seed, ext="json"):
    """One training seed's scored rows (every seeded system and topline)."""
    return [f"results/metrics/systems/s{seed}/{n}.{ext}" for n in SEEDED]


def token_stat_files(seed):
    """One training seed's token statistics (H, I), one file per compared tokenizer."""
    return [f"results/metrics/tokens/s{seed}/tokens_{t}.json" for t in TOKENIZERS]


def metric_files(ext="json"):
    """Every scored row's metrics file: the seed-free toplines once, the rest per seed."""
    return [f"results/metrics/systems/{n}.{ext}" for n in SEED_FREE] + [
        f for s in SEEDS for f in seeded_metric_files(s, ext)
    ]


def sample_files():
    return [f"results/samples/{n}/synthesis.json" for n in SEED_FREE] + [
        f"results/samples/s{s}/{n}/synthesis.json" for s in SEEDS for n in SEEDED
    ]


wildcard_constraints:
    seed=r"\d+",
