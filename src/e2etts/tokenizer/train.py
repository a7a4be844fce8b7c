"""Cascade tokenizer training (CTC only) and token extraction."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..batching import device_of, iter_batches, pad
from ..config import build
from ..data.features import FeatureSet
from ..metrics import char_error_rate, codebook_stats
from ..text import VOCAB_SIZE
from ..train import TrainTask
from .model import SpeechTokenizer, SpeechTokenizerConfig


def collate_mel_text(items: list[dict]) -> dict:
    mel, mel_lens = pad([it["mel"] for it in items])
    text, text_lens = pad([it["text_ids"] for it in items])
    return {"mel": mel, "mel_lens": mel_lens, "text": text, "text_lens": text_lens}


class TokenizerCTCTraining(nn.Module):
    """forward(batch) -> (CTC loss, parts); DDP wraps this so gradients sync."""

    def __init__(self, model: SpeechTokenizer):
        super().__init__()
        self.model = model

    def forward(self, batch: dict):
        out = self.model(batch["mel"], batch["mel_lens"])
        loss = self.model.ctc_loss(out, batch["text"], batch["text_lens"])
        return loss, {"ctc": float(loss.detach())}


def evaluate_tokenizer(model: SpeechTokenizer, dev: FeatureSet, batch_size: int = 16) -> dict:
    losses, refs, hyps, all_idx = [], [], [], []
    for batch in iter_batches(dev, batch_size, collate_mel_text, device_of(model)):
        out = model(batch["mel"], batch["mel_lens"])
        losses.append(float(model.ctc_loss(out, batch["text"], batch["text_lens"])))
        hyps += model.greedy_ctc_decode(out)
        refs += [t[:n].tolist() for t, n in zip(batch["text"], batch["text_lens"], strict=True)]
        all_idx += [idx[:n] for idx, n in zip(out["indices"], out["token_lens"], strict=True)]
    stats = codebook_stats(torch.cat(all_idx), model.fsq.codebook_size)
    return {"dev_loss": sum(losses) / len(losses), "dev_cer": char_error_rate(refs, hyps), **stats}


def build_task(section: dict, features_dir: Path) -> TrainTask:
    cfg = build(SpeechTokenizerConfig, {"text_vocab_size": VOCAB_SIZE, **section["model"]}, "tokenizer.model")
    train = FeatureSet(features_dir / "train.pt")
    dev = FeatureSet(features_dir / "dev.pt")
    model = SpeechTokenizer(cfg)
    model.set_normalization(*train.mel_stats())
    wrapper = TokenizerCTCTraining(model)
    return TrainTask(
        kind="tokenizer",
        model=wrapper,
        dataset=train,
        lengths=train.lengths.tolist(),
        collate=collate_mel_text,
        loss=lambda m, b: m(b),
        evaluate=lambda w: evaluate_tokenizer(w.model, dev),
        export=lambda w: {"model": w.model.state_dict(), "config": cfg.__dict__},
    )


@torch.no_grad()
def extract_tokens(tokenizer: SpeechTokenizer, features: FeatureSet, out_path: Path, batch_size: int = 32) -> dict:
    """Token indices for every utterance: {"utt_id": [...], "tokens": [LongTensor (T',)]}."""
    from ..atomic import torch_save

    order = sorted(range(len(features)), key=lambda i: int(features.lengths[i]))
    tokens: dict[int, torch.Tensor] = {}
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        mel, mel_lens = pad([features[i]["mel"] for i in chunk])
        _, indices, token_lens = tokenizer.encode(mel, mel_lens)
        for i, idx, n in zip(chunk, indices, token_lens, strict=True):
            tokens[i] = idx[:n].clone()
    ordered = [tokens[i] for i in range(len(features))]
    payload = {
        "utt_id": list(features.utt_ids),  # not features[i]: each item copies its mel to float32
        "tokens": ordered,
        "fsq_levels": list(tokenizer.cfg.fsq_levels),
    }
    torch_save(out_path, payload)
    return codebook_stats(torch.cat(ordered), tokenizer.fsq.codebook_size)
