"""Resource plan of a configuration: parameters, training FLOPs, memory per device and
device-hours, per component and per pipeline stage (`e2etts plan`; docs/scale.md).

Parameters are counted from the real model classes (joint.e1.build_models) built on the
meta device: no memory, no compute, and a change to a model shows up here at once. FLOPs
and activations are analytic, per parameter tensor and per transformer stack, at the rate
(positions per utterance) at which each submodule runs; `RATES` names that rate for every
parameter, and a parameter it does not cover is an error, not a silent zero.

Every assumption is a field of `Assumptions` and is printed with the table.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .errors import ConfigError
from .nn import Transformer

COMPONENTS = ("tokenizer", "llm", "flow", "reward")

# Published dense bf16 peaks (no sparsity) and memory of the cards the planner knows.
CARDS = {
    "h100-sxm": {"name": "H100 SXM", "bf16_tflops": 989.0, "memory_gb": 80.0},
    "h200": {"name": "H200 SXM", "bf16_tflops": 989.0, "memory_gb": 141.0},
    "a100-sxm": {"name": "A100 SXM", "bf16_tflops": 312.0, "memory_gb": 80.0},
}

# LibriTTS training subsets (Zen et al. 2019, table 1): train-clean-100 + train-clean-360 +
# train-other-500, before this pipeline's duration filter.
LIBRITTS_TRAIN = {"hours": 555.15, "utterances": 354_780, "speakers": 2_311}


@dataclass
class Assumptions:
    """What the plan rests on besides the configuration; printed with every plan."""

    corpus_hours: float = LIBRITTS_TRAIN["hours"]
    corpus_utterances: int = LIBRITTS_TRAIN["utterances"]
    n_speakers: int = LIBRITTS_TRAIN["speakers"]  # the reward model's speaker head
    # Text symbols per second of speech (the LLM's and CTC heads' text length). The embedded
    # corpus measured 14.3 characters a second (params.yaml, synthesis_checks); LibriTTS's
    # read speech and the phone front end are assumed near it, not measured.
    text_per_second: float = 14.0
    card: str = "h200"
    mfu: float = 0.35  # model-FLOPs utilization on that card, assumed, not measured
    device: str = "cuda"  # cuda | cpu: decides the attention kernel and dropout masks
    # Memory is planned for the worst batch: every utterance padded to data.max_duration.
    # FLOPs use every utterance at the corpus mean (hours / utterances; padding ignored,
    # batches are length-bucketed; the T^2 attention term is then a slight underestimate).

    @property
    def mean_seconds(self) -> float:
        return 3600.0 * self.corpus_hours / self.corpus_utterances


@dataclass
class Lengths:
    """Positions per utterance of each rate (see `RATES`)."""

    mel: int  # log-mel frames, 100 per second
    tokens: int  # speech tokens, ceil(mel / 4), 25 per second
    text: int  # text symbols
    units: int  # LLM sequence: L + 1 + S (prefix) or L + 1 + S + (L - k) (interleaved)
    flow_tokens: int  # tokens the flow sees (a crop window or the whole utterance)

    @classmethod
    def of_seconds(cls, seconds: float, text_per_second: float, alignment: str,
                   flow_crop_tokens: int, worst_case: bool) -> Lengths:
        """An utterance of `seconds`. Interleaved units: the prompt split k is uniform over
        the symbols, L/2 on average; the worst case (memory) is k = 0, every symbol spoken."""
        mel = int(seconds * 100) + 1  # centred STFT, hop 10 ms
        tokens = -(-mel // 4)
        text = max(1, round(seconds * text_per_second))
        if alignment == "interleaved":
            units = 2 * text + 1 + tokens if worst_case else text + 1 + tokens + text // 2
        else:
            units = text + 1 + tokens
        flow = min(tokens, flow_crop_tokens) if flow_crop_tokens else tokens
        return cls(mel, tokens, text, units, flow)

    def positions(self, rate: str) -> int:
        return {
            "mel": self.mel, "half_mel": -(-self.mel // 2), "token": self.tokens,
            "unit": self.units, "flow_token": self.flow_tokens, "flow_mel": 4 * self.flow_tokens,
            "utt": 1, "none": 0,
        }[rate]


# The rate each parameter runs at, by the longest matching name prefix. "none": no matmul
# (embedding lookups, added vectors, buffers-only modules).
RATES = {
    "tokenizer": {"subsample.0": "half_mel", "subsample.2": "token", "encoder": "token",
                  "pre_q": "token", "post_q": "token", "decoder": "token", "ctc_head": "token"},
    "llm": {"text_emb": "none", "sep": "none", "speech_in": "unit", "symbol_in": "unit",
            "transformer": "unit", "head": "unit"},
    "flow": {"token_in": "flow_token", "token_encoder": "flow_token", "frame_encoder": "flow_mel",
             "prior_proj": "flow_mel", "speaker_proj": "utt", "in_proj": "flow_mel", "time_emb": "utt",
             "estimator_conv": "flow_mel", "estimator": "flow_mel", "out_proj": "flow_mel"},
    "reward": {"inp": "token", "encoder": "token", "ctc_head": "token", "speaker_head": "utt"},
}
# Modules without parameters that still save activations (GELU inputs), by the same rule.
MODULE_RATES = {"tokenizer": {"subsample.1": "half_mel", "subsample.3": "token"}}


# adaLN modulation (TransformerBlock.ada) reads the conditioning vector: once per utterance.
PER_UTTERANCE = (".ada.",)


def rate_of(component: str, name: str, table: dict | None = None) -> str:
    if any(part in f".{name}." for part in PER_UTTERANCE):
        return "utt"
    table = {**RATES[component], **MODULE_RATES.get(component, {})} if table is None else table
    best = max((p for p in table if name == p or name.startswith(p + ".")), key=len, default=None)
    if best is None:
        raise ConfigError(f"plan: no rate for {component}.{name} (add it to plan.RATES)")
    return table[best]


def build_meta_models(params: dict, n_speakers: int, text_frontend: str) -> dict[str, nn.Module]:
    """The four components as the pipeline builds them (joint.e1.build_models), on the meta
    device: shapes without storage."""
    from .joint.e1 import build_models

    with torch.device("meta"):
        stats = (torch.zeros(80), torch.ones(80))
        tokenizer, flow, llm, reward = build_models(params, n_speakers, stats, text_frontend)
    return {"tokenizer": tokenizer, "llm": llm, "flow": flow, "reward": reward}


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def matmul_params(component: str, model: nn.Module) -> dict[str, int]:
    """Parameters by rate; embeddings and added vectors ("none") do no multiply-adds."""
    out: dict[str, int] = {}
    for name, p in model.named_parameters():
        rate = rate_of(component, name, RATES[component])
        out[rate] = out.get(rate, 0) + p.numel()
    return out


def transformers(component: str, model: nn.Module) -> list[tuple[str, Transformer, str]]:
    return [(name, m, rate_of(component, name)) for name, m in model.named_modules()
            if isinstance(m, Transformer) and len(m.blocks)]


def _stack_dims(stack: Transformer) -> tuple[int, int, int, bool]:
    block = stack.blocks[0]
    d = block.norm1.normalized_shape[0]
    return len(stack.blocks), d, block.attn.n_heads, block.ada is not None


# ---- FLOPs --------------------------------------------------------------------------------

# Multiply-add FLOPs per parameter per position: forward 2; backward 2 for the input
# gradient and 2 for the weight gradient. Frozen modules that gradients pass through (E2's
# flow and reward model) skip the weight gradient: 4. Attention (scores and weighted sum,
# 4 T^2 d per layer forward, no causal saving) has no weights: 3x forward when gradients
# pass, 1x when not.
FLOPS_PER_PARAM = {"train": 6, "frozen": 4}
ATTENTION_PASSES = {"train": 3, "frozen": 3}


def flops_per_utterance(component: str, model: nn.Module, lengths: Lengths, role: str) -> dict:
    """-> dict(dense=6 N T-style FLOPs, attention=the T^2 term) for one utterance."""
    dense = sum(n * lengths.positions(rate) for rate, n in matmul_params(component, model).items())
    attention = 0
    for _, stack, rate in transformers(component, model):
        n_layers, d, _, _ = _stack_dims(stack)
        T = lengths.positions(rate)
        attention += n_layers * 4 * T * T * d
    return {"dense": FLOPS_PER_PARAM[role] * dense, "attention": ATTENTION_PASSES[role] * attention}


# ---- activations ---------------------------------------------------------------------------

def _attention_path(device: str, dropout: float, training: bool) -> str:
    """Which SDPA kernel runs with our boolean masks: CUDA's memory-efficient kernel takes
    masks and dropout (no T x T tensors kept); on CPU the fused kernel is used without
    dropout, the math path (attention probabilities kept) with it."""
    if device == "cpu" and dropout > 0 and training:
        return "math"
    return "fused"


def stack_activation_bytes(stack: Transformer, T: int, batch: int, compute_bytes: int,
                           device: str, training: bool) -> int:
    """Bytes a transformer stack keeps for backward, for `batch` sequences of T positions.

    Per layer and position, counted from what autograd saves in nn.TransformerBlock: the
    two LayerNorm inputs (the residual stream, fp32 under autocast: 2 d x 4 bytes); in the
    compute dtype the qkv and MLP inputs (2 d), the qkv output that v is a view of (3 d),
    rotated q and k (2 d), the attention output and its reshaped copy (2 d), the GELU input
    and output (8 d): 17 d. adaLN blocks keep both modulated norms (2 d, fp32) and the two
    gated branches (2 d). Dropout keeps one mask per dropped tensor (2 d): bool on CUDA,
    float on CPU. Per layer and sequence the fused kernel keeps the mask converted to the
    compute dtype (T^2); the CPU math path (attention dropout > 0) keeps three fp32
    H x T x T tensors instead.
    The final LayerNorm keeps its fp32 input (d). A frozen stack (training=False: eval
    mode, weights without gradients, gradients only passing through to its input) keeps no
    Linear inputs: of the 17 d, the qkv output, q, k, the attention output and the GELU
    input remain (10 d)."""
    n_layers, d, n_heads, ada = _stack_dims(stack)
    dropout = stack.blocks[0].drop.p if training else 0.0
    # the attention probabilities have their own rate (`attention_dropout`), which alone
    # decides the kernel
    attention_dropout = stack.blocks[0].attn.dropout if training else 0.0
    per_position = 2 * d * 4 + (17 if training else 10) * d * compute_bytes
    if ada:
        per_position += 2 * d * 4 + 2 * d * compute_bytes
    if dropout > 0:
        per_position += 2 * d * (1 if device == "cuda" else 4)
    if _attention_path(device, attention_dropout, training) == "math":
        per_sequence = 3 * n_heads * T * T * 4
    else:
        per_sequence = T * T * compute_bytes
    return batch * (n_layers * (T * per_position + per_sequence) + T * d * 4)


def activation_bytes(component: str, model: nn.Module, lengths: Lengths, batch: int,
                     compute_bytes: int, device: str, training: bool = True) -> int:
    """Bytes kept for backward by one component's forward over `batch` utterances.

    Transformer stacks: `stack_activation_bytes`. Every other module by what it saves:
    Linear and Conv1d their input (compute dtype; a strided conv's input runs at stride x
    its output rate; nothing when frozen), LayerNorm its input (fp32), GELU/SiLU their input (the width of the
    layer before them). Losses (`_loss_bytes`): the log-softmax output (fp32) of each
    cross-entropy / CTC head with the logits alive beside it, CTC's forward variables
    (S x (2 L + 1), fp32), and the flow's two squared-error differences (2 x n_mels per
    frame, fp32). Elementwise masking and the small per-utterance
    conditioning vectors are left out."""
    total, width = 0, 0
    inside: list[str] = []
    for name, m in model.named_modules():
        if any(name.startswith(p + ".") for p in inside):
            continue
        if isinstance(m, Transformer):
            inside.append(name)
            if len(m.blocks):
                T = lengths.positions(rate_of(component, name))
                total += stack_activation_bytes(m, T, batch, compute_bytes, device, training)
            continue
        # A frozen Linear or Conv1d (no weight gradient) keeps nothing.
        if isinstance(m, nn.Linear):
            if training:
                total += batch * lengths.positions(rate_of(component, name)) * m.in_features * compute_bytes
            width = m.out_features
        elif isinstance(m, nn.Conv1d):
            if training:
                positions = lengths.positions(rate_of(component, name)) * m.stride[0]
                total += batch * positions * m.in_channels * compute_bytes
            width = m.out_channels
        elif isinstance(m, nn.LayerNorm):
            total += batch * lengths.positions(rate_of(component, name)) * m.normalized_shape[0] * 4
        elif isinstance(m, (nn.GELU, nn.SiLU)):
            total += batch * lengths.positions(rate_of(component, name)) * width * compute_bytes
    total += batch * _loss_bytes(component, model, lengths, compute_bytes)
    return total


def _loss_bytes(component: str, model: nn.Module, lengths: Lengths, compute_bytes: int) -> int:
    """Per utterance. The log-softmax output is kept (fp32). At the forward's end, where its
    peak is, the logits (compute dtype) and their fp32 copy (bf16 only) are alive too, and
    the LLM's cross-entropy takes a contiguous fp32 copy of its transposed logits."""
    copy = 4 if compute_bytes != 4 else 0
    if component == "llm":
        return lengths.units * model.head.out_features * (4 + compute_bytes + copy + 4)
    if component in ("tokenizer", "reward"):
        V = model.ctc_head.out_features
        return lengths.tokens * (V * (4 + compute_bytes + copy) + (2 * lengths.text + 1) * 4)
    if component == "flow":
        return 2 * 4 * lengths.flow_tokens * model.cfg.n_mels * 2
    raise ConfigError(f"plan: no loss model for {component}")


# ---- stages ---------------------------------------------------------------------------------

@dataclass
class Stage:
    name: str
    rule: str  # the Snakemake rule (its resources.nproc in the profile is the process count)
    train_section: str  # params section whose `train` drives it
    trainable: tuple[str, ...]
    frozen: tuple[str, ...] = ()  # gradients pass through them to the trainable inputs
    flow_crop_key: tuple[str, ...] = ("flow", "crop_tokens")
    steps: int | None = None  # when the workflow computes max_steps (cascade_matched)


def matched_steps(params: dict) -> int:
    """The compute-matched control's updates, as the workflow computes them
    (workflow/rules/common.smk, matched_steps): E1 + stage 2 + E2 full - cascade LLM."""
    e2e = sum(params[s]["train"]["max_steps"] for s in ("joint_e1", "stage2_llm", "joint_e2_full"))
    return e2e - params["llm"]["train"]["max_steps"]


def pipeline_stages(params: dict) -> list[Stage]:
    """The training jobs of the whole pipeline for one training seed, cascade and end to end
    (README, "What runs"); with a `cascade_matched` section, its control LLM too."""
    e2_full_rm = params["joint_e2_full"]["objective"]["rm_weight"] > 0
    e2_fm_rm = params["joint_e2_fm"]["objective"]["rm_weight"] > 0
    matched = []
    if "cascade_matched" in params and matched_steps(params) > 0:
        matched = [Stage("cascade LLM, compute-matched control", "train_matched_llm",
                         "cascade_matched", ("llm",), steps=matched_steps(params))]
    return [
        Stage("cascade tokenizer", "train_tokenizer", "tokenizer", ("tokenizer",)),
        Stage("cascade LLM", "train_llm", "llm", ("llm",)),
        Stage("cascade flow", "train_flow", "flow", ("flow",)),
        Stage("E2E stage 1 (E1, joint)", "train_joint_e1", "joint_e1",
              ("tokenizer", "llm", "flow", "reward"),
              flow_crop_key=("joint_e1", "objective", "flow_crop_tokens")),
        Stage("E2E stage 2 LLM", "train_llm", "stage2_llm", ("llm",)),
        Stage("E2E stage 2 flow", "train_flow", "stage2_flow", ("flow",)),
        Stage("E2E reward model", "fit_reward", "reward", ("reward",)),
        Stage("E2E stage 3 (E2) fm", "train_joint_e2", "joint_e2_fm", ("llm",),
              ("flow", "reward") if e2_fm_rm else ("flow",)),
        Stage("E2E stage 3 (E2) full", "train_joint_e2", "joint_e2_full", ("llm",),
              ("flow", "reward") if e2_full_rm else ("flow",)),
        *matched,
    ]


def _get(params: dict, keys: tuple[str, ...]):
    node = params
    for k in keys:
        node = node[k]
    return node


def stage_estimate(stage: Stage, params: dict, models: dict[str, nn.Module], a: Assumptions,
                   nproc: int, lengths_mean: Lengths | None = None,
                   lengths_max: Lengths | None = None, batch_per_device: int | None = None) -> dict:
    """One stage: FLOPs per step (mean utterances), memory per device (worst batch), hours.

    Memory per device, in bytes, with P the stage's parameters (all in fp32: autocast keeps
    fp32 master weights) and P_t the trainable ones:
      weights 4 P; gradients 4 P_t; AdamW moments 8 P_t; bf16 weight copies autocast caches
      for the step (2 P, bf16 only); DDP's gradient buckets (4 P_t, more than one process:
      gradient_as_bucket_view is off); activations at the batch per device.
    `total` adds all of them: train.fit zeroes the gradients only after the forward, so at
    the forward's end the previous step's gradients and every activation are alive at once
    (the peak the dry run measures, `e2etts plan-check`)."""
    train = params[stage.train_section]["train"]
    global_batch = int(train["batch_size"])
    steps = stage.steps if stage.steps is not None else int(train["max_steps"])
    bf16 = train["precision"] == "bf16"
    compute_bytes = 2 if bf16 else 4
    per_device = batch_per_device or max(1, math.ceil(global_batch / nproc))
    alignment = params["llm"]["model"]["alignment"]
    crop = int(_get(params, stage.flow_crop_key))
    if lengths_mean is None:
        lengths_mean = Lengths.of_seconds(a.mean_seconds, a.text_per_second, alignment, crop, False)
    if lengths_max is None:
        lengths_max = Lengths.of_seconds(params["data"]["max_duration"], a.text_per_second,
                                         alignment, crop, True)

    dense = attention = acts = 0
    p_all = p_train = 0
    for role, names in (("train", stage.trainable), ("frozen", stage.frozen)):
        for name in names:
            model = models[name]
            f = flops_per_utterance(name, model, lengths_mean, role)
            dense += f["dense"] * global_batch
            attention += f["attention"] * global_batch
            acts += activation_bytes(name, model, lengths_max, per_device, compute_bytes, a.device,
                                     training=role == "train")
            n = count_params(model)
            p_all += n
            p_train += n if role == "train" else 0
    memory = {
        "weights": 4 * p_all,
        "grads": 4 * p_train,
        "adamw": 8 * p_train,
        "autocast_copies": 2 * p_all if bf16 else 0,
        "ddp_buckets": 4 * p_train if nproc > 1 else 0,
        "activations": acts,
    }
    memory["total"] = sum(memory.values())
    card = CARDS[a.card]
    flops_step = dense + attention
    device_hours = flops_step * steps / (a.mfu * card["bf16_tflops"] * 1e12) / 3600
    return {
        "stage": stage.name, "rule": stage.rule, "section": stage.train_section,
        "trainable": list(stage.trainable), "frozen": list(stage.frozen),
        "params": p_all, "trainable_params": p_train, "steps": steps, "global_batch": global_batch,
        "nproc": nproc, "batch_per_device": per_device, "precision": "bf16" if bf16 else "fp32",
        "speech_tokens_per_step": global_batch * lengths_mean.tokens,
        "mel_frames_per_step": global_batch * lengths_mean.mel,
        "flops_per_step": flops_step, "flops_dense": dense, "flops_attention": attention,
        "memory": memory, "fits": memory["total"] <= card["memory_gb"] * 1e9,
        "device_hours": device_hours, "wall_hours": device_hours / nproc,
        "epochs": steps * global_batch / a.corpus_utterances,
    }


def profile_nproc(profile_dir: str | None) -> dict[str, int]:
    """resources.nproc per rule from a Snakemake profile's set-resources (default 1)."""
    if profile_dir is None:
        return {}
    from pathlib import Path

    from .config import load_yaml

    path = Path(profile_dir) / "config.yaml"
    profile = load_yaml(path)
    out = {}
    for rule, res in (profile.get("set-resources") or {}).items():
        if isinstance(res, dict) and "nproc" in res:
            if not isinstance(res["nproc"], int) or res["nproc"] < 1:
                raise ConfigError(f"{path}: set-resources.{rule}.nproc must be a positive integer")
            out[rule] = res["nproc"]
    return out


def make_plan(params: dict, a: Assumptions, nproc_by_rule: dict[str, int]) -> dict:
    text_frontend = params["data"]["text_frontend"]
    models = build_meta_models(params, a.n_speakers, text_frontend)
    components = {}
    for name, model in models.items():
        by_rate = matmul_params(name, model)
        components[name] = {"params": count_params(model), "matmul_params": sum(
            n for r, n in by_rate.items() if r != "none"), "config": dict(model.cfg.__dict__)}
    stages = [stage_estimate(s, params, models, a, nproc_by_rule.get(s.rule, 1))
              for s in pipeline_stages(params)]
    # Every stage trains once per training seed (params `seeds`).
    n_seeds = len(params["seeds"])
    total = {
        "seeds": n_seeds,
        "flops": n_seeds * sum(s["flops_per_step"] * s["steps"] for s in stages),
        "device_hours": n_seeds * sum(s["device_hours"] for s in stages),
        "wall_hours": n_seeds * sum(s["wall_hours"] for s in stages),
        "peak_memory": max(s["memory"]["total"] for s in stages),
    }
    return {"assumptions": {**asdict(a), "mean_seconds": a.mean_seconds, "card_spec": CARDS[a.card]},
            "components": components, "stages": stages, "total": total}


# ---- text -----------------------------------------------------------------------------------

def _si(x: float, unit: str = "") -> str:
    for factor, prefix in ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= factor:
            return f"{x / factor:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}"


def format_plan(plan: dict) -> str:
    a = plan["assumptions"]
    card = a["card_spec"]
    lines = ["## Components (parameters counted from the model classes on the meta device)", "",
             "| component | parameters | d_model / layers / heads |", "| --- | --- | --- |"]
    for name, c in plan["components"].items():
        cfg = c["config"]
        if name == "tokenizer":
            layers = f"{cfg['encoder_layers']} enc + {cfg['decoder_layers']} dec"
        elif name == "flow":
            layers = (f"{cfg['n_layers']} estimator + {cfg['token_encoder_layers']} token enc "
                      f"(+ {cfg['frame_encoder_layers']} frame conv)")
        else:
            layers = cfg["n_layers"]
        lines.append(f"| {name} | {c['params'] / 1e6:,.1f} M | {cfg['d_model']} / {layers} / {cfg['n_heads']} |")
    lines += ["", f"## Stages ({card['name']}, bf16 dense peak {card['bf16_tflops']:.0f} TFLOP/s, "
              f"MFU {a['mfu']:.0%} assumed)", "",
              "| stage | rule | params (trainable) | steps | batch: utts (per device) | speech tokens / step "
              "| FLOPs / step (dense + attention) | memory / device: weights+grads+AdamW / act. / total "
              "| device-hours | wall hours (nproc) |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for s in plan["stages"]:
        m = s["memory"]
        static = m["weights"] + m["grads"] + m["adamw"] + m["autocast_copies"] + m["ddp_buckets"]
        fits = "" if s["fits"] else f" **> {card['memory_gb']:.0f} GB**"
        lines.append(
            f"| {s['stage']} | {s['rule']} | {s['params'] / 1e6:,.0f} M ({s['trainable_params'] / 1e6:,.0f} M) "
            f"| {s['steps']:,} | {s['global_batch']} ({s['batch_per_device']}) | {s['speech_tokens_per_step']:,} "
            f"| {_si(s['flops_per_step'], 'FLOP')} ({_si(s['flops_dense'])} + {_si(s['flops_attention'])}) "
            f"| {static / 1e9:.1f} / {m['activations'] / 1e9:.1f} / {m['total'] / 1e9:.1f} GB{fits} "
            f"| {s['device_hours']:,.0f} | {s['wall_hours']:,.1f} ({s['nproc']}) |")
    t = plan["total"]
    seeds = f" x {t['seeds']} training seeds" if t["seeds"] > 1 else " (one training seed)"
    lines += ["", f"**Whole pipeline**{seeds}: {_si(t['flops'], 'FLOP')}, {t['device_hours']:,.0f} "
              f"device-hours, {t['wall_hours']:,.0f} wall hours run one stage after another, peak "
              f"{t['peak_memory'] / 1e9:.1f} GB per device.", "", "## Assumptions", ""]
    lines += [f"- {line}" for line in assumption_lines(a)]
    return "\n".join(lines)


def assumption_lines(a: dict) -> list[str]:
    card = a["card_spec"]
    return [
        f"corpus: {a['corpus_hours']:,} h in {a['corpus_utterances']:,} utterances "
        f"(mean {a['mean_seconds']:.2f} s), {a['n_speakers']:,} speakers (LibriTTS train subsets "
        "unless --corpus-hours/--corpus-utterances say otherwise); the duration filter is ignored",
        f"text: {a['text_per_second']} symbols per second of speech",
        "FLOPs per step: every utterance at the mean length; dense = 6 x (parameters x the positions "
        "each runs at) for trained modules, 4 x for frozen modules that gradients pass through; "
        "embeddings do no FLOPs; attention = 3 x 4 T^2 d per layer (no causal saving)",
        "memory per device: the worst batch (every utterance padded to data.max_duration, the "
        "LLM prompt split at 0); fp32 master weights (4 B/param), gradients 4, AdamW 8, bf16 "
        "autocast copies 2, DDP buckets 4 (nproc > 1); activations from what autograd saves "
        "(plan.stack_activation_bytes, plan.activation_bytes); the total adds every term: at the "
        "forward's end the previous step's gradients are still alive (train.fit zeroes them "
        "after the forward)",
        f"attention kernel: {'memory-efficient SDPA (no T x T per head)' if a['device'] == 'cuda' else 'CPU SDPA'}",
        f"device-hours: FLOPs / ({a['mfu']:.0%} MFU x {card['bf16_tflops']:.0f} TFLOP/s, the "
        f"{card['name']}'s published dense bf16 peak); wall hours = device-hours / nproc (nproc "
        "from the profile's set-resources; linear scaling assumed)",
        "evaluation, synthesis, feature extraction and held-out evaluations during training are "
        "not counted; the vocoder is Griffin-Lim (no training)",
    ]
