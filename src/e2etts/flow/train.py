"""Cascade flow-matching training: ground-truth tokens -> ground-truth mel."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..batching import device_of, iter_batches, pad
from ..config import build
from ..fsq import FSQ
from ..tokens import TokenizedSet
from ..train import TrainTask
from .model import FlowMatchingConfig, FlowMatchingDecoder


def crop_aligned(mel: torch.Tensor, tokens: torch.Tensor, max_tokens: int) -> tuple:
    """A random window of max_tokens tokens and its mel frames (token i <-> frames 4i..4i+3).

    Flow matching learns a local mapping, so 1-2 s windows teach it as well as whole
    utterances at a fraction of the cost. The offset comes from the global RNG, which the
    training loop checkpoints (resume draws the same windows)."""
    n = tokens.shape[0]
    if n <= max_tokens:
        return mel, tokens
    start = int(torch.randint(0, n - max_tokens + 1, ()))
    return mel[4 * start : 4 * (start + max_tokens)], tokens[start : start + max_tokens]


def collate_mel_tokens(items: list[dict], crop_tokens: int = 0) -> dict:
    """-> mel, mel_lens, tokens, token_lens (cropped windows when crop_tokens) and
    ref_stats: per-bin mean/std of each whole utterance (the flow's speaker reference)."""
    pairs = [(it["mel"], it["tokens"]) for it in items]
    full, full_lens = pad([m for m, _ in pairs])
    ref_stats = FlowMatchingDecoder.reference_stats(full, full_lens)
    if crop_tokens:
        pairs = [crop_aligned(m, t, crop_tokens) for m, t in pairs]
    mel, mel_lens = pad([m for m, _ in pairs])
    tokens, token_lens = pad([t for _, t in pairs])
    return {"mel": mel, "mel_lens": mel_lens, "tokens": tokens, "token_lens": token_lens,
            "ref_stats": ref_stats}


class FlowTraining(nn.Module):
    def __init__(self, model: FlowMatchingDecoder, fsq: FSQ):
        super().__init__()
        self.model = model
        self.fsq = fsq

    def forward(self, batch: dict, generator: torch.Generator | None = None):
        vectors = self.fsq.indices_to_vectors(batch["tokens"])
        parts: dict = {}
        loss = self.model.loss(
            batch["mel"], batch["mel_lens"], vectors, batch["token_lens"], generator, parts,
            batch.get("ref_stats"),
        )
        return loss, parts


def evaluate_flow(wrapper: FlowTraining, dev: TokenizedSet, batch_size: int = 16) -> dict:
    # A fixed generator makes the (stochastic) held-out loss comparable across evaluations.
    device = device_of(wrapper)
    g = torch.Generator(device).manual_seed(0)  # its draws are made on the model's device
    total, n = 0.0, 0
    for batch in iter_batches(dev, batch_size, collate_mel_tokens, device):
        loss, _ = wrapper(batch, generator=g)
        total += float(loss) * len(batch["mel"])
        n += len(batch["mel"])
    return {"dev_loss": total / n}


def build_task(
    section: dict, features_dir: Path, tokens_dir: Path, init: Path | None = None
) -> TrainTask:
    """init: a checkpoint to start from (stage-2 consolidation of E1 components)."""
    train = TokenizedSet(features_dir / "train.pt", tokens_dir / "train.pt")
    dev = TokenizedSet(features_dir / "dev.pt", tokens_dir / "dev.pt")
    fsq = FSQ(train.fsq_levels)
    cfg = build(FlowMatchingConfig, {"fsq_dim": fsq.dim, **section["model"]}, "flow.model")
    model = FlowMatchingDecoder(cfg)
    if init is not None:
        from ..checkpoint import load_model_file

        ckpt = load_model_file(init, expected_kind="flow")
        cfg = type(cfg)(**ckpt["config"])  # the E1 model's shape wins over params
        model = FlowMatchingDecoder(cfg)
        model.load_state_dict(ckpt["model"])
    model.set_normalization(*train.features.mel_stats())
    return TrainTask(
        kind="flow",
        model=FlowTraining(model, fsq),
        dataset=train,
        lengths=train.token_lengths(),
        collate=lambda items: collate_mel_tokens(items, section["crop_tokens"]),
        loss=lambda m, b: m(b),
        evaluate=lambda w: evaluate_flow(w, dev),
        export=lambda w: {"model": w.model.state_dict(), "config": cfg.__dict__},
    )
