"""Bootstrap statistics over test utterances (numpy only, deterministic for a seed).

- Corpus WER = sum of word errors / sum of reference words; its 95% interval resamples
  utterances with replacement and recomputes that ratio.
- Mean SIM: the same with the mean.
- Paired bootstrap (Koehn 2004 style) for system A vs system B on the same items: the
  utterances are resampled once per round for both systems, and the one-sided p-value is
  the fraction of rounds in which A is *not* better than B (ties count against A).
"""

from __future__ import annotations

import numpy as np

DEFAULT_ROUNDS = 2000
_CHUNK = 256  # resampling rounds per block, to bound memory on large test lists


def _vector(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise ValueError(f"{name} is empty: nothing to bootstrap")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _resampled(n_items: int, rounds: int, seed: int):
    """Yield index blocks (block, n_items) of bootstrap resamples, reproducible for a seed."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    rng = np.random.default_rng(seed)
    done = 0
    while done < rounds:
        block = min(_CHUNK, rounds - done)
        yield rng.integers(0, n_items, size=(block, n_items))
        done += block


def corpus_wer(errors, words) -> float:
    """Total errors / total reference words (0 words: 0 if no errors, else 1)."""
    e = float(np.asarray(errors, dtype=np.float64).sum())
    w = float(np.asarray(words, dtype=np.float64).sum())
    return float(e / w) if w > 0 else float(e > 0)


def _ratio(e: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.where(w > 0, e / np.maximum(w, 1e-12), (e > 0).astype(np.float64))


def _interval(samples: np.ndarray, point: float, level: float) -> tuple[float, float]:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(samples, [tail, 1.0 - tail])
    # The percentile interval of a ratio can, for tiny skewed lists, miss the point
    # estimate by a hair; report an interval that always contains it.
    return float(min(lo, point)), float(max(hi, point))


def bootstrap_ci_wer(
    errors, words, n: int = DEFAULT_ROUNDS, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of corpus WER. errors, words: per utterance."""
    e, w = _vector(errors, "errors"), _vector(words, "words")
    if e.shape != w.shape:
        raise ValueError(f"errors ({e.size}) and words ({w.size}) differ in length")
    stats = np.concatenate(
        [_ratio(e[idx].sum(1), w[idx].sum(1)) for idx in _resampled(e.size, n, seed)]
    )
    return _interval(stats, corpus_wer(e, w), level)


def bootstrap_ci_mean(
    values, n: int = DEFAULT_ROUNDS, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (e.g. SIM)."""
    v = _vector(values, "values")
    stats = np.concatenate([v[idx].mean(1) for idx in _resampled(v.size, n, seed)])
    return _interval(stats, float(v.mean()), level)


def paired_bootstrap_pvalue(
    errors_a, words_a, errors_b, words_b, n: int = DEFAULT_ROUNDS, seed: int = 0
) -> float:
    """One-sided p-value for "A has lower corpus WER than B".

    = fraction of paired resamples with WER_A >= WER_B; small means A is reliably better.
    The four arrays are per utterance, aligned on the same items. Reference words usually
    coincide for A and B, but are kept separate so each side's WER is its own ratio.
    """
    ea, wa = _vector(errors_a, "errors_a"), _vector(words_a, "words_a")
    eb, wb = _vector(errors_b, "errors_b"), _vector(words_b, "words_b")
    if not ea.size == wa.size == eb.size == wb.size:
        raise ValueError("paired bootstrap needs per-utterance arrays of one length (same items)")
    not_better = 0
    for idx in _resampled(ea.size, n, seed):
        wer_a = _ratio(ea[idx].sum(1), wa[idx].sum(1))
        wer_b = _ratio(eb[idx].sum(1), wb[idx].sum(1))
        not_better += int(np.count_nonzero(wer_a >= wer_b))
    return not_better / n


def paired_bootstrap_pvalue_sim(sim_a, sim_b, n: int = DEFAULT_ROUNDS, seed: int = 0) -> float:
    """One-sided p-value for "A has higher mean SIM than B": fraction of paired resamples
    with mean_A <= mean_B."""
    a, b = _vector(sim_a, "sim_a"), _vector(sim_b, "sim_b")
    if a.size != b.size:
        raise ValueError("paired bootstrap needs per-utterance arrays of one length (same items)")
    diff = a - b
    not_better = sum(
        int(np.count_nonzero(diff[idx].mean(1) <= 0.0)) for idx in _resampled(a.size, n, seed)
    )
    return not_better / n
