"""Which text symbol each speech token belongs to: CTC forced alignment with the tokenizer's
own recognition head (the interleaved LLM format, `llm.model.alignment: interleaved`).

The tokenizer was trained with CTC on the same phone sequences the LLM reads, so its head
gives per-token log-probabilities over the text vocabulary; the Viterbi path through the
CTC lattice of the item's own text assigns every token to one symbol. A symbol's segment
runs from its first frame on the path to the frame before the next symbol's first frame;
leading blanks join the first symbol, so segments tile the tokens exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchaudio.functional import forced_align

from ..errors import UserError
from ..nn import length_mask
from ..tokens import TokenizedSet


def ctc_viterbi_starts(log_probs: np.ndarray, labels: np.ndarray, blank: int = 0) -> np.ndarray | None:
    """log_probs (T, V), labels (L,) -> the frame where each label's segment starts (L,),
    starts[0] = 0 and strictly increasing; None when no CTC path exists (T too short).

    The best path comes from torchaudio.functional.forced_align (the CTC Viterbi; it gave
    the same segment starts as this module's former numpy Viterbi on all 8,200 train and
    dev items of the default run, 5.2x faster: docs/benchmarks.md)."""
    T, L = log_probs.shape[0], len(labels)
    if L == 0:
        return np.zeros(0, dtype=np.int64)
    # CTC needs a blank between two equal labels: no path when frames run short of that.
    if T < L + int((labels[1:] == labels[:-1]).sum()):
        return None
    path, _ = forced_align(torch.from_numpy(np.ascontiguousarray(log_probs))[None].float(),
                           torch.from_numpy(np.asarray(labels))[None].int(), blank=blank)
    path = path[0]
    # A label's segment begins where the path enters it: a non-blank frame after a blank or
    # after a different label (equal labels are always split by a blank).
    entered = (path != blank) & torch.cat([torch.ones(1, dtype=torch.bool), path[1:] != path[:-1]])
    starts = torch.nonzero(entered).view(-1).numpy().astype(np.int64)
    starts[0] = 0  # leading blanks (silence) belong to the first symbol
    return starts


def uniform_starts(n_tokens: int, n_labels: int) -> np.ndarray:
    """The fallback when CTC has no path: equal shares (zero-length segments if T < L)."""
    return (np.arange(n_labels) * n_tokens) // max(n_labels, 1)


def align_log_probs(
    log_probs: torch.Tensor, token_lens: torch.Tensor, text: torch.Tensor, text_lens: torch.Tensor
) -> tuple[list[torch.Tensor], int]:
    """CTC log-probabilities (B, T, V) of padded items, text (B, L) padded -> (per item the
    token index where each symbol's segment starts (L_b,), number of uniform fallbacks)."""
    lp = log_probs.detach().float().cpu().numpy()
    starts, n_fallback = [], 0
    for b in range(lp.shape[0]):
        T, L = int(token_lens[b]), int(text_lens[b])
        found = ctc_viterbi_starts(lp[b, :T], text[b, :L].cpu().numpy())
        if found is None:
            n_fallback += 1
            found = uniform_starts(T, L)
        starts.append(torch.from_numpy(found))
    return starts, n_fallback


@torch.no_grad()
def align_tokens(
    tokenizer, tokens: list[torch.Tensor], text_ids: list[torch.Tensor], batch_size: int = 64
) -> tuple[list[torch.Tensor], int]:
    """Per item, the token index where each text symbol's segment starts.

    tokens: per item (T_i,) code indices of `tokenizer`; text_ids: per item (L_i,).
    -> (starts: per item (L_i,) long, number of items that fell back to uniform_starts).
    """
    from ..batching import pad

    tokenizer.eval()
    starts: list[torch.Tensor] = []
    n_fallback = 0
    for lo in range(0, len(tokens), batch_size):
        padded, lens = pad(tokens[lo : lo + batch_size])
        text, text_lens = pad(text_ids[lo : lo + batch_size])
        vectors = tokenizer.fsq.indices_to_vectors(padded) * length_mask(lens, padded.shape[1])[..., None]
        log_probs = tokenizer.recognize(vectors, lens).float().log_softmax(-1)
        found, n = align_log_probs(log_probs, lens, text, text_lens)
        starts += found
        n_fallback += n
    return starts, n_fallback


class AlignedSet:
    """A TokenizedSet whose items also carry `starts` (L,): where each text symbol's speech
    segment begins (align_tokens above), for the interleaved LLM."""

    def __init__(self, base: TokenizedSet, starts: list):
        self.base, self.starts = base, starts

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict:
        return {**self.base[i], "starts": self.starts[i]}


def align_set(data: TokenizedSet, tokenizer_path: Path) -> AlignedSet:
    """data aligned by the CTC head of the tokenizer at tokenizer_path (the tokens' own)."""
    from ..tokenizer.model import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_path)
    if tuple(tokenizer.cfg.fsq_levels) != tuple(data.fsq_levels):
        raise UserError(f"{tokenizer_path}: codebook {tokenizer.cfg.fsq_levels} is not the tokens' {data.fsq_levels}")
    # Tokens and text straight from the set: its items would each carry a float32 copy of the
    # mel (1.4 GB over the default train split, which glibc then kept for E2's whole job).
    starts, n_fallback = align_tokens(tokenizer, data.tokens, data.features.text_ids)
    if n_fallback:
        print(f"[llm] {n_fallback} of {len(data)} items had no CTC path; their symbols got equal shares")
    return AlignedSet(data, starts)
