"""Cascade LLM training: next-token prediction on ground-truth speech tokens."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ..batching import device_of, iter_batches
from ..config import build
from ..text import VOCAB_SIZE
from ..tokens import TokenizedSet
from ..train import TrainTask
from .model import TextToTokenLM, TextToTokenLMConfig


class LLMTraining(nn.Module):
    def __init__(self, model: TextToTokenLM):
        super().__init__()
        self.model = model

    def forward(self, batch: dict):
        return self.model.format.training_loss(self.model, batch)


def evaluate_llm(model: TextToTokenLM, dev, batch_size: int = 16) -> dict:
    """Held-out cross-entropy and accuracy per predicted unit (dev: TokenizedSet, or
    AlignedSet for the interleaved format, split at fixed word starts)."""
    total_ce, total_acc, n = 0.0, 0.0, 0
    fmt = model.format
    for batch in iter_batches(dev, batch_size, lambda items: fmt.collate(items, held_out=True), device_of(model)):
        ce, acc = fmt.loss(model, batch)
        weight = fmt.n_predicted(batch)
        total_ce += float(ce) * weight
        total_acc += float(acc) * weight
        n += weight
    return {"dev_loss": total_ce / n, "dev_acc": total_acc / n}


def build_task(
    section: dict, features_dir: Path, tokens_dir: Path, init: Path | None = None,
    tokenizer: Path | None = None,
) -> TrainTask:
    """init: a checkpoint to start from (stage-2 consolidation of E1 components);
    tokenizer: the tokenizer of the tokens, whose CTC head aligns text symbols to tokens
    (needed by llm.model.alignment: interleaved)."""
    train = TokenizedSet(features_dir / "train.pt", tokens_dir / "train.pt", with_mel=False)
    dev = TokenizedSet(features_dir / "dev.pt", tokens_dir / "dev.pt", with_mel=False)
    cfg = build(
        TextToTokenLMConfig,
        {"text_vocab_size": VOCAB_SIZE, "fsq_levels": train.fsq_levels,
         "text_frontend": train.features.text_frontend, **section["model"]},
        "llm.model",
    )
    model = TextToTokenLM(cfg)
    if init is not None:
        from ..checkpoint import load_model_file

        ckpt = load_model_file(init, expected_kind="llm")
        cfg = type(cfg)(**ckpt["config"])  # the E1 model's shape wins over params
        model = TextToTokenLM(cfg)
        model.load_state_dict(ckpt["model"])
    lengths = [len(train[i]["text_ids"]) + n for i, n in enumerate(train.token_lengths())]
    fmt = model.format
    train, dev, extra = fmt.prepare(
        train, dev, tokenizer, "llm.model.alignment: interleaved needs the tokens' tokenizer (train llm --tokenizer)"
    )
    lengths = [n + e for n, e in zip(lengths, extra, strict=True)]
    return TrainTask(
        kind="llm",
        model=LLMTraining(model),
        dataset=train,
        lengths=lengths,
        collate=fmt.collate,  # training split points from the global RNG: resumable
        loss=lambda m, b: m(b),
        evaluate=lambda w: evaluate_llm(w.model, dev),
        export=lambda w: {"model": w.model.state_dict(), "config": cfg.__dict__},
    )
