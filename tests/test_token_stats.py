"""Token diagnostics (issue 16): H(X_n) and the bias-corrected I(X_{n+1}; X_n) on synthetic
code sequences whose values are known, the token-stats CLI, and the summary/report rows.

Tolerances were measured over seeds, not guessed (seed 0 is what runs here):
- i.i.d. uniform codes, K = 1,024, 100,000 pairs: the raw plug-in MI is ~3.47 bits (almost
  every pair is unique in 10^6 cells); the corrected value over 10 seeds has sd 0.0013 bits
  and |max| 0.0024 -> tolerance 0.01 bits (~8 sd).
- 4-state Markov chain, 99,800 pairs: sd of the corrected estimate over 20 seeds 0.0042 bits,
  |max error| 0.009 -> tolerance 0.02 bits (~5 sd).
- copy sequences, K = 16, 98,000 pairs: the raw MI equals the plug-in entropy of the pairs
  exactly; the corrected value is H minus the baseline, whose size the asymptotic null bias
  (K-1)^2 / (2 N ln 2) = 0.0017 bits predicts -> tolerance 0.01 bits.
"""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from e2etts.cli import main
from e2etts.report.html import build_report, token_rows
from e2etts.token_stats import (
    add_token_stats,
    consecutive_pairs,
    entropy_bits_from_counts,
    plugin_mi_bits,
    shuffled_mi_bits,
    token_stats,
    unigram_entropy_bits,
)


def _h(p) -> float:
    p = np.asarray(p, float)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def test_entropy_of_known_distributions():
    assert entropy_bits_from_counts([4, 2, 1, 1]) == pytest.approx(1.75)
    assert entropy_bits_from_counts([0, 0, 5]) == 0.0
    # codes 0..3 with probabilities 1/2, 1/4, 1/8, 1/8, split over utterances
    seqs = [torch.tensor([0, 0, 1]), torch.tensor([0, 0, 1, 2, 3]), []]
    assert unigram_entropy_bits(seqs, 8) == pytest.approx(1.75)
    uniform = [np.arange(1024)] * 3
    assert unigram_entropy_bits(uniform, 1024) == pytest.approx(10.0)


def test_pairs_stay_inside_utterances():
    prev, nxt = consecutive_pairs([[1, 2, 3], [4], [], torch.tensor([5, 6])])
    assert prev.tolist() == [1, 2, 5] and nxt.tolist() == [2, 3, 6]


def test_no_mutual_information_leaks_across_utterance_boundaries():
    """Utterance i is (x_i, y_i), y_i independent of x_i, and x_{i+1} = y_i: pairs that crossed
    a boundary would be copies (every other pair of the joined sequence: 0.78 bits of MI on 8
    codes); within utterances there is none."""
    rng = np.random.default_rng(0)
    chain = rng.integers(0, 8, 20_001)
    seqs = [chain[i : i + 2] for i in range(20_000)]
    stats = token_stats(seqs, 8)
    assert stats["n_pairs"] == 20_000
    assert abs(stats["mi_bits"]) < 0.01
    # the same codes read as one long utterance: the crossing pairs carry the dependence
    joined = token_stats([np.concatenate(seqs)], 8)
    assert joined["mi_bits"] == pytest.approx(0.78, abs=0.05)


def test_independent_uniform_codes_correct_to_zero():
    rng = np.random.default_rng(0)
    seqs = list(rng.integers(0, 1024, size=(200, 501)))
    stats = token_stats(seqs, 1024)
    assert stats["n_pairs"] == 200 * 500
    assert stats["mi_bits_raw"] > 3.0  # the plug-in bias on 10^6 cells
    assert stats["mi_bits_shuffled"] == pytest.approx(stats["mi_bits_raw"], abs=0.01)
    assert abs(stats["mi_bits"]) < 0.01
    assert stats["entropy_bits"] == pytest.approx(10.0, abs=0.02)


def test_copy_sequences_give_mi_equal_to_entropy():
    rng = np.random.default_rng(0)
    seqs = [np.full(50, c) for c in rng.integers(0, 16, 2000)]  # X_{n+1} = X_n in each utterance
    stats = token_stats(seqs, 16)
    prev, _ = consecutive_pairs(seqs)
    h_pairs = entropy_bits_from_counts(np.bincount(prev, minlength=16))
    assert stats["mi_bits_raw"] == pytest.approx(h_pairs, abs=1e-9)
    assert stats["mi_bits"] == pytest.approx(stats["entropy_bits"], abs=0.01)
    assert stats["entropy_bits"] == pytest.approx(4.0, abs=0.02)
    null_bias = 15**2 / (2 * stats["n_pairs"] * math.log(2))
    assert 0.5 * null_bias < stats["mi_bits_shuffled"] < 2 * null_bias


def test_markov_chain_matches_its_analytic_mi():
    P = np.array(
        [
            [0.7, 0.1, 0.1, 0.1],
            [0.2, 0.5, 0.2, 0.1],
            [0.05, 0.05, 0.8, 0.1],
            [0.25, 0.25, 0.25, 0.25],
        ]
    )
    w, v = np.linalg.eig(P.T)
    pi = np.real(v[:, np.argmin(abs(w - 1))])
    pi /= pi.sum()
    analytic = _h(pi) - sum(pi[i] * _h(P[i]) for i in range(4))  # H(X') - H(X' | X)
    rng = np.random.default_rng(0)
    n_utt, length = 200, 500
    x = np.zeros((n_utt, length), np.int64)
    x[:, 0] = np.searchsorted(np.cumsum(pi), rng.random(n_utt), side="right")
    cum = np.cumsum(P, 1)
    for t in range(1, length):
        x[:, t] = (rng.random(n_utt)[:, None] > cum[x[:, t - 1]]).sum(1)
    stats = token_stats(list(x), 4)
    assert analytic == pytest.approx(0.4707, abs=1e-3)
    assert stats["mi_bits"] == pytest.approx(analytic, abs=0.02)
    assert stats["entropy_bits"] == pytest.approx(_h(pi), abs=0.02)


def test_baseline_is_seeded_and_keeps_marginals():
    rng = np.random.default_rng(1)
    prev, nxt = rng.integers(0, 32, 5000), rng.integers(0, 32, 5000)
    a = shuffled_mi_bits(prev, nxt, 32, seed=3)
    assert a == shuffled_mi_bits(prev, nxt, 32, seed=3)
    assert a != shuffled_mi_bits(prev, nxt, 32, seed=4)
    with pytest.raises(ValueError, match="outside a codebook"):
        plugin_mi_bits(prev, nxt, 16)


def test_token_stats_cli_writes_old_and_new_keys(tmp_path, capsys):
    rng = np.random.default_rng(0)
    paths = []
    for split, n in (("train", 30), ("dev", 5)):
        path = tmp_path / f"{split}.pt"
        tokens = [torch.as_tensor(rng.integers(0, 16, rng.integers(1, 40))) for _ in range(n)]
        torch.save(
            {"utt_id": [f"u{i}" for i in range(n)], "tokens": tokens, "fsq_levels": [4, 4]}, path
        )
        paths.append(str(path))
    out = tmp_path / "tokens_x.json"
    assert main(["token-stats", "--tokens", *paths, "--out", str(out)]) == 0
    stats = json.loads(out.read_text())
    assert set(stats) == {"train", "dev"}
    for split in stats.values():
        for key in (
            "code_usage",
            "code_perplexity",
            "code_entropy_bits",
            "entropy_bits",
            "mi_bits_raw",
            "mi_bits_shuffled",
            "mi_bits",
            "n_pairs",
        ):
            assert key in split
        assert split["entropy_bits"] == pytest.approx(split["code_entropy_bits"], abs=1e-5)
        assert split["mi_bits"] == pytest.approx(split["mi_bits_raw"] - split["mi_bits_shuffled"])
    assert main(["token-stats", "--tokens", str(tmp_path / "nope.pt"), "--out", str(out)]) == 2
    assert "token file not found" in capsys.readouterr().err


def _tok(h, mi):
    return {
        "entropy_bits": h,
        "mi_bits_raw": mi + 0.5,
        "mi_bits_shuffled": 0.5,
        "mi_bits": mi,
        "n_pairs": 1234,
    }


def test_summary_rows_and_report_table(tmp_path):
    summary = {
        name: {"wer": 0.1, "sim": 0.8, "topline": name.startswith(("gt", "resynth"))}
        for name in ("gt", "resynth_cascade", "cascade", "e2e_full", "e2e<tok>")
    }
    stats = {
        "cascade": [{"train": _tok(8.27, 1.84), "dev": _tok(8.3, 0.85)}],
        "e2e<tok>": [{"train": _tok(8.5, 2.0)}, {"train": _tok(8.7, 2.2)}],  # two seeds
    }
    tokenizer_of = {
        "resynth_cascade": "cascade",
        "cascade": "cascade",
        "e2e_full": "e2e<tok>",
        "e2e<tok>": "e2e<tok>",
        "absent_system": "cascade",
    }
    add_token_stats(summary, stats, tokenizer_of)
    assert "tokenizer" not in summary["gt"]
    assert (
        summary["cascade"]["token_mi_bits"] == 1.84 and summary["cascade"]["token_split"] == "train"
    )
    assert summary["e2e_full"]["token_entropy_bits"] == pytest.approx(8.6)
    assert summary["e2e_full"]["token_entropy_bits_per_seed"] == [8.5, 8.7]
    assert "token_entropy_bits_per_seed" not in summary["cascade"]
    assert summary["resynth_cascade"]["token_mi_bits_shuffled"] == 0.5
    rows = token_rows(summary)
    assert [r["tokenizer"] for r in rows] == ["cascade", "e2e<tok>"]
    assert rows[0]["used by"] == "resynth_cascade, cascade" and rows[0]["pairs"] == "1,234"
    assert rows[1]["I corrected (bits)"] == "2.100"
    build_report(summary, {}, pd.DataFrame(), {}, {}, tmp_path, n_audio=0)
    page = (tmp_path / "index.html").read_text()
    readme = (tmp_path / "README.md").read_text()
    assert (
        "<h2>Token diagnostics</h2>" in page and "e2e&lt;tok&gt;" in page and "e2e<tok>" not in page
    )
    assert (
        "## Token diagnostics" in readme
        and "| cascade | resynth_cascade, cascade | train |" in readme
    )
    with pytest.raises(Exception, match="no 'test' split"):
        add_token_stats(summary, stats, tokenizer_of, split="test")


def test_summarize_cli_adds_token_figures_by_tokenizer(tmp_path, capsys):
    per_utt = pd.DataFrame(
        {
            "item_id": ["a", "b"],
            "errors": [1, 0],
            "words": [4, 4],
            "wer": [0.25, 0.0],
            "sim": [0.8, 0.7],
            "reference": ["w x y z"] * 2,
            "hypothesis": ["w x y", "w x y z"],
        }
    )
    metrics = []
    for name in ("gt", "cascade", "resynth_cascade"):
        (tmp_path / f"{name}.json").write_text(json.dumps({"wer": 0.125, "sim": 0.75}))
        per_utt.to_csv(tmp_path / f"{name}.tsv", sep="\t", index=False)
        metrics.append(str(tmp_path / f"{name}.json"))
    tokens = tmp_path / "tokens_cascade.json"
    tokens.write_text(json.dumps({"train": _tok(8.27, 1.84)}))
    out = tmp_path / "summary.json"
    args = ["summarize", "--metrics", *metrics, "--token-stats", str(tokens), "--out", str(out)]
    mapping = ["--tokenizer-of", "cascade=cascade", "resynth_cascade=cascade"]
    assert main(args + mapping) == 0
    summary = json.loads(out.read_text())
    assert summary["cascade"]["token_mi_bits"] == 1.84
    assert summary["resynth_cascade"]["tokenizer"] == "cascade"
    assert "token_mi_bits" not in summary["gt"]
    assert main(args + ["--tokenizer-of", "cascade=e2e_tok"]) == 2
    assert "no token statistics for tokenizer 'e2e_tok'" in capsys.readouterr().err
    assert main(args + ["--tokenizer-of", "cascade"]) == 2
    assert "expected NAME=TOKENIZER" in capsys.readouterr().err
