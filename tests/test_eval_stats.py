"""Bootstrap intervals and paired bootstrap tests."""

import numpy as np
import pytest

from e2etts.evaluate.stats import (
    bootstrap_ci_mean,
    bootstrap_ci_wer,
    corpus_wer,
    paired_bootstrap_pvalue,
    paired_bootstrap_pvalue_sim,
    seed_item_bootstrap,
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


def _seeded_system(rng, words, seed_rates, item_sd=0.0):
    """(seeds, items) word errors: each seed its own WER level, items binomial around it
    (plus an item-difficulty term shared by nothing)."""
    rates = np.clip(np.asarray(seed_rates)[:, None] + rng.normal(0, item_sd, size=(len(seed_rates), words.size)), 0, 1)
    return rng.binomial(np.broadcast_to(words, rates.shape), rates)


def test_seed_item_bootstrap_detects_a_seed_level_effect():
    """A better than B in every seed by more than the seed spread: detected."""
    rng = np.random.default_rng(0)
    words = rng.integers(5, 20, size=200)
    a = _seeded_system(rng, words, [0.30, 0.31, 0.29])
    b = _seeded_system(rng, words, [0.40, 0.41, 0.39])
    out = seed_item_bootstrap(a, np.broadcast_to(words, a.shape), b, np.broadcast_to(words, b.shape), n=1000)
    assert out["p_lower"] < 0.01
    assert out["delta"] < 0 and out["delta_ci95"][1] < 0
    assert len(out["wer_per_seed"]) == 3 and 0 < out["seed_sd"] < 0.03
    assert out["wer_ci95"][0] <= out["wer_seed_mean"] <= out["wer_ci95"][1]


def test_seed_item_bootstrap_does_not_take_seed_noise_for_an_effect():
    """No difference between systems, but seeds scatter (sd 0.05): one seed of each gives
    a confident item-level paired test; the seed-aware test over three seeds does not."""
    rng = np.random.default_rng(3)
    words = rng.integers(5, 20, size=200)
    w3 = np.broadcast_to(words, (3, words.size))
    a = _seeded_system(rng, words, [0.30, 0.41, 0.36])  # the same distribution of seed levels:
    b = _seeded_system(rng, words, [0.38, 0.33, 0.43])  # mean 0.357 vs 0.380
    # The single-seed comparison (seed 0 of each): 0.30 vs 0.38, "significant".
    assert paired_bootstrap_pvalue(a[0], words, b[0], words, n=1000) < 0.01
    out = seed_item_bootstrap(a, w3, b, w3, n=2000)
    assert 0.05 < out["p_lower"] < 0.95
    assert out["delta_ci95"][0] < 0 < out["delta_ci95"][1]


def test_seed_item_bootstrap_one_seed_is_the_paired_item_bootstrap():
    rng = np.random.default_rng(1)
    words = rng.integers(5, 20, size=80)
    good, bad = rng.binomial(words, 0.1), rng.binomial(words, 0.3)
    out = seed_item_bootstrap(good, words, bad, words, n=1000, seed=0)
    assert out["p_lower"] < 0.01 and out["seed_sd"] == 0.0
    assert out["wer_seed_mean"] == corpus_wer(good, words)
    assert seed_item_bootstrap(good, words, bad, words, n=300, seed=5) == seed_item_bootstrap(
        good, words, bad, words, n=300, seed=5
    )
    with pytest.raises(ValueError, match="must have A's items"):
        seed_item_bootstrap(good, words, bad[:10], words[:10], n=10)
