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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from ..batching import iter_batches, pad
from ..config import build
from ..data.features import FeatureSet
from ..errors import UserError
from ..flow.model import FlowMatchingConfig, FlowMatchingDecoder
from ..llm.align import align_log_probs
from ..llm.interleave import interleave_padded
from ..llm.model import TextToTokenLM, TextToTokenLMConfig
from ..metrics import char_error_rate, codebook_stats, speaker_index
from ..nn import ctc_greedy_decode, ctc_loss
from ..reward.model import RewardModel, RewardModelConfig
from ..text import VOCAB_SIZE
from ..tokenizer.model import SpeechTokenizer, SpeechTokenizerConfig
from ..train import TrainTask


@dataclass
class JointE1Config:
    ntp_weight: float = 0.1  # paper: LLM / FM / RM = 0.1 / 1.0 / 1.0
    fm_weight: float = 1.0
    rm_weight: float = 1.0
    rm_text_weight: float = 1.0
    rm_speaker_weight: float = 0.1
    ntp_warmup_steps: int = 200
    tokenizer_ctc_weight: float = 0.0
    # The FM loss on random windows of this many tokens (0: whole utterances), as the cascade
    # flow trains (flow.crop_tokens). Whole utterances made E1 the pipeline's peak memory
    # (6.16 GB, session 3) and its slowest step; the windows still pass FM gradients into
    # the tokenizer, through the vectors inside them.
    flow_crop_tokens: int = 0
    min_code_usage: float = 0.05  # held-out code usage below this = collapse: stop
    init_tokenizer: bool = True  # start from the cascade tokenizer (saves CPU time)


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

    def losses(self, batch: dict, generator: torch.Generator | None = None) -> dict:
        vectors, indices, token_lens = self.tokenizer.encode(batch["mel"], batch["mel_lens"])
        mel_w, mel_w_lens, vec_w, tok_w_lens, ref_stats = self._flow_windows(
            batch["mel"], batch["mel_lens"], vectors, token_lens, generator)
        fm = self.flow.loss(mel_w, mel_w_lens, vec_w, tok_w_lens, generator, ref_stats=ref_stats)
        tok_logits = self.tokenizer.recognize(vectors, token_lens)
        if self.llm.cfg.alignment == "interleaved":
            # Symbols are placed by the tokenizer's own CTC head as it is now (no gradient
            # through the alignment); held-out items split at fixed word starts.
            starts, _ = align_log_probs(tok_logits.log_softmax(-1), token_lens, batch["text"], batch["text_lens"])
            units = interleave_padded(batch["text"], batch["text_lens"], indices, token_lens, starts,
                                      self.llm.eos_id, keys=None if self.training else batch["utt_ids"])
            ntp, acc = self.llm.loss_units(units, speech_vectors=vectors)
        else:
            ntp, acc = self.llm.loss(batch["text"], batch["text_lens"], vectors, token_lens, indices)
        tok_ctc = ctc_loss(tok_logits, token_lens, batch["text"], batch["text_lens"])
        rm_out = self.reward(vectors, token_lens)
        rm, rm_parts = self.reward.loss(
            rm_out, token_lens, batch["text"], batch["text_lens"], batch["speaker"],
            self.cfg.rm_text_weight, self.cfg.rm_speaker_weight,
        )
        return {"fm": fm, "ntp": ntp, "rm": rm, "tok_ctc": tok_ctc, "tok_logits": tok_logits,
                "acc": acc, "indices": indices,
                "token_lens": token_lens, "rm_out": rm_out, **rm_parts}

    def weighted(self, parts: dict, ntp_ramp: float = 1.0):
        """L1 from its terms ("fm", "ntp", "rm", "tok_ctc": tensors or floats)."""
        c = self.cfg
        return (
            c.fm_weight * parts["fm"]
            + ntp_ramp * c.ntp_weight * parts["ntp"]
            + c.rm_weight * parts["rm"]
            + c.tokenizer_ctc_weight * parts["tok_ctc"]
        )

    def forward(self, batch: dict):
        parts = self.losses(batch)
        ramp = min(1.0, float(self.step + 1) / max(1, self.cfg.ntp_warmup_steps))
        if self.training:
            self.step += 1
        total = self.weighted(parts, ramp)
        log = {k: float(parts[k].detach()) for k in ("fm", "ntp", "rm", "tok_ctc", "acc", "ctc", "speaker_acc")}
        return total, {**log, "ntp_ramp": ramp}


def evaluate_joint(model: JointE1, dev: FeatureSet, speakers: dict, batch_size: int = 16) -> dict:
    g = torch.Generator().manual_seed(0)
    sums = {"fm": 0.0, "ntp": 0.0, "rm": 0.0, "tok_ctc": 0.0}
    n, refs, hyps, tok_hyps, codes = 0, [], [], [], []
    for batch in iter_batches(dev, batch_size, lambda items: collate_joint(items, speakers)):
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
    metrics["dev_loss"] = model.weighted({k: metrics[f"dev_{k}"] for k in sums})
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


def build_task(params: dict, features_dir: Path, init_tokenizer: str | None) -> TrainTask:
    e1 = params["joint_e1"]
    cfg = build(JointE1Config, e1["objective"], "joint_e1.objective")
    train = FeatureSet(features_dir / "train.pt")
    dev = FeatureSet(features_dir / "dev.pt")
    speakers = speaker_index(train.speakers)
    tokenizer, flow, llm, reward = build_models(params, len(speakers), train.mel_stats(), train.text_frontend)
    if cfg.init_tokenizer and init_tokenizer:
        from ..checkpoint import load_model_file

        tokenizer.load_state_dict(load_model_file(init_tokenizer, "tokenizer")["model"])
    model = JointE1(tokenizer, flow, llm, reward, cfg)

    def export(m: JointE1) -> dict:
        return {
            "model": m.state_dict(),
            "config": asdict(cfg),
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
    )
