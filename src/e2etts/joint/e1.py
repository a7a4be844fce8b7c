"""E1 (paper stage 1): tokenizer, flow, LLM and reward model trained together.

L1 = w_ntp * L_NTP(q | text) + w_fm * L_FM(mel | q) + w_rm * L_R(text, speaker | q)
     + w_ctc * L_CTC(text | tokenizer's own recognition head on q)

q are the tokenizer's FSQ vectors with straight-through gradients, so all three losses
shape the token space: recognizability (RM), reconstructability (FM) and predictability
(LLM, which reads q through its input MLP). The NTP weight ramps up over
`ntp_warmup_steps`: early LLM gradients are noise that would pull codes together.

The last term (``tokenizer_ctc_weight``, 0 = the paper's three losses) keeps the supervised
tokenizer's own CTC objective. On CPU the reward model, flow and LLM start from scratch in a
400-step E1 while the tokenizer starts from the cascade's: their early gradients are noise,
and in session 3 the E1 tokens lost content (reward-model CER 0.41, E1 token resynthesis
WER 143 % vs the cascade tokenizer's 57 %). The CTC head anchors the tokens to the text.

Issue 16's options for gradients that know something, all off by default (today's E1):
- warm starts: build_task(init_flow=, init_llm=, init_reward=) load trained components
  (`e2etts train joint_e1 --init-flow/--init-llm/--init-reward`);
- per-module learning rates: the params section `joint_e1.param_groups` (train.py's
  TrainTask.param_groups: each module its own peak lr and warm-up, and a hold at lr 0 before
  it, e.g. a tokenizer that waits while the randomly initialized heads learn);
- a target-side NTP gradient: `ntp_target: soft | straight_through` (see
  ntp_target_cross_entropy);
- the tokenizer's CTC anchor faded out after the heads have learned
  (`tokenizer_ctc_fade_start`, `tokenizer_ctc_fade_steps`; see JointE1.ctc_scale).

Every ``token_grad_every`` training steps (and at step 1) the train log gets, for each term,
the norm of the gradient its weighted loss sends into the token vectors (``gn_tok_fm``,
``gn_tok_ntp``, ``gn_tok_rm``, ``gn_tok_ctc``): which loss moves the codes. See
JointE1.token_grad_norms.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from ..batching import device_of, iter_batches, pad
from ..config import build
from ..data.features import FeatureSet
from ..errors import ConfigError, UserError
from ..flow.model import FlowMatchingConfig, FlowMatchingDecoder
from ..llm.align import align_log_probs
from ..llm.interleave import IGNORE
from ..llm.model import TextToTokenLM, TextToTokenLMConfig
from ..metrics import char_error_rate, codebook_stats, speaker_index
from ..nn import ctc_greedy_decode, ctc_loss, length_mask
from ..reward.model import RewardModel, RewardModelConfig
from ..text import VOCAB_SIZE
from ..tokenizer.model import SpeechTokenizer, SpeechTokenizerConfig
from ..train import TrainTask

NTP_TARGETS = ("hard", "soft", "straight_through")
MODULES = ("tokenizer", "flow", "llm", "reward")  # JointE1's submodules (param groups, warm starts)


@dataclass
class JointE1Config:
    ntp_weight: float = 0.1  # paper: LLM / FM / RM = 0.1 / 1.0 / 1.0
    fm_weight: float = 1.0
    rm_weight: float = 1.0
    rm_text_weight: float = 1.0
    rm_speaker_weight: float = 0.1
    ntp_warmup_steps: int = 200
    tokenizer_ctc_weight: float = 0.0
    # The anchor faded out (0 steps: kept at tokenizer_ctc_weight throughout): full weight up
    # to training step `tokenizer_ctc_fade_start`, then linearly to 0 over
    # `tokenizer_ctc_fade_steps`. The heads learn beside the anchor, then the paper's three
    # losses shape the codes alone. See ctc_scale.
    tokenizer_ctc_fade_start: int = 0
    tokenizer_ctc_fade_steps: int = 0
    # The FM loss on random windows of this many tokens (0: whole utterances), as the cascade
    # flow trains (flow.crop_tokens). Whole utterances made E1 the pipeline's peak memory
    # (6.16 GB, session 3) and its slowest step; the windows still pass FM gradients into
    # the tokenizer, through the vectors inside them.
    flow_crop_tokens: int = 0
    min_code_usage: float = 0.05  # held-out code usage below this = collapse: stop
    init_tokenizer: bool = True  # start from the cascade tokenizer (saves CPU time)
    # NTP's speech-token targets: hard code indices (no gradient into the tokenizer through
    # the targets), or the tokenizer's soft code distribution of `ntp_target_width` FSQ grid
    # steps, as the target (soft) or behind a one-hot forward (straight_through). See
    # ntp_target_cross_entropy.
    ntp_target: str = "hard"
    ntp_target_width: float = 0.5
    # Log ||d(weighted term)/d token vectors|| per loss at training step 1 and every this many
    # steps (0: never). A multiple of train.log_every, or the rows that carry it are not logged.
    token_grad_every: int = 50


# Changes no weight: kept out of the checkpoint's config and so out of the resume signature.
LOG_ONLY_FIELDS = ("token_grad_every",)
# Options newer than the session-7 checkpoints: written only when they differ from their
# defaults, so a default E1 checkpoint (and its resume signature) stays byte for byte the
# one E1 wrote before they existed.
LATER_OPTIONS = ("ntp_target", "ntp_target_width", "tokenizer_ctc_fade_start", "tokenizer_ctc_fade_steps")


def exported_config(cfg: JointE1Config) -> dict:
    """The objective as the checkpoint records it (see LOG_ONLY_FIELDS, LATER_OPTIONS)."""
    default = JointE1Config()
    return {k: v for k, v in asdict(cfg).items()
            if k not in LOG_ONLY_FIELDS and not (k in LATER_OPTIONS and v == getattr(default, k))}


def ntp_target_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, token_pos: torch.Tensor,
                             token_lens: torch.Tensor, code_targets: torch.Tensor) -> tuple:
    """Next-token cross-entropy whose speech-token targets are distributions over the codes.

    logits (B, N, K+1): the LLM's (K codes, then <eos>/<end>); targets (B, N): its hard
    targets (IGNORE where none); token_pos (B, T): the position whose logits predict speech
    token t; token_lens (B,); code_targets (B, T, K): the target distribution of token t.
    -> (mean over the positions with a target of -sum_c target(c) log q(c), accuracy of the
    argmax against the hard targets, no grad). The other targets (<eos>, <end>) stay hard;
    with one-hot code_targets this is F.cross_entropy(logits, targets).

    The gradient that reaches the tokenizer through the targets. Token t's bounded FSQ value
    b (one per channel i) gives P(k) = prod_i p_i(v_i(k)), p_i(v) ~ exp(-(b_i - v)^2 / 2w^2)
    over the channel's level values v (FSQ.code_log_probs). With d log p_i(v) / d b_i =
    (v - E_p_i[v]) / w^2,

        d(-sum_k P(k) log q(k)) / d b_i = -(1 / w^2) Cov_P(log q(k), v_i(k)),

    so a descent step moves b_i toward the levels of the codes the LLM finds more likely:
    predictability shapes the codes. Hard targets have no such term (the index is a
    constant); the tokenizer then hears NTP only through the LLM's inputs.
    `soft` trains on P itself: the LLM is pulled toward P, and since -sum P log q =
    H(P) + KL(P || q) the term also pulls b toward a level centre (lower H(P)).
    `straight_through` uses one_hot(index) + P - P.detach(): the forward value and the
    LLM's gradient are the hard target's, the tokenizer gets the gradient above.
    """
    C = logits.shape[-1]
    log_q = logits.float().log_softmax(-1)
    has_target = targets != IGNORE
    hard_nll = -log_q.gather(-1, targets.clamp_min(0)[..., None]).squeeze(-1)  # (B, N)
    token_valid = length_mask(token_lens, token_pos.shape[1])
    pos = token_pos.clamp_min(0)  # padding tokens point anywhere; token_valid drops them
    is_token = torch.zeros_like(targets).scatter_add(1, pos, token_valid.long()) > 0  # (B, N)
    log_q_tok = log_q.gather(1, pos[..., None].expand(-1, -1, C))[..., : C - 1]  # (B, T, K)
    soft_nll = -(code_targets.float() * log_q_tok).sum(-1)  # (B, T)
    total = (hard_nll * (has_target & ~is_token)).sum() + (soft_nll * token_valid).sum()
    with torch.no_grad():
        acc = (logits.argmax(-1) == targets)[has_target].float().mean()
    return total / has_target.sum().clamp_min(1), acc


def collate_joint(items: list[dict], speakers: dict[str, int]) -> dict:
    mel, mel_lens = pad([it["mel"] for it in items])
    text, text_lens = pad([it["text_ids"] for it in items])
    spk = torch.tensor([speakers.get(it["speaker"], -1) for it in items])
    return {"mel": mel, "mel_lens": mel_lens, "text": text, "text_lens": text_lens, "speaker": spk,
            "utt_ids": [it["utt_id"] for it in items]}


class JointE1(nn.Module):
    """All four components; forward(batch) -> (L1, parts)."""

    def __init__(self, tokenizer, flow, llm, reward, cfg: JointE1Config):
        super().__init__()
        self.tokenizer, self.flow, self.llm, self.reward = tokenizer, flow, llm, reward
        self.cfg = cfg
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def _flow_windows(self, mel, mel_lens, vectors, token_lens, generator) -> tuple:
        """Random aligned windows of flow_crop_tokens tokens (token i <-> frames 4i..4i+3):
        mel (B, T, n_mels), vectors (B, T', d) -> the same, cut to the window (differentiable
        in vectors), with their lengths and the whole utterances' reference statistics."""
        ref_stats = self.flow.reference_stats(mel, mel_lens)
        crop, up = self.cfg.flow_crop_tokens, self.flow.cfg.upsample
        if not crop or int(token_lens.max()) <= crop:
            return mel, mel_lens, vectors, token_lens, ref_stats
        room = (token_lens - crop).clamp(min=0)
        starts = (torch.rand(len(room), generator=generator, device=room.device) * (room + 1)).long()
        mel_w, vec_w = [], []
        for b, s in enumerate(starts.tolist()):
            vec_w.append(vectors[b, s : s + crop])
            mel_w.append(mel[b, up * s : up * (s + crop)])
        w_tok = torch.minimum(token_lens, torch.full_like(token_lens, crop))
        w_mel = torch.minimum(mel_lens - up * starts, up * w_tok)
        mel_w = torch.stack([nn.functional.pad(m, (0, 0, 0, up * crop - m.shape[0])) for m in mel_w])
        vec_w = torch.stack([nn.functional.pad(v, (0, 0, 0, crop - v.shape[0])) for v in vec_w])
        return mel_w, w_mel, vec_w, w_tok, ref_stats

    def ntp_code_targets(self, bounded: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """bounded (B, T, d) FSQ values before rounding, indices (B, T) -> NTP's target
        distribution of each token (B, T, K) under cfg.ntp_target (soft, straight_through)."""
        fsq = self.tokenizer.fsq
        probs = fsq.code_log_probs(bounded, self.cfg.ntp_target_width).exp()
        if self.cfg.ntp_target == "soft":
            return probs
        one_hot = nn.functional.one_hot(indices, fsq.codebook_size).to(probs.dtype)
        return one_hot + probs - probs.detach()

    def _ntp(self, batch, vectors, indices, token_lens, bounded, tok_logits) -> tuple:
        """-> (NTP loss, accuracy) of the LLM reading the straight-through vectors (B, T, d)."""
        fmt = self.llm.format
        starts = None
        if fmt.aligned:
            # Symbols are placed by the tokenizer's own CTC head as it is now (no gradient
            # through the alignment); held-out items split at fixed word starts.
            starts, _ = align_log_probs(tok_logits.log_softmax(-1), token_lens, batch["text"], batch["text_lens"])
        llm_batch = fmt.from_padded(batch["text"], batch["text_lens"], indices, token_lens, starts,
                                    keys=None if self.training else batch["utt_ids"])
        if self.cfg.ntp_target == "hard":
            return fmt.loss(self.llm, llm_batch, speech_vectors=vectors)
        logits = fmt.logits(self.llm, llm_batch, speech_vectors=vectors)
        targets, token_pos = fmt.targets(self.llm, llm_batch)
        return ntp_target_cross_entropy(logits, targets, token_pos, token_lens,
                                        self.ntp_code_targets(bounded, indices))

    def losses(self, batch: dict, generator: torch.Generator | None = None) -> dict:
        # tokenizer.encode, with the bounded FSQ values kept: the soft NTP targets are built
        # from them and the token gradient norms are measured at them (the same operations
        # as encode, so the same numbers).
        latent, token_lens = self.tokenizer.encode_latent(batch["mel"], batch["mel_lens"])
        bounded = self.tokenizer.fsq.bound(latent.float())
        vectors, indices = self.tokenizer.fsq.quantize(bounded)
        vectors = vectors.type_as(latent)
        mel_w, mel_w_lens, vec_w, tok_w_lens, ref_stats = self._flow_windows(
            batch["mel"], batch["mel_lens"], vectors, token_lens, generator)
        fm = self.flow.loss(mel_w, mel_w_lens, vec_w, tok_w_lens, generator, ref_stats=ref_stats)
        tok_logits = self.tokenizer.recognize(vectors, token_lens)
        ntp, acc = self._ntp(batch, vectors, indices, token_lens, bounded, tok_logits)
        tok_ctc = ctc_loss(tok_logits, token_lens, batch["text"], batch["text_lens"])
        rm_out = self.reward(vectors, token_lens)
        rm, rm_parts = self.reward.loss(
            rm_out, token_lens, batch["text"], batch["text_lens"], batch["speaker"],
            self.cfg.rm_text_weight, self.cfg.rm_speaker_weight,
        )
        return {"fm": fm, "ntp": ntp, "rm": rm, "tok_ctc": tok_ctc, "tok_logits": tok_logits,
                "acc": acc, "indices": indices, "bounded": bounded, "vectors": vectors,
                "token_lens": token_lens, "rm_out": rm_out, **rm_parts}

    def weighted(self, parts: dict, ntp_ramp: float = 1.0, ctc_scale: float = 1.0):
        """L1 from its terms ("fm", "ntp", "rm", "tok_ctc": tensors or floats); ntp_ramp and
        ctc_scale: the schedules' factors on the NTP and tokenizer-CTC weights (1: full)."""
        c = self.cfg
        return (
            c.fm_weight * parts["fm"]
            + ntp_ramp * c.ntp_weight * parts["ntp"]
            + c.rm_weight * parts["rm"]
            + ctc_scale * c.tokenizer_ctc_weight * parts["tok_ctc"]
        )

    def ctc_scale(self, n: int) -> float:
        """The factor on tokenizer_ctc_weight at training step n (counted from 1): 1 up to
        tokenizer_ctc_fade_start, then linearly down to 0 over tokenizer_ctc_fade_steps."""
        c = self.cfg
        if c.tokenizer_ctc_fade_steps <= 0:
            return 1.0
        return min(1.0, max(0.0, 1.0 - (n - c.tokenizer_ctc_fade_start) / c.tokenizer_ctc_fade_steps))

    # Log column -> the term of `weighted` it measures.
    TOKEN_GRAD_TERMS = {"gn_tok_fm": "fm", "gn_tok_ntp": "ntp", "gn_tok_rm": "rm", "gn_tok_ctc": "tok_ctc"}

    def token_grad_norms(self, parts: dict, ntp_ramp: float = 1.0, ctc_scale: float = 1.0) -> dict[str, float]:
        """{gn_tok_<term>: ||d(w * term) / d u||}: the gradient each weighted term of L1 sends
        into the token vectors, i.e. into the tokenizer.

        u = bounded / half_width (B, T, d) is the code vector before rounding: the
        straight-through vectors pass d/d vectors to u unchanged, and the soft NTP targets
        (built from `bounded`) add their own path, so the norm holds every way a loss moves
        the codes. Padding positions get no gradient. torch.autograd.grad on the
        intermediate, graph retained: no parameter's .grad is touched and nothing is re-run
        (no RNG drawn), so training is the same with and without it. Up to four partial
        backward passes (each stops at the tokenizer); a weight-0 term is 0.0 without one."""
        bounded = parts["bounded"]
        half_width = torch.tensor([lv // 2 for lv in self.tokenizer.fsq.levels], dtype=bounded.dtype,
                                  device=bounded.device)
        terms = set(self.TOKEN_GRAD_TERMS.values())
        out = {}
        for column, term in self.TOKEN_GRAD_TERMS.items():
            # The term's coefficient exactly as `weighted` applies it (schedules included).
            weight = float(self.weighted({k: float(k == term) for k in terms}, ntp_ramp, ctc_scale))
            grad = None
            if weight != 0 and bounded.requires_grad and parts[term].requires_grad:
                (grad,) = torch.autograd.grad(weight * parts[term], bounded, retain_graph=True,
                                              allow_unused=True)
            out[column] = 0.0 if grad is None else float((grad.detach().float() * half_width).norm())
        return out

    def forward(self, batch: dict):
        parts = self.losses(batch)
        ramp = min(1.0, float(self.step + 1) / max(1, self.cfg.ntp_warmup_steps))
        n = int(self.step) + 1  # this training step, counted from 1 (the loop's `step` after it)
        if self.training:
            self.step += 1
        ctc_scale = self.ctc_scale(n)
        total = self.weighted(parts, ramp, ctc_scale)
        log = {k: float(parts[k].detach()) for k in ("fm", "ntp", "rm", "tok_ctc", "acc", "ctc", "speaker_acc")}
        every = self.cfg.token_grad_every
        if self.training and torch.is_grad_enabled() and every and (n == 1 or n % every == 0):
            log.update(self.token_grad_norms(parts, ramp, ctc_scale))
        if self.cfg.tokenizer_ctc_fade_steps > 0:
            log["ctc_scale"] = ctc_scale  # a column only when faded: today's logs keep their layout
        return total, {**log, "ntp_ramp": ramp}


def evaluate_joint(model: JointE1, dev: FeatureSet, speakers: dict, batch_size: int = 16) -> dict:
    device = device_of(model)
    g = torch.Generator(device).manual_seed(0)  # its draws are made on the model's device
    sums = {"fm": 0.0, "ntp": 0.0, "rm": 0.0, "tok_ctc": 0.0}
    n, refs, hyps, tok_hyps, codes = 0, [], [], [], []
    for batch in iter_batches(dev, batch_size, lambda items: collate_joint(items, speakers), device):
        parts = model.losses(batch, generator=g)
        for k in sums:
            sums[k] += float(parts[k]) * len(batch["mel"])
        n += len(batch["mel"])
        hyps += model.reward.greedy_ctc_decode(parts["rm_out"], parts["token_lens"])
        tok_hyps += ctc_greedy_decode(parts["tok_logits"], parts["token_lens"])
        refs += [t[:m].tolist() for t, m in zip(batch["text"], batch["text_lens"], strict=True)]
        codes += [i[:m] for i, m in zip(parts["indices"], parts["token_lens"], strict=True)]
    c = model.cfg
    metrics = {f"dev_{k}": v / n for k, v in sums.items()}
    # The held-out loss (best.pt's criterion) is the objective as the schedules leave it: NTP at
    # full weight after its ramp, and the anchor at 0 once faded. Weighing a faded anchor fully
    # picked step 300 of a design whose anchor ends at step 350 (its anchor loss rises once off).
    metrics["dev_loss"] = model.weighted({k: metrics[f"dev_{k}"] for k in sums},
                                         ctc_scale=model.ctc_scale(math.inf))
    metrics["dev_rm_cer"] = char_error_rate(refs, hyps)
    # The tokenizer's own read-back (the cascade tokenizer's dev PER is the reference point).
    metrics["dev_tok_cer"] = char_error_rate(refs, tok_hyps)
    metrics.update(codebook_stats(torch.cat(codes), model.tokenizer.fsq.codebook_size))
    if metrics["code_usage"] < c.min_code_usage:
        raise UserError(
            f"joint E1: codebook collapsed (held-out code usage {metrics['code_usage']:.3f} < "
            f"joint_e1.min_code_usage={c.min_code_usage}); lower joint_e1.ntp_weight or raise "
            "joint_e1.ntp_warmup_steps"
        )
    return metrics


def build_models(params: dict, n_speakers: int, mel_stats, text_frontend: str = "chars") -> tuple:
    tok_cfg = build(SpeechTokenizerConfig, {"text_vocab_size": VOCAB_SIZE, **params["tokenizer"]["model"]}, "tokenizer.model")
    levels = tok_cfg.fsq_levels
    dim = len(levels)
    flow_cfg = build(FlowMatchingConfig, {"fsq_dim": dim, **params["flow"]["model"]}, "flow.model")
    llm_cfg = build(TextToTokenLMConfig, {"text_vocab_size": VOCAB_SIZE, "fsq_levels": levels,
                                           "text_frontend": text_frontend, **params["llm"]["model"]}, "llm.model")
    rm_cfg = build(RewardModelConfig, {"fsq_dim": dim, "text_vocab_size": VOCAB_SIZE, "n_speakers": n_speakers, **params["reward"]["model"]}, "reward.model")
    tokenizer, flow = SpeechTokenizer(tok_cfg), FlowMatchingDecoder(flow_cfg)
    llm, reward = TextToTokenLM(llm_cfg), RewardModel(rm_cfg)
    tokenizer.set_normalization(*mel_stats)
    flow.set_normalization(*mel_stats)
    return tokenizer, flow, llm, reward


def config_differences(saved: dict, built: dict) -> list[str]:
    """The keys of a checkpoint's model config whose values differ from a built model's
    (lists and tuples alike). Keys the checkpoint lacks are newer than it and were their
    defaults then, as the component loaders read them."""
    norm = lambda v: list(v) if isinstance(v, (list, tuple)) else v  # noqa: E731
    return sorted(k for k in saved if k in built and norm(saved[k]) != norm(built[k]))


def warm_start(module: nn.Module, path: str | Path, kind: str) -> dict:
    """Load a trained component's checkpoint (final.pt of `kind`) into E1's `module` of the
    same kind -> the checkpoint. Errors name the file: another kind, another model config
    (a text front end or alignment that the weights' shapes would not reveal), or weights
    that do not fit."""
    from ..checkpoint import load_model_file

    ckpt = load_model_file(path, expected_kind=kind)
    differ = config_differences(dict(ckpt.get("config") or {}), dict(module.cfg.__dict__))
    if differ:
        shown = ", ".join(f"{k}={ckpt['config'].get(k)!r} (E1: {module.cfg.__dict__.get(k)!r})" for k in differ)
        raise UserError(f"{path}: this {kind} checkpoint was trained with another {kind} config than "
                        f"E1's ({shown}); warm-start from a {kind} trained with the same params")
    try:
        module.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise UserError(f"{path}: the {kind} weights do not fit E1's {kind} ({'; '.join(lines[:2])[:400]})") from None
    return ckpt


def param_groups(e1: dict) -> dict[str, dict]:
    """params joint_e1.param_groups -> TrainTask.param_groups: absent, one schedule for all
    (today's E1); present, every module its own group, at train.lr / train.warmup_steps
    unless it names its own."""
    given = e1.get("param_groups")
    if not given:
        return {}
    unknown = sorted(set(given) - set(MODULES))
    if unknown:
        raise ConfigError(f"params.yaml: joint_e1.param_groups: unknown module {', '.join(unknown)} "
                          f"(modules: {', '.join(MODULES)})")
    return {name: dict(given.get(name) or {}) for name in MODULES}


def build_task(params: dict, features_dir: Path, init_tokenizer: str | None,
               init_flow: str | None = None, init_llm: str | None = None,
               init_reward: str | None = None) -> TrainTask:
    """init_*: checkpoints to warm-start the components from (None: the tokenizer stays as
    built, the other three start from random weights)."""
    e1 = params["joint_e1"]
    cfg = build(JointE1Config, e1["objective"], "joint_e1.objective")
    if cfg.ntp_target not in NTP_TARGETS:
        raise ConfigError(f"params.yaml: joint_e1.objective.ntp_target={cfg.ntp_target!r} is not one of "
                          f"{', '.join(NTP_TARGETS)}")
    log_every = e1["train"]["log_every"]
    if cfg.token_grad_every % log_every:
        raise ConfigError(
            f"params.yaml: joint_e1.objective.token_grad_every={cfg.token_grad_every} must be a "
            f"multiple of joint_e1.train.log_every={log_every} (0 disables), or the steps that "
            "measure the token gradient norms never reach the train log")
    groups = param_groups(e1)
    train = FeatureSet(features_dir / "train.pt")
    dev = FeatureSet(features_dir / "dev.pt")
    speakers = speaker_index(train.speakers)
    tokenizer, flow, llm, reward = build_models(params, len(speakers), train.mel_stats(), train.text_frontend)
    if cfg.init_tokenizer and init_tokenizer:
        from ..checkpoint import load_model_file

        tokenizer.load_state_dict(load_model_file(init_tokenizer, "tokenizer")["model"])
    if init_flow:
        warm_start(flow, init_flow, "flow")
    if init_llm:
        warm_start(llm, init_llm, "llm")
    if init_reward:
        ckpt = warm_start(reward, init_reward, "reward")
        if ckpt.get("speakers") != speakers:
            # The speaker head's rows are speakers by index: another index reads the wrong one.
            raise UserError(f"{init_reward}: the reward model's speaker index is not E1's (trained on "
                            "other training speakers); fit it on this corpus's training split")
    model = JointE1(tokenizer, flow, llm, reward, cfg)

    def export(m: JointE1) -> dict:
        return {
            "model": m.state_dict(),
            "config": exported_config(cfg),
            "components": {
                "tokenizer": {"model": m.tokenizer.state_dict(), "config": m.tokenizer.cfg.__dict__},
                "flow": {"model": m.flow.state_dict(), "config": m.flow.cfg.__dict__},
                "llm": {"model": m.llm.state_dict(), "config": m.llm.cfg.__dict__},
                "reward": {"model": m.reward.state_dict(), "config": m.reward.cfg.__dict__,
                           "speakers": speakers},
            },
        }

    return TrainTask(
        kind="joint_e1",
        model=model,
        dataset=train,
        lengths=train.lengths.tolist(),
        collate=lambda items: collate_joint(items, speakers),
        loss=lambda m, b: m(b),
        evaluate=lambda m: evaluate_joint(m, dev, speakers),
        export=export,
        param_groups=groups,
    )
