"""Padding helpers shared by every component's collate function."""

from __future__ import annotations

import torch


def pad(seqs: list[torch.Tensor], value: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """list of (T_i, ...) -> (padded (B, T_max, ...), lengths (B,))."""
    lengths = torch.tensor([s.shape[0] for s in seqs], dtype=torch.long)
    out = seqs[0].new_full((len(seqs), int(lengths.max()), *seqs[0].shape[1:]), value)
    for i, s in enumerate(seqs):
        out[i, : s.shape[0]] = s
    return out, lengths


def iter_batches(dataset, batch_size: int, collate):
    """Held-out evaluation order: consecutive items, the last batch possibly short."""
    for start in range(0, len(dataset), batch_size):
        yield collate([dataset[i] for i in range(start, min(len(dataset), start + batch_size))])
