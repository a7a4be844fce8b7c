"""Batch order and padding: the training loop's length-bucketed epochs (make_batches),
held-out evaluation order (iter_batches), and the padding every collate function uses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def pad(seqs: list[torch.Tensor], value: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """list of (T_i, ...) -> (padded (B, T_max, ...), lengths (B,))."""
    lengths = torch.tensor([s.shape[0] for s in seqs], dtype=torch.long)
    out = seqs[0].new_full((len(seqs), int(lengths.max()), *seqs[0].shape[1:]), value)
    for i, s in enumerate(seqs):
        out[i, : s.shape[0]] = s
    return out, lengths


def to_device(batch: Any, device: torch.device) -> Any:
    """Tensors inside dicts, lists and tuples moved to `device`; other values as they are."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def device_of(module: torch.nn.Module) -> torch.device:
    """Where a module's parameters live: held-out batches and generators go there."""
    return next(module.parameters()).device


def iter_batches(dataset, batch_size: int, collate, device: torch.device | None = None):
    """Held-out evaluation order: consecutive items, the last batch possibly short; each
    batch collated on the CPU, then moved to `device` (the evaluated model's) when given."""
    for start in range(0, len(dataset), batch_size):
        batch = collate([dataset[i] for i in range(start, min(len(dataset), start + batch_size))])
        yield batch if device is None else to_device(batch, device)


def make_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Deterministic length-bucketed batches for one epoch.

    Items are shuffled, then sorted by length inside windows of 50 batches so padding stays
    small while batch composition still varies from epoch to epoch.
    """
    g = torch.Generator().manual_seed(seed * 1000003 + epoch)
    order = torch.randperm(len(lengths), generator=g).tolist()
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    batches = [b for b in batches if len(b) == batch_size] or batches[:1]
    perm = torch.randperm(len(batches), generator=g).tolist()
    return [batches[i] for i in perm]
