"""Token diagnostics (issue 16): unigram code entropy H(X_n) and the mutual information
I(X_{n+1}; X_n) between consecutive codes, in bits, for any tokenizer's token files.

Pairs are formed *within* utterances only: an utterance of T codes contributes its T - 1
(X_n, X_{n+1}) pairs and no pair joins the last code of one utterance to the first of the
next.

Bias correction. The plug-in MI over a K x K joint table (K = 1,024 here: 1,048,576 cells)
is biased upward, by roughly (occupied cells - 1) / (2 N ln 2) bits when N pairs fill the
table well and by more when they do not (with N ~ 10^5 pairs and 10^6 cells nearly every
pair is unique, and independent codes score several bits). The baseline is the plug-in MI
of the same pairs after a seeded permutation of all successors: both marginals stay
exactly the same, the dependence is gone, so the baseline is what the estimator returns on
this N and these marginals when the true MI is 0. ``mi_bits = mi_bits_raw - mi_bits_shuffled``
(the mean over ``n_shuffles`` seeded permutations). The correction is conservative: a
dependent joint occupies fewer cells than the independent one, so its own plug-in bias is
smaller than the baseline's, and ``mi_bits`` tends to *under*-state I(X_{n+1}; X_n), the more
the fewer pairs there are per occupied cell. Compare tokenizers on the same split (same N).

H(X_n) is the plug-in entropy of all codes of the split (downward bias about
(used codes - 1) / (2 N ln 2) bits, below 0.01 bits at N >= 10^5 and K = 1,024; not corrected).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

# Seeded shuffles averaged for the baseline; the spread between seeds is ~1e-3 bits at
# 10^5 pairs (tests/test_token_stats.py), small against the differences worth reporting.
N_SHUFFLES = 5


def _as_numpy(seq) -> np.ndarray:
    if isinstance(seq, torch.Tensor):
        seq = seq.detach().cpu().numpy()
    arr = np.asarray(seq, dtype=np.int64).reshape(-1)
    if arr.size and arr.min() < 0:
        raise ValueError("token codes must be non-negative")
    return arr


def codebook_size_of(fsq_levels: Sequence[int]) -> int:
    """K = product of the FSQ levels (a token file's ``fsq_levels``)."""
    return int(math.prod(int(level) for level in fsq_levels))


def entropy_bits_from_counts(counts: np.ndarray) -> float:
    """Plug-in entropy (bits) of a histogram ``counts`` (any shape; zeros allowed)."""
    counts = np.asarray(counts, dtype=np.float64).reshape(-1)
    total = counts.sum()
    if total <= 0:
        return 0.0
    p = counts[counts > 0] / total
    return float(-(p * np.log2(p)).sum())


def consecutive_pairs(sequences: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """(X_n, X_{n+1}) within each utterance.

    sequences: per-utterance code sequences, each (T_i,) int (tensor, array or list).
    -> (prev, next), each (P,) int64 with P = sum_i max(T_i - 1, 0); utterances with fewer
    than two codes contribute nothing, and no pair crosses from one utterance into the next.
    """
    prev, nxt = [], []
    for seq in sequences:
        arr = _as_numpy(seq)
        if arr.size >= 2:
            prev.append(arr[:-1])
            nxt.append(arr[1:])
    if not prev:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(prev), np.concatenate(nxt)


def unigram_entropy_bits(sequences: Sequence, codebook_size: int) -> float:
    """H(X_n) in bits: plug-in entropy of all codes of all utterances (each (T_i,))."""
    codes = [_as_numpy(s) for s in sequences]
    flat = np.concatenate(codes) if codes else np.zeros(0, np.int64)
    _check_range(flat, codebook_size)
    return entropy_bits_from_counts(np.bincount(flat, minlength=codebook_size))


def plugin_mi_bits(prev: np.ndarray, nxt: np.ndarray, codebook_size: int) -> float:
    """Plug-in I(X; Y) in bits from paired samples prev (P,), nxt (P,) with codes in
    [0, codebook_size): H(X) + H(Y) - H(X, Y) over the K x K joint histogram."""
    prev, nxt = _as_numpy(prev), _as_numpy(nxt)
    if prev.shape != nxt.shape:
        raise ValueError(f"prev {prev.shape} and next {nxt.shape} differ in length")
    if prev.size == 0:
        return 0.0
    _check_range(prev, codebook_size)
    _check_range(nxt, codebook_size)
    k = int(codebook_size)
    joint = np.bincount(prev * k + nxt, minlength=k * k)
    h_x = entropy_bits_from_counts(np.bincount(prev, minlength=k))
    h_y = entropy_bits_from_counts(np.bincount(nxt, minlength=k))
    return max(h_x + h_y - entropy_bits_from_counts(joint), 0.0)


def shuffled_mi_bits(
    prev: np.ndarray,
    nxt: np.ndarray,
    codebook_size: int,
    n_shuffles: int = N_SHUFFLES,
    seed: int = 0,
) -> float:
    """Null baseline: mean plug-in MI of (prev, nxt[perm]) over ``n_shuffles`` permutations
    drawn from ``numpy.random.default_rng(seed)``. Both marginals are kept exactly; the pairing
    is random, so the true MI of the shuffled pairs is 0 and the value is the estimator's bias."""
    prev, nxt = _as_numpy(prev), _as_numpy(nxt)
    if prev.size == 0 or n_shuffles < 1:
        return 0.0
    rng = np.random.default_rng(seed)
    values = [
        plugin_mi_bits(prev, nxt[rng.permutation(nxt.size)], codebook_size)
        for _ in range(n_shuffles)
    ]
    return float(np.mean(values))


def token_stats(
    sequences: Sequence, codebook_size: int, n_shuffles: int = N_SHUFFLES, seed: int = 0
) -> dict[str, float | int]:
    """Diagnostics of one split's tokens.

    sequences: per-utterance codes, each (T_i,) in [0, codebook_size).
    -> {entropy_bits: H(X_n); mi_bits_raw: plug-in I(X_{n+1}; X_n) over within-utterance
    pairs; mi_bits_shuffled: the shuffled-successor baseline; mi_bits: raw - baseline;
    n_pairs; n_codes; mi_shuffles: how many permutations the baseline averages}.
    """
    prev, nxt = consecutive_pairs(sequences)
    raw = plugin_mi_bits(prev, nxt, codebook_size)
    base = shuffled_mi_bits(prev, nxt, codebook_size, n_shuffles=n_shuffles, seed=seed)
    return {
        "entropy_bits": unigram_entropy_bits(sequences, codebook_size),
        "mi_bits_raw": raw,
        "mi_bits_shuffled": base,
        "mi_bits": raw - base,
        "n_pairs": int(prev.size),
        "n_codes": int(sum(_as_numpy(s).size for s in sequences)),
        "mi_shuffles": int(n_shuffles),
    }


def token_file_stats(path, n_shuffles: int = N_SHUFFLES, seed: int = 0) -> dict[str, float | int]:
    """``token_stats`` of one token file (``data/tokens/s<seed>/<system>/<split>.pt``: {"utt_id",
    "tokens": [LongTensor (T_i,)], "fsq_levels"}), plus the codebook figures the extraction
    step used to write (``code_usage``, ``code_perplexity``, ``code_entropy_bits``; by
    ``metrics.codebook_stats``, the same function as before, so their values do not move)."""
    from .metrics import codebook_stats

    payload = torch.load(path, map_location="cpu", weights_only=False)
    tokens = payload["tokens"]
    k = codebook_size_of(payload["fsq_levels"])
    flat = torch.cat(
        [torch.as_tensor(t, dtype=torch.long).reshape(-1) for t in tokens]
        or [torch.zeros(0, dtype=torch.long)]
    )
    return {
        **codebook_stats(flat, k),
        **token_stats(tokens, k, n_shuffles=n_shuffles, seed=seed),
        "codebook_size": k,
    }


# The split whose figures summary.json and the report carry: the training split has by far
# the most pairs (~4.9e5 against ~1.2e4 on dev for the default corpus), hence the smallest
# baseline (0.57 vs 3.5 bits for the cascade tokenizer) and the least over-correction.
SUMMARY_SPLIT = "train"
# summary.json key -> token-stats key, for every row that speaks through a tokenizer.
SUMMARY_KEYS = {
    "token_entropy_bits": "entropy_bits",
    "token_mi_bits": "mi_bits",
    "token_mi_bits_raw": "mi_bits_raw",
    "token_mi_bits_shuffled": "mi_bits_shuffled",
    "token_n_pairs": "n_pairs",
}


def add_token_stats(
    summary: dict[str, dict],
    stats: dict[str, list[dict]],
    tokenizer_of: dict[str, str],
    split: str = SUMMARY_SPLIT,
) -> dict[str, dict]:
    """Copy each tokenizer's diagnostics into the summary rows that use it (in place).

    summary: summary.json ({row name: metrics}); stats: {tokenizer: [tokens_<tokenizer>.json
    of each training seed]}; tokenizer_of: {row name: tokenizer}, e.g. cascade and
    resynth_cascade -> "cascade", the E2E systems and resynth_e2e_tok -> "e2e_tok". Rows gain
    ``tokenizer``, ``token_split`` and the ``SUMMARY_KEYS`` (the seed mean, with
    ``<key>_per_seed`` when there are several seeds); rows without a tokenizer (gt,
    gt_vocoded) are left as they are. The row layout stays {name: flat metrics}, which
    every reader of summary.json iterates.
    """
    from .errors import UserError

    for name, tok in tokenizer_of.items():
        if name not in summary:
            continue
        if not stats.get(tok):
            raise UserError(
                f"{name}: no token statistics for tokenizer {tok!r} (have {sorted(stats)})"
            )
        runs = []
        for run in stats[tok]:
            if split not in run:
                raise UserError(f"tokens_{tok}.json: no {split!r} split (have {sorted(run)})")
            missing = [k for k in SUMMARY_KEYS.values() if k not in run[split]]
            if missing:
                raise UserError(f"tokens_{tok}.json: {split} lacks {missing}; re-run token-stats")
            runs.append(run[split])
        summary[name]["tokenizer"] = tok
        summary[name]["token_split"] = split
        for out_key, key in SUMMARY_KEYS.items():
            values = [run[key] for run in runs]
            summary[name][out_key] = values[0] if len(values) == 1 else float(np.mean(values))
            if len(values) > 1:
                summary[name][f"{out_key}_per_seed"] = values
    return summary


def _check_range(codes: np.ndarray, codebook_size: int) -> None:
    if codes.size and int(codes.max()) >= codebook_size:
        raise ValueError(f"code {int(codes.max())} outside a codebook of {codebook_size}")
