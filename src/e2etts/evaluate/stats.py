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


# --- Several training seeds (issue 16): the seed is the unit of a claim about training. ---
#
# A system trained under S seeds and scored on the same N items gives per-seed, per-item
# arrays (S, N). The bootstrap below resamples at both levels each round: seeds with
# replacement (each system its own: seed k of one system has no partner in another), then
# items with replacement (shared by both systems: the test list is paired). A statistic is
# the mean over the resampled seeds of each seed's corpus WER on the resampled items. With
# one seed per system it reduces to the paired item bootstrap above; with several, a
# difference that only one lucky seed carries stops looking certain.


def _per_seed(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"{name}: expected (seeds, items), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _seed_mean_wer(e: np.ndarray, w: np.ndarray, seeds: np.ndarray, items: np.ndarray) -> np.ndarray:
    """e, w (S, N); seeds (R, S') seed indices; items (R, N') item indices -> (R,) mean over
    the S' resampled seeds of each one's corpus WER on the R-th item resample."""
    errs = e[seeds[:, :, None], items[:, None, :]].sum(-1)  # (R, S')
    words = w[seeds[:, :, None], items[:, None, :]].sum(-1)
    return _ratio(errs, words).mean(-1)


def _seed_draw(rng, rounds: int, n_seeds: int) -> np.ndarray:
    """(rounds, n_seeds) seed indices drawn with replacement. One seed has one draw and
    consumes no random numbers, so with one seed per system the item resamples (and the
    p-value and interval) are exactly those of the one-level bootstraps above."""
    if n_seeds == 1:
        return np.zeros((rounds, 1), dtype=np.int64)
    return rng.integers(0, n_seeds, size=(rounds, n_seeds))


def seed_item_bootstrap(
    errors_a, words_a, errors_b=None, words_b=None, n: int = DEFAULT_ROUNDS, seed: int = 0, level: float = 0.95
) -> dict:
    """Two-level bootstrap over training seeds and test items.

    errors_*, words_*: (seeds, items) per-utterance word errors and reference words, the
    items aligned across seeds and systems (the seed counts of A and B may differ). Returns
    {"wer_seed_mean", "wer_ci95", "wer_per_seed", "seed_sd"} for A and, with B, also
    "p_lower" (one-sided: the fraction of rounds in which A's seed-mean WER is not lower
    than B's; ties count against A), "delta" (A - B) and "delta_ci95".
    """
    ea, wa = _per_seed(errors_a, "errors_a"), _per_seed(words_a, "words_a")
    if ea.shape != wa.shape:
        raise ValueError(f"errors_a {ea.shape} and words_a {wa.shape} differ")
    per_seed_a = _ratio(ea.sum(1), wa.sum(1))
    out = {
        "wer_seed_mean": float(per_seed_a.mean()),
        "wer_per_seed": [float(x) for x in per_seed_a],
        "seed_sd": float(per_seed_a.std(ddof=1)) if per_seed_a.size > 1 else 0.0,
    }
    paired = errors_b is not None
    if paired:
        eb, wb = _per_seed(errors_b, "errors_b"), _per_seed(words_b, "words_b")
        if eb.shape != wb.shape or eb.shape[1] != ea.shape[1]:
            raise ValueError(f"B {eb.shape} must have A's items ({ea.shape[1]}) and match its words {wb.shape}")
        per_seed_b = _ratio(eb.sum(1), wb.sum(1))
    if n < 1:
        raise ValueError(f"rounds must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    stats_a, deltas, not_better = [], [], 0
    n_items = ea.shape[1]
    for start in range(0, n, _CHUNK):
        rounds = min(_CHUNK, n - start)
        items = rng.integers(0, n_items, size=(rounds, n_items))
        wer_a = _seed_mean_wer(ea, wa, _seed_draw(rng, rounds, ea.shape[0]), items)
        stats_a.append(wer_a)
        if paired:
            wer_b = _seed_mean_wer(eb, wb, _seed_draw(rng, rounds, eb.shape[0]), items)
            deltas.append(wer_a - wer_b)
            not_better += int(np.count_nonzero(wer_a >= wer_b))
    out["wer_ci95"] = list(_interval(np.concatenate(stats_a), out["wer_seed_mean"], level))
    if paired:
        delta = out["wer_seed_mean"] - float(per_seed_b.mean())
        out.update(p_lower=not_better / n, delta=delta,
                   delta_ci95=list(_interval(np.concatenate(deltas), delta, level)))
    return out
