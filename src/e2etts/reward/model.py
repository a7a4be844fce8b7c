"""Reward model: recognizes text (CTC) and speaker from speech-token vectors.

token vectors (B, T', d_fsq) -> Linear -> transformer encoder (RoPE) -> CTC head over the
text vocabulary (blank 0) and a speaker head on the masked mean over time.

It reads vectors, not indices: hard code vectors, straight-through vectors, or expectations
over the codebook (FSQ.probs_to_vectors), so its losses are differentiable in its input and
can train the LLM through Gumbel-softmax samples (E2E stage 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..nn import Transformer, ctc_greedy_decode, ctc_loss, length_mask
from ..text import VOCAB_SIZE


@dataclass
class RewardModelConfig:
    fsq_dim: int = 4
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    text_vocab_size: int = VOCAB_SIZE
    n_speakers: int = 32
    dropout: float = 0.1


class RewardModel(nn.Module):
    def __init__(self, cfg: RewardModelConfig | None = None):
        super().__init__()
        cfg = cfg or RewardModelConfig()
        self.cfg = cfg
        d = cfg.d_model
        self.inp = nn.Sequential(nn.Linear(cfg.fsq_dim, d), nn.GELU(), nn.Linear(d, d))
        self.encoder = Transformer(d, cfg.n_heads, cfg.n_layers, cfg.dropout)
        self.ctc_head = nn.Linear(d, cfg.text_vocab_size)
        self.speaker_head = nn.Linear(d, cfg.n_speakers)

    def forward(self, vectors: torch.Tensor, lens: torch.Tensor) -> dict[str, torch.Tensor]:
        """vectors (B, T', d_fsq), lens (B,) -> dict(ctc_logits (B, T', V),
        speaker_logits (B, n_speakers))."""
        valid = length_mask(lens, vectors.shape[1])
        h, _ = self.encoder(self.inp(vectors), valid)
        m = valid[..., None].to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp_min(1.0)
        return {"ctc_logits": self.ctc_head(h), "speaker_logits": self.speaker_head(pooled)}

    def loss(
        self,
        out: dict[str, torch.Tensor],
        lens: torch.Tensor,
        text_ids: torch.Tensor,
        text_lens: torch.Tensor,
        speaker_ids: torch.Tensor,
        text_weight: float = 1.0,
        speaker_weight: float = 0.1,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """-> (text_weight * CTC + speaker_weight * speaker CE, dict(ctc, speaker_ce,
        speaker_acc) detached). speaker_ids (B,) long; -1 marks an unknown speaker (ignored)."""
        ctc = ctc_loss(out["ctc_logits"], lens, text_ids, text_lens)
        known = speaker_ids >= 0
        logits = out["speaker_logits"]
        if known.any():
            spk = F.cross_entropy(logits.float()[known], speaker_ids[known])
            acc = (logits[known].argmax(-1) == speaker_ids[known]).float().mean()
        else:  # keep the graph connected (DDP) with a zero contribution
            spk = logits.sum() * 0.0
            acc = torch.zeros((), device=logits.device)
        total = text_weight * ctc + speaker_weight * spk
        parts = {"ctc": ctc.detach(), "speaker_ce": spk.detach(), "speaker_acc": acc.detach()}
        return total, parts

    def greedy_ctc_decode(
        self, out: dict[str, torch.Tensor], lens: torch.Tensor
    ) -> list[list[int]]:
        return ctc_greedy_decode(out["ctc_logits"], lens)


def load_reward(path: str | Path) -> tuple[RewardModel, dict]:
    from ..checkpoint import load_model

    model, ckpt = load_model(path, "reward", RewardModel, RewardModelConfig)
    return model, ckpt["speakers"]
