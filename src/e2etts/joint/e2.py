"""E2 (paper stage 3): the LLM trained through the frozen flow decoder and reward model.

The LLM runs teacher-forced over a training utterance. At each position a straight-through
Gumbel-softmax sample y (one-hot forward, soft gradient backward) is embedded with the FSQ
codebook and the sequence goes to the frozen FM (reconstruct the utterance's mel) and the
frozen RM (recognize its text and speaker):

    L2 = L_NTP + alpha * L_FM(mel | y) + beta * L_R(text, speaker | y)

so the LLM learns from what its own samples do downstream (no train/inference mismatch).
The temperature anneals from tau_start to tau_end; alpha = beta = 0 is plain NTP.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..batching import device_of, iter_batches, pad
from ..checkpoint import load_model_file
from ..config import build
from ..flow.model import FlowMatchingDecoder
from ..llm.formats import SequenceFormat
from ..llm.model import TextToTokenLM
from ..reward.model import RewardModel
from ..tokens import TokenizedSet
from ..train import TrainTask


@dataclass
class JointE2Config:
    fm_weight: float = 1.0  # alpha
    rm_weight: float = 1.0  # beta (0 for the FM-only ablation e2e_fm)
    rm_text_weight: float = 1.0  # paper stage 3: ASR 1.0, speaker 0.1
    rm_speaker_weight: float = 0.1
    tau_start: float = 1.0
    tau_end: float = 0.3
    tau_anneal_steps: int = 1000


class _StraightThrough(torch.autograd.Function):
    """Forward: the hard one-hot, exactly. Backward: the gradient goes to the soft sample.

    (hard + soft - soft.detach() is off by float rounding, so not exactly one-hot.)"""

    @staticmethod
    def forward(ctx, hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
        return hard.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, grad


def gumbel_straight_through(logits: torch.Tensor, tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """logits (..., K) -> one-hot (..., K) forward, gradient of softmax((logits + g) / tau)."""
    u = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=torch.float32)
    neg_log_u = (-torch.log(u.clamp_min(1e-10))).clamp_min(1e-10)
    gumbel = -torch.log(neg_log_u)
    soft = F.softmax((logits.float() + gumbel) / tau, dim=-1)
    hard = F.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft.dtype)
    return _StraightThrough.apply(hard, soft)


class _Frozen(nn.Module):
    """Holds frozen modules in eval mode (no dropout) whatever the trainer does."""

    def __init__(self, **modules: nn.Module):
        super().__init__()
        for name, module in modules.items():
            module.requires_grad_(False)
            self.add_module(name, module)
        self.train(False)

    def train(self, mode: bool = True):
        return super().train(False)


def collate_e2(items: list[dict], speakers: dict[str, int], fmt: SequenceFormat,
               held_out: bool = False) -> dict:
    """-> mel, text, tokens, speaker as padded tensors, and "llm": the LLM format's batch of
    the same items (AlignedSet items for the interleaved format)."""
    mel, mel_lens = pad([it["mel"] for it in items])
    text, text_lens = pad([it["text_ids"] for it in items])
    tokens, token_lens = pad([it["tokens"] for it in items])
    spk = torch.tensor([speakers.get(it["speaker"], -1) for it in items])
    batch = {"mel": mel, "mel_lens": mel_lens, "text": text, "text_lens": text_lens,
             "tokens": tokens, "token_lens": token_lens, "speaker": spk}
    batch["llm"] = fmt.collate(items, held_out=held_out)
    return batch


class JointE2(nn.Module):
    def __init__(self, llm: TextToTokenLM, flow: FlowMatchingDecoder, reward: RewardModel, cfg: JointE2Config):
        super().__init__()
        self.llm = llm
        self.frozen = _Frozen(flow=flow, reward=reward)
        self.cfg = cfg
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def tau(self) -> float:
        c = self.cfg
        frac = min(1.0, float(self.step) / max(1, c.tau_anneal_steps))
        return c.tau_start * (c.tau_end / c.tau_start) ** frac

    def losses(self, batch: dict, generator: torch.Generator | None = None) -> dict:
        fsq, fmt = self.llm.fsq, self.llm.format
        tokens, lens = batch["tokens"], batch["token_lens"]
        seq_logits = fmt.logits(self.llm, batch["llm"])
        ntp, acc = fmt.ce(self.llm, seq_logits, batch["llm"])
        logits = fmt.token_logits(seq_logits, batch["llm"])  # (B, S, K+1): the logits each token's sample comes from
        parts = {"ntp": ntp, "acc": acc}
        if self.cfg.fm_weight > 0 or self.cfg.rm_weight > 0:
            S = tokens.shape[1]
            y = gumbel_straight_through(logits[:, :S, : fsq.codebook_size], self.tau(), generator)
            vectors = fsq.probs_to_vectors(y)
            if self.cfg.fm_weight > 0:
                parts["fm"] = self.frozen.flow.loss(batch["mel"], batch["mel_lens"], vectors, lens, generator)
            if self.cfg.rm_weight > 0:
                out = self.frozen.reward(vectors, lens)
                rm, rm_parts = self.frozen.reward.loss(
                    out, lens, batch["text"], batch["text_lens"], batch["speaker"],
                    self.cfg.rm_text_weight, self.cfg.rm_speaker_weight,
                )
                parts.update(rm=rm, rm_ctc=rm_parts["ctc"], rm_speaker_acc=rm_parts["speaker_acc"])
        return parts

    def total(self, parts: dict) -> torch.Tensor:
        total = parts["ntp"]
        if "fm" in parts:
            total = total + self.cfg.fm_weight * parts["fm"]
        if "rm" in parts:
            total = total + self.cfg.rm_weight * parts["rm"]
        return total

    def forward(self, batch: dict):
        parts = self.losses(batch)
        tau = self.tau()
        if self.training:
            self.step += 1
        return self.total(parts), {**{k: float(v.detach()) for k, v in parts.items()}, "tau": tau}


def evaluate_e2(model: JointE2, dev: TokenizedSet, speakers: dict, batch_size: int = 16) -> dict:
    device = device_of(model)
    g = torch.Generator(device).manual_seed(0)  # its draws are made on the model's device
    sums: dict[str, float] = {}
    n = 0
    fmt = model.llm.format
    for batch in iter_batches(dev, batch_size, lambda items: collate_e2(items, speakers, fmt, held_out=True),
                              device):
        parts = model.losses(batch, generator=g)
        parts["total"] = model.total(parts)
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + float(v) * len(batch["mel"])
        n += len(batch["mel"])
    metrics = {f"dev_{k}": v / n for k, v in sums.items()}
    # Model selection on the full held-out objective: NTP alone would ignore what E2 adds.
    metrics["dev_loss"] = metrics.pop("dev_total")
    return metrics


def build_task(params: dict, section_name: str, features_dir: Path, tokens_dir: Path,
               llm_init: Path, flow_path: Path, reward_path: Path, tokenizer: Path | None = None) -> TrainTask:
    """tokenizer: the tokens' tokenizer, aligning text to tokens for an interleaved LLM."""
    from ..flow.model import load_flow
    from ..llm.model import load_llm
    from ..reward.model import load_reward

    cfg = build(JointE2Config, params[section_name]["objective"], f"{section_name}.objective")
    train = TokenizedSet(features_dir / "train.pt", tokens_dir / "train.pt")
    dev = TokenizedSet(features_dir / "dev.pt", tokens_dir / "dev.pt")
    llm = load_llm(llm_init).train()
    lengths = train.token_lengths()
    fmt = llm.format
    train, dev, _ = fmt.prepare(
        train, dev, tokenizer, f"{llm_init}: an interleaved LLM; E2 needs the tokens' tokenizer (train joint_e2 --tokenizer)"
    )
    flow = load_flow(flow_path)
    reward, speakers = load_reward(reward_path)
    model = JointE2(llm, flow, reward, cfg)
    llm_cfg = load_model_file(llm_init, "llm")["config"]
    return TrainTask(
        kind="llm",
        model=model,
        dataset=train,
        lengths=lengths,
        collate=lambda items: collate_e2(items, speakers, fmt),
        loss=lambda m, b: m(b),
        evaluate=lambda m: evaluate_e2(m, dev, speakers),
        export=lambda m: {"model": m.llm.state_dict(), "config": llm_cfg, "e2": asdict(cfg)},
    )
