"""Bootstrap intervals and paired bootstrap tests."""

import numpy as np
import pytest

from e2etts.evaluate.stats import (
    bootstrap_ci_mean,
    bootstrap_ci_wer,
    corpus_wer,
    paired_bootstrap_pvalue,
    paired_bootstrap_pvalue_sim,
)


def _fake_system(rng, n, error_rate):
    words = rng.integers(5, 20, size=n)
    errors = rng.binomial(words, error_rate)
    return errors, words


def test_ci_contains_point_estimate_and_is_deterministic():
    rng = np.random.default_rng(1)
    errors, words = _fake_system(rng, 60, 0.2)
    point = corpus_wer(errors, words)
    lo, hi = bootstrap_ci_wer(errors, words, n=500, seed=3)
    assert lo <= point <= hi and hi - lo > 0.01
    assert bootstrap_ci_wer(errors, words, n=500, seed=3) == (lo, hi)
    assert bootstrap_ci_wer(errors, words, n=500, seed=4) != (lo, hi)
    sims = rng.normal(0.7, 0.1, size=60)
    lo, hi = bootstrap_ci_mean(sims, n=500, seed=0)
    assert lo <= sims.mean() <= hi
    assert bootstrap_ci_mean(sims, n=500, seed=0) == (lo, hi)


def test_ci_degenerate_inputs():
    assert bootstrap_ci_wer([2], [4], n=50) == (0.5, 0.5)
    assert bootstrap_ci_wer([0, 0], [3, 5], n=50) == (0.0, 0.0)
    with pytest.raises(ValueError):
        bootstrap_ci_mean([], n=10)
    with pytest.raises(ValueError):
        bootstrap_ci_wer([1, 2], [3], n=10)


def test_paired_bootstrap_wer():
    rng = np.random.default_rng(0)
    words = rng.integers(5, 20, size=80)
    good = rng.binomial(words, 0.05)
    bad = rng.binomial(words, 0.30)
    assert paired_bootstrap_pvalue(good, words, bad, words, n=1000, seed=0) < 0.01
    assert paired_bootstrap_pvalue(bad, words, good, words, n=1000, seed=0) > 0.99
    # Two draws of the same system: no evidence either way.
    same_a, same_b = rng.binomial(words, 0.15), rng.binomial(words, 0.15)
    p = paired_bootstrap_pvalue(same_a, words, same_b, words, n=1000, seed=0)
    assert 0.02 < p < 0.98
    # Identical outputs: A is never better (ties count against A).
    assert paired_bootstrap_pvalue(good, words, good, words, n=200, seed=0) == 1.0
    assert paired_bootstrap_pvalue(
        good, words, bad, words, n=300, seed=7
    ) == paired_bootstrap_pvalue(good, words, bad, words, n=300, seed=7)


def test_paired_bootstrap_sim():
    rng = np.random.default_rng(0)
    base = rng.normal(0.6, 0.1, size=50)
    better = base + 0.05 + rng.normal(0, 0.02, size=50)
    assert paired_bootstrap_pvalue_sim(better, base, n=1000) < 0.01
    assert paired_bootstrap_pvalue_sim(base, better, n=1000) > 0.99
    noisy = base + rng.normal(0, 0.05, size=50)
    assert (
        0.02
        < paired_bootstrap_pvalue_sim(noisy, base + rng.normal(0, 0.05, size=50), n=1000)
        < 0.98
    )
    assert paired_bootstrap_pvalue_sim(better, base, n=300, seed=5) == paired_bootstrap_pvalue_sim(
        better, base, n=300, seed=5
    )
