"""Bootstrap confidence intervals and paired bootstrap tests (utterances resampled)."""

from __future__ import annotations

import numpy as np


def corpus_wer(errors: np.ndarray, words: np.ndarray) -> float:
    return float(errors.sum() / max(1, words.sum()))


def bootstrap_ci_wer(errors, words, n: int = 1000, seed: int = 0, alpha: float = 0.05) -> tuple[float, float]:
    errors, words = np.asarray(errors, float), np.asarray(words, float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(errors), size=(n, len(errors)))
    stats = errors[idx].sum(1) / np.maximum(1, words[idx].sum(1))
    return float(np.quantile(stats, alpha / 2)), float(np.quantile(stats, 1 - alpha / 2))


def bootstrap_ci_mean(values, n: int = 1000, seed: int = 0, alpha: float = 0.05) -> tuple[float, float]:
    values = np.asarray(values, float)
    rng = np.random.default_rng(seed)
    stats = values[rng.integers(0, len(values), size=(n, len(values)))].mean(1)
    return float(np.quantile(stats, alpha / 2)), float(np.quantile(stats, 1 - alpha / 2))


def paired_bootstrap_wer(errors_a, words_a, errors_b, words_b, n: int = 2000, seed: int = 0) -> float:
    """One-sided p-value for "A has lower corpus WER than B": the fraction of paired
    resamples in which A is not better (WER_A >= WER_B). Same items, same order."""
    ea, wa, eb, wb = (np.asarray(x, float) for x in (errors_a, words_a, errors_b, words_b))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(ea), size=(n, len(ea)))
    wer_a = ea[idx].sum(1) / np.maximum(1, wa[idx].sum(1))
    wer_b = eb[idx].sum(1) / np.maximum(1, wb[idx].sum(1))
    return float(np.mean(wer_a >= wer_b))


def paired_bootstrap_mean(values_a, values_b, n: int = 2000, seed: int = 0) -> float:
    """One-sided p-value for "A has a higher mean than B" (e.g. SIM)."""
    a, b = np.asarray(values_a, float), np.asarray(values_b, float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n, len(a)))
    return float(np.mean(a[idx].mean(1) <= b[idx].mean(1)))
