"""Cascade LLM training: next-token prediction on ground-truth speech tokens."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ..batching import iter_batches, pad
from ..config import build
from ..errors import UserError
from ..text import VOCAB_SIZE
from ..tokens import TokenizedSet
from ..train import TrainTask
from .align import align_set
from .interleave import collate_interleaved
from .model import TextToTokenLM, TextToTokenLMConfig


def collate_text_tokens(items: list[dict]) -> dict:
    text, text_lens = pad([it["text_ids"] for it in items])
    tokens, token_lens = pad([it["tokens"] for it in items])
    return {"text": text, "text_lens": text_lens, "tokens": tokens, "token_lens": token_lens}


class LLMTraining(nn.Module):
    def __init__(self, model: TextToTokenLM):
        super().__init__()
        self.model = model

    def forward(self, batch: dict):
        if "kinds" in batch:  # interleaved format
            ce, acc = self.model.loss_units(batch)
            return ce, {"ce": float(ce.detach()), "acc": float(acc)}
        ce, acc = self.model.loss(
            batch["text"], batch["text_lens"], None, batch["token_lens"], batch["tokens"]
        )
        log = {"ce": float(ce.detach()), "acc": float(acc)}
        weight = self.model.cfg.guided_attention_weight
        if weight <= 0:
            return ce, log
        penalty = self.model.guided_attention_penalty(
            batch["text_lens"], batch["token_lens"], batch["text"].shape[1]
        )
        log["guided_attn"] = float(penalty.detach())
        return ce + weight * penalty, log


def evaluate_llm(model: TextToTokenLM, dev, batch_size: int = 16) -> dict:
    """Held-out cross-entropy and accuracy per predicted unit (dev: TokenizedSet, or
    AlignedSet for the interleaved format, split at fixed word starts)."""
    total_ce, total_acc, n = 0.0, 0.0, 0
    interleaved = model.cfg.alignment == "interleaved"
    collate = (lambda items: collate_interleaved(items, model.eos_id, held_out=True)) if interleaved else collate_text_tokens
    for batch in iter_batches(dev, batch_size, collate):
        if interleaved:
            ce, acc = model.loss_units(batch)
            weight = int((batch["targets"] != -100).sum())
        else:
            ce, acc = model.loss(batch["text"], batch["text_lens"], None, batch["token_lens"], batch["tokens"])
            weight = int(batch["token_lens"].sum())
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
    collate = collate_text_tokens
    if cfg.alignment == "interleaved":
        if tokenizer is None:
            raise UserError("llm.model.alignment: interleaved needs the tokens' tokenizer (train llm --tokenizer)")
        train, dev = align_set(train, tokenizer), align_set(dev, tokenizer)
        # Each symbol also enters the speech stream once: one more unit per symbol.
        lengths = [n + len(starts) for n, starts in zip(lengths, train.starts, strict=True)]
        eos = model.eos_id
        collate = lambda items: collate_interleaved(items, eos)  # noqa: E731 (global RNG: resumable)
    return TrainTask(
        kind="llm",
        model=LLMTraining(model),
        dataset=train,
        lengths=lengths,
        collate=collate,
        loss=lambda m, b: m(b),
        evaluate=lambda w: evaluate_llm(w.model, dev),
        export=lambda w: {"model": w.model.state_dict(), "config": cfg.__dict__},
    )
