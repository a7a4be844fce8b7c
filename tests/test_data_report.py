"""Corpus report figures and the resemblyzer speaker-distinctness check."""

import pandas as pd
import pytest

from e2etts.data.report import corpus_report, speaker_distinctness
from e2etts.data.synth import synthesize_corpus
from e2etts.data.voices import make_spec


def _frame(rows):
    return pd.DataFrame(rows, columns=["utt_id", "speaker", "text", "duration"])


def test_corpus_report_counts_and_overlaps():
    manifests = {
        "train": _frame(
            [("a", "s1", "one.", 1800.0), ("b", "s2", "two.", 1800.0), ("c", "s1", "Two.", 3600.0)]
        ),
        "dev": _frame([("d", "s1", "three.", 10.0), ("e", "s3", "two.", 10.0)]),
        "test": _frame(
            [("f", "s2", "four.", 5.0), ("g", "s4", "three.", 5.0), ("h", "s4", "one.", 5.0)]
        ),
    }
    r = corpus_report(manifests)
    assert r["splits"]["train"] == {
        "utterances": 3, "speakers": 2, "seen_speakers": 2, "unseen_speakers": 0,
        "distinct_sentences": 2, "hours": 2.0,
    }  # fmt: skip
    assert r["splits"]["test"]["seen_speakers"] == 1 and r["splits"]["test"]["unseen_speakers"] == 1
    assert r["overlap"] == {
        "test_vs_train_sentences": 1,
        "test_vs_dev_sentences": 1,
        "dev_vs_train_sentences": 1,
    }
    assert (
        r["clean"] is False
        and r["total"]["speakers"] == 4
        and r["total"]["distinct_sentences"] == 4
    )


@pytest.mark.slow
def test_speaker_distinctness_separates_voices(tmp_path):
    speakers = {s.name: s for s in (make_spec("slt_00", "slt"), make_spec("rms_00", "rms"),
                                    make_spec("slt_01", "slt", formant=0.83, f0=1.25))}  # fmt: skip
    texts = [
        "The dog barked all night long.",
        "Hold your breath while I count.",
        "She sighed sadly at the news.",
    ]
    plan = pd.DataFrame([(f"{s}-{i}", s, t) for s in speakers for i, t in enumerate(texts)],
                        columns=["utt_id", "speaker", "text"])  # fmt: skip
    manifest = synthesize_corpus(plan, speakers, tmp_path)
    r = speaker_distinctness(manifest, n_per_speaker=3, seed=0)
    assert r["speakers"] == 3 and r["utterances_per_speaker"] == 3
    assert r["same_speaker_cosine"] > r["same_base_voice_cosine"] > r["different_speaker_cosine"]
    assert r["nearest_other_below_own"] == 1.0 and r["nearest_centroid_accuracy"] == 1.0
    assert r["per_speaker"]["slt_00"]["nearest_other"] == "slt_01"
