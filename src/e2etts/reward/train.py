"""Reward-model fitting (paper stage 2 for R): text CTC + speaker recognition from tokens.

Reads hard tokens of the (frozen) E1 tokenizer; starts from E1's reward model when given.
From here on R is frozen and serves as a differentiable reward for E2.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..batching import device_of, iter_batches, pad
from ..config import build
from ..fsq import FSQ
from ..metrics import char_error_rate, speaker_index
from ..text import VOCAB_SIZE
from ..tokens import TokenizedSet
from ..train import TrainTask
from .model import RewardModel, RewardModelConfig


@dataclass
class RewardObjective:
    """params `reward.objective`: the weights of the text (CTC) and speaker losses."""

    text_weight: float = 1.0
    speaker_weight: float = 0.1


def collate_tokens_text_speaker(items: list[dict], speakers: dict[str, int]) -> dict:
    tokens, token_lens = pad([it["tokens"] for it in items])
    text, text_lens = pad([it["text_ids"] for it in items])
    spk = torch.tensor([speakers.get(it["speaker"], -1) for it in items])
    return {"tokens": tokens, "token_lens": token_lens, "text": text, "text_lens": text_lens, "speaker": spk}


class RewardTraining(nn.Module):
    def __init__(self, model: RewardModel, fsq: FSQ, text_weight: float, speaker_weight: float):
        super().__init__()
        self.model, self.fsq = model, fsq
        self.text_weight, self.speaker_weight = text_weight, speaker_weight

    def forward(self, batch: dict):
        vectors = self.fsq.indices_to_vectors(batch["tokens"])
        out = self.model(vectors, batch["token_lens"])
        total, parts = self.model.loss(out, batch["token_lens"], batch["text"], batch["text_lens"],
                                       batch["speaker"], self.text_weight, self.speaker_weight)
        return total, {k: float(v) for k, v in parts.items()}


def evaluate_reward(w: RewardTraining, dev: TokenizedSet, speakers: dict, batch_size: int = 32) -> dict:
    total, n, refs, hyps, correct, known = 0.0, 0, [], [], 0, 0
    for batch in iter_batches(dev, batch_size, lambda items: collate_tokens_text_speaker(items, speakers),
                              device_of(w)):
        vectors = w.fsq.indices_to_vectors(batch["tokens"])
        out = w.model(vectors, batch["token_lens"])
        loss, _ = w.model.loss(out, batch["token_lens"], batch["text"], batch["text_lens"],
                               batch["speaker"], w.text_weight, w.speaker_weight)
        total += float(loss) * len(batch["tokens"])
        n += len(batch["tokens"])
        hyps += w.model.greedy_ctc_decode(out, batch["token_lens"])
        refs += [t[:m].tolist() for t, m in zip(batch["text"], batch["text_lens"], strict=True)]
        mask = batch["speaker"] >= 0
        correct += int((out["speaker_logits"].argmax(-1)[mask] == batch["speaker"][mask]).sum())
        known += int(mask.sum())
    return {"dev_loss": total / n, "dev_cer": char_error_rate(refs, hyps),
            "dev_speaker_acc": correct / max(1, known)}


def build_task(params: dict, features_dir: Path, tokens_dir: Path, init: Path | None) -> TrainTask:
    section = params["reward"]
    train = TokenizedSet(features_dir / "train.pt", tokens_dir / "train.pt", with_mel=False)
    dev = TokenizedSet(features_dir / "dev.pt", tokens_dir / "dev.pt", with_mel=False)
    fsq = FSQ(train.fsq_levels)
    speakers = speaker_index(train.features.speakers)
    cfg = build(RewardModelConfig, {"fsq_dim": fsq.dim, "text_vocab_size": VOCAB_SIZE,
                                    "n_speakers": len(speakers), **section["model"]}, "reward.model")
    model = RewardModel(cfg)
    if init is not None:
        from ..checkpoint import load_model_file

        model.load_state_dict(load_model_file(init, "reward")["model"])
    objective = build(RewardObjective, section["objective"], "reward.objective")
    wrapper = RewardTraining(model, fsq, objective.text_weight, objective.speaker_weight)
    return TrainTask(
        kind="reward",
        model=wrapper,
        dataset=train,
        lengths=train.token_lengths(),
        collate=lambda items: collate_tokens_text_speaker(items, speakers),
        loss=lambda m, b: m(b),
        evaluate=lambda w: evaluate_reward(w, dev, speakers),
        export=lambda w: {"model": w.model.state_dict(), "config": cfg.__dict__, "speakers": speakers},
    )
