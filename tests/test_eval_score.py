"""Scoring a system with stand-in judges: failures count, never crash; summary flags/tests."""

import json

import numpy as np
import pandas as pd
import pytest

from e2etts.audio import save_wav
from e2etts.errors import UserError
from e2etts.evaluate.score import score_system, summarize
from e2etts.evaluate.stats import paired_bootstrap_pvalue

SR = 16000


class EchoASR:
    """Stand-in WER judge: 'hears' the item's sentence when the tone is loud, else noise."""

    name = "echo-asr"
    cache_key = "echo-asr|v1"

    def __init__(self, texts_by_peak):
        self.texts_by_peak = texts_by_peak
        self.calls = 0

    def transcribe(self, wav):
        self.calls += 1
        return self.texts_by_peak[round(float(np.abs(wav).max()), 1)]


class ToneSIM:
    """Stand-in SIM judge: the embedding is the tone's frequency on a circle."""

    name = "tone-sim"

    def embed(self, wav):
        freq = np.argmax(np.abs(np.fft.rfft(wav[:SR]))) / 1000.0
        return np.array([np.cos(freq), np.sin(freq)])


def _tone(freq, peak, seconds=0.5):
    t = np.arange(int(SR * seconds)) / SR
    return (peak * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture
def setup(tmp_path):
    # Not number words: Whisper's normalizer writes "one two three four" as one token, "1234".
    texts = ["red green blue black", "cat dog fish", "sun moon star", "a b c d e"]
    items = pd.DataFrame(
        {
            "item_id": [f"item{i:04d}" for i in range(4)],
            "speaker": ["s1", "s2", "s1", "s2"],
            "seen": [True, False, True, False],
            "prompt_wav": [str(tmp_path / f"prompt{i % 2}.wav") for i in range(4)],
            "prompt_text": ["p"] * 4,
            "target_text": texts,
        }
    )
    save_wav(tmp_path / "prompt0.wav", _tone(300, 0.5))
    save_wav(tmp_path / "prompt1.wav", _tone(700, 0.5))
    out = tmp_path / "sys"
    save_wav(out / "item0000.wav", _tone(300, 0.5))  # perfect
    save_wav(out / "item0001.wav", _tone(300, 0.3))  # wrong voice, one word wrong
    # item0002 missing, item0003 silent
    save_wav(out / "item0003.wav", np.zeros(SR // 2, dtype=np.float32))
    asr = EchoASR({0.5: "red green blue black", 0.3: "cat dog bird"})
    return items, out, asr


def test_score_system_counts_missing_and_silent(setup, tmp_path):
    items, out, asr = setup
    per, m = score_system(items, out, "sys", asr, ToneSIM(), rtf=0.5, n_boot=200)
    assert list(per["status"]) == ["ok", "ok", "missing", "silent"]
    assert list(per["errors"]) == [0, 1, 3, 5] and list(per["words"]) == [4, 3, 3, 5]
    assert per.loc[2, "wer"] == 1.0 and per.loc[3, "wer"] == 1.0
    assert per.loc[0, "sim"] == pytest.approx(1.0) and per.loc[2, "sim"] == 0.0
    assert per.loc[1, "sim"] < 0.99
    assert m["n_missing"] == 2 and m["n_items"] == 4
    assert m["wer"] == pytest.approx(9 / 15)
    assert m["wer_utt_mean"] == pytest.approx((0 + 1 / 3 + 1 + 1) / 4)
    assert m["wer_seen"] == pytest.approx(3 / 7) and m["wer_unseen"] == pytest.approx(6 / 8)
    assert m["wer_ci95"][0] <= m["wer"] <= m["wer_ci95"][1]
    assert m["sim_ci95"][0] <= m["sim"] <= m["sim_ci95"][1]
    assert m["rtf"] == 0.5 and m["asr_judge"] == "echo-asr" and m["sim_judge"] == "tone-sim"
    json.dumps(m)  # the metrics file is plain JSON
    assert asr.calls == 2


def test_all_missing_never_crashes(setup, tmp_path):
    items, _, asr = setup
    per, m = score_system(
        items, tmp_path / "nothing_here", "empty", asr, ToneSIM(), rtf=None, n_boot=50
    )
    assert m["wer"] == 1.0 and m["n_missing"] == 4 and m["sim"] == 0.0 and asr.calls == 0


def test_transcript_cache(setup, tmp_path):
    items, out, asr = setup
    cache = tmp_path / "cache" / "transcripts.json"
    per1, _ = score_system(items, out, "sys", asr, ToneSIM(), rtf=None, cache_path=cache, n_boot=50)
    assert asr.calls == 2 and cache.exists()
    per2, m2 = score_system(
        items, out, "sys", asr, ToneSIM(), rtf=None, cache_path=cache, n_boot=50
    )
    assert asr.calls == 2 and m2["transcripts_cached"] == 2
    pd.testing.assert_frame_equal(per1, per2)
    other = EchoASR(asr.texts_by_peak)
    other.cache_key = "another-judge"
    score_system(items, out, "sys", other, ToneSIM(), rtf=None, cache_path=cache, n_boot=50)
    assert other.calls == 2  # another judge does not reuse these transcripts


def _per_utt(errors, words, sims):
    n = len(errors)
    return pd.DataFrame(
        {"item_id": [f"i{k}" for k in range(n)], "errors": errors, "words": words, "sim": sims}
    )


def test_summarize_flags_and_pvalues():
    rng = np.random.default_rng(0)
    words = rng.integers(5, 15, size=40)
    per = {
        "gt_vocoded": _per_utt(rng.binomial(words, 0.05), words, rng.normal(0.8, 0.05, 40)),
        "cascade": _per_utt(rng.binomial(words, 0.12), words, rng.normal(0.6, 0.05, 40)),
        "e2e_full": _per_utt(rng.binomial(words, 0.06), words, rng.normal(0.65, 0.05, 40)),
        "broken": _per_utt(rng.binomial(words, 0.6), words, rng.normal(0.3, 0.05, 40)),
    }
    metrics = {
        name: {"wer": float(p["errors"].sum() / p["words"].sum()), "sim": float(p["sim"].mean())}
        for name, p in per.items()
    }
    one = {name: {None if name == "gt_vocoded" else 1: m} for name, m in metrics.items()}
    per_one = {name: {next(iter(one[name])): p} for name, p in per.items()}
    summary = summarize(one, per_one, n_boot=500)
    assert list(summary) == list(metrics)
    assert summary["broken"]["unintelligible"] and not summary["e2e_full"]["unintelligible"]
    assert summary["e2e_full"]["p_wer_lower_than_cascade"] < 0.05
    assert summary["e2e_full"]["p_sim_higher_than_cascade"] < 0.05
    assert summary["broken"]["p_wer_lower_than_cascade"] > 0.95
    assert "p_wer_lower_than_cascade" not in summary["cascade"]
    assert summary["e2e_full"]["wer_rank"] == 1 and summary["cascade"]["wer_rank"] == 2
    assert summary["broken"]["wer_rank"] is None and summary["gt_vocoded"]["wer_rank"] is None
    assert summary == summarize(one, per_one, n_boot=500)
    json.dumps(summary)
    # One seed: the seed-and-item test is the paired item bootstrap, number for number.
    a, b = per["e2e_full"], per["cascade"]
    assert summary["e2e_full"]["p_wer_lower_than_cascade"] == paired_bootstrap_pvalue(
        a["errors"], a["words"], b["errors"], b["words"], n=500, seed=0)
    assert summary["e2e_full"]["seeds"] == [1] and "seeds" not in summary["gt_vocoded"]
    # Without the topline nothing is flagged; without the baseline no tests.
    bare = summarize({"e2e_full": one["e2e_full"]}, {"e2e_full": per_one["e2e_full"]})
    assert (
        "unintelligible" not in bare["e2e_full"]
        and "p_wer_lower_than_cascade" not in bare["e2e_full"]
    )


def test_summary_counts_words_hit_and_empty_hypotheses():
    """A system the judge hears as silence must not look good on WER alone."""
    import pandas as pd

    from e2etts.evaluate.score import summarize

    def table(hyps):
        refs = ["the cat sat here", "a red door"]
        words = [4, 3]
        return pd.DataFrame({"item_id": ["i0", "i1"], "reference": refs, "hypothesis": hyps,
                             "errors": [0, 0], "words": words, "sim": [0.5, 0.5]})

    per_utt = {"cascade": table(["the dog sat there now", "red door"]), "quiet": table(["", ""])}
    metrics = {name: {1: {"wer": 1.0}} for name in per_utt}
    out = summarize(metrics, {name: {1: t} for name, t in per_utt.items()}, n_boot=10)
    assert out["cascade"]["word_hit_rate"] == pytest.approx(4 / 7)
    assert out["cascade"]["n_empty_hypotheses"] == 0
    assert out["quiet"]["word_hit_rate"] == 0.0 and out["quiet"]["n_empty_hypotheses"] == 2


def test_symbol_error_rate_counts_phones_not_characters():
    from e2etts.evaluate.curves import symbol_error_rate

    ref = [[40, 41, 42, 43]]  # four phone ids (multi-character symbols)
    assert symbol_error_rate(ref, [[40, 41, 42, 43]]) == 0.0
    assert symbol_error_rate(ref, [[40, 41, 99, 43]]) == pytest.approx(0.25)
    assert symbol_error_rate(ref, [[]]) == pytest.approx(1.0)  # empty hypothesis: all deleted
    assert symbol_error_rate(ref + [[5, 6]], [[40, 41, 42, 43], [5]]) == pytest.approx(1 / 6)


def _seed_runs(rng, words, seed_rates, sim):
    """{training seed: (metrics, per-utterance table)} of a system whose seeds have the
    given error rates."""
    runs = {}
    for k, rate in enumerate(seed_rates):
        table = _per_utt(rng.binomial(words, rate), words, rng.normal(sim, 0.05, len(words)))
        runs[100 + k] = ({"wer": float(table["errors"].sum() / table["words"].sum()),
                          "sim": float(table["sim"].mean()), "n_items": len(words)}, table)
    return runs


def test_summarize_over_seeds_tests_the_seed_not_one_lucky_run():
    """Three seeds a system: the row is the seed mean, with each seed's figure and the
    spread; against the cascade and the control, the p-value resamples seeds too."""
    rng = np.random.default_rng(3)
    words = rng.integers(5, 15, size=200)
    systems = {
        "cascade": _seed_runs(rng, words, [0.20, 0.21, 0.19], 0.60),
        "cascade_matched": _seed_runs(rng, words, [0.20, 0.20, 0.21], 0.60),
        # better at every seed
        "e2e_full": _seed_runs(rng, words, [0.15, 0.16, 0.15], 0.62),
        # one lucky seed, two worse ones: a one-run test on seed 100 alone would call it
        "e2e_lucky": _seed_runs(rng, words, [0.12, 0.28, 0.27], 0.60),
    }
    metrics = {n: {s: m for s, (m, _) in runs.items()} for n, runs in systems.items()}
    per = {n: {s: t for s, (_, t) in runs.items()} for n, runs in systems.items()}
    out = summarize(metrics, per, n_boot=1000)
    full = out["e2e_full"]
    assert full["seeds"] == [100, 101, 102]
    assert full["wer"] == pytest.approx(np.mean(full["wer_per_seed"]))
    assert full["wer_seed_sd"] == pytest.approx(np.std(full["wer_per_seed"], ddof=1))
    assert full["wer_ci95"][0] <= full["wer"] <= full["wer_ci95"][1]
    for baseline in ("cascade", "cascade_matched"):
        assert full[f"p_wer_lower_than_{baseline}"] < 0.05
        assert full[f"delta_wer_vs_{baseline}"] < 0 and full[f"delta_wer_vs_{baseline}_ci95"][1] < 0
    assert out["cascade_matched"]["p_wer_lower_than_cascade"] > 0.05
    assert "p_wer_lower_than_cascade_matched" not in out["cascade"]
    lucky = out["e2e_lucky"]
    first_seed_only = paired_bootstrap_pvalue(per["e2e_lucky"][100]["errors"], words,
                                              per["cascade"][100]["errors"], words, n=1000)
    assert first_seed_only < 0.05 and lucky["p_wer_lower_than_cascade"] > 0.2
    assert out["e2e_full"]["wer_rank"] == 1


def test_summarize_refuses_to_pool_seeds_decoded_differently():
    """A claim assembled over sessions: a seed synthesized on another grid is a different
    recipe; the row names the seeds and the setting instead of averaging them."""
    rng = np.random.default_rng(5)
    words = rng.integers(5, 15, size=50)
    runs = _seed_runs(rng, words, [0.2, 0.2, 0.2], 0.6)
    metrics = {"e2e_full": {s: m for s, (m, _) in runs.items()}}
    per = {"e2e_full": {s: t for s, (_, t) in runs.items()}}
    # written before the settings were recorded: they pool with each other, as before
    assert summarize(metrics, per, n_boot=10)["e2e_full"]["seeds"] == [100, 101, 102]
    grid = {"synthesis": {"n_steps": 3, "sway": -1.0}, "vocoder": {"type": "griffinlim", "iters": 32}}
    for m in metrics["e2e_full"].values():
        m["decoding"] = json.loads(json.dumps(grid))
    out = summarize(metrics, per, n_boot=10)["e2e_full"]
    assert out["seeds"] == [100, 101, 102] and out["decoding"] == grid
    metrics["e2e_full"][101]["decoding"]["synthesis"]["n_steps"] = 6
    with pytest.raises(UserError, match=r"e2e_full: .*s100/e2e_full.json: synthesis.n_steps=3.*"
                                        r"s101/e2e_full.json: synthesis.n_steps=6"):
        summarize(metrics, per, n_boot=10)
    metrics["e2e_full"][101]["decoding"]["synthesis"]["n_steps"] = 3
    del metrics["e2e_full"][102]["decoding"]
    with pytest.raises(UserError, match=r"s102/e2e_full.json: decoding not recorded"):
        summarize(metrics, per, n_boot=10)
    # one seed alone is never a mix
    assert summarize({"e2e_full": {102: metrics["e2e_full"][102]}}, {"e2e_full": {102: per["e2e_full"][102]}},
                     n_boot=10)["e2e_full"]["seeds"] == [102]
