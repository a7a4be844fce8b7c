"""Figures more than one component computes: codebook use of token indices, character error
rate of recognized symbol ids, and the speaker index that speaker heads classify into."""

from __future__ import annotations

import torch


def codebook_stats(indices: torch.Tensor, codebook_size: int) -> dict[str, float]:
    """Fraction of codes used and perplexity (exp entropy) of the code histogram."""
    counts = torch.bincount(indices.flatten(), minlength=codebook_size).float()
    probs = counts / counts.sum().clamp(min=1)
    entropy = -(probs[probs > 0] * probs[probs > 0].log()).sum()
    return {
        "code_usage": float((counts > 0).float().mean()),
        "code_perplexity": float(entropy.exp()),
        "code_entropy_bits": float(entropy / torch.log(torch.tensor(2.0))),
    }


def char_error_rate(refs: list[list[int]], hyps: list[list[int]]) -> float:
    import jiwer

    from .text import decode

    ref_text = [decode(r) for r in refs]
    hyp_text = [decode(h) for h in hyps]
    return float(jiwer.cer(ref_text, hyp_text))


def speaker_index(speakers: list[str]) -> dict[str, int]:
    """Speaker name -> class id, in sorted order (the same ids wherever the list comes from)."""
    return {s: i for i, s in enumerate(sorted(set(speakers)))}
