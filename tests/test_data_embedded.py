"""The embedded corpus plan: splits by sentence, held-out speakers, determinism, errors."""

import pandas as pd
import pytest

from e2etts.data.embedded import plan_embedded_corpus
from e2etts.data.sentences import load_wordnet_sentences
from e2etts.data.voices import base_voice_of
from e2etts.errors import UserError

SPEAKERS = [f"{v}_{i:02d}" for v in ("slt", "rms", "awb", "kal16") for i in range(8)]
KW = dict(n_train=4000, n_dev=200, n_test_seen_speakers=8, n_test_unseen_speakers=4,
          n_dev_unseen_speakers=2, test_utts_per_speaker=25)  # fmt: skip


@pytest.fixture(scope="module")
def sentences():
    return load_wordnet_sentences()


@pytest.fixture(scope="module")
def plan(sentences):
    return plan_embedded_corpus(sentences, SPEAKERS, seed=1234, **KW)


def test_plan_is_deterministic(sentences, plan):
    again = plan_embedded_corpus(
        list(reversed(sentences)), list(reversed(SPEAKERS)), seed=1234, **KW
    )
    pd.testing.assert_frame_equal(plan, again)
    assert not plan.equals(plan_embedded_corpus(sentences, SPEAKERS, seed=7, **KW))
    assert list(plan.columns) == ["utt_id", "speaker", "text", "split", "seen"]
    assert plan.utt_id.is_unique


def test_sentences_never_cross_splits(plan):
    text = {s: set(plan[plan.split == s].text) for s in ("train", "dev", "test")}
    assert not text["test"] & text["train"] and not text["test"] & text["dev"]
    assert not text["dev"] & text["train"]
    counts = plan.split.value_counts()
    assert counts["train"] == 4000 and counts["dev"] == 200 and counts["test"] == 12 * 25
    # each train sentence spoken once; each test utterance a distinct sentence
    assert plan[plan.split == "train"].text.is_unique
    assert plan[plan.split == "test"].text.is_unique


def test_speakers(plan):
    train = plan[plan.split == "train"]
    test = plan[plan.split == "test"]
    dev = plan[plan.split == "dev"]
    train_spk = set(train.speaker)
    assert len(train_spk) == 32 - 6
    per_speaker = train.speaker.value_counts()
    assert per_speaker.max() - per_speaker.min() <= 1  # rotation
    unseen_test = set(test.speaker) - train_spk
    unseen_dev = set(dev.speaker) - train_spk
    assert len(unseen_test) == 4 and len(unseen_dev) == 2 and not unseen_test & unseen_dev
    assert len(set(test.speaker) & train_spk) == 8
    assert (test.groupby("speaker").size() == 25).all()
    # held-out speakers are spread over the base voices
    heldout = unseen_test | unseen_dev
    assert len({base_voice_of(s) for s in heldout}) == 4
    # dev mixes training and unseen speakers
    assert 0 < (~dev.seen).sum() < len(dev)
    assert (plan.seen == plan.speaker.isin(train_spk)).all()
    assert set(plan[~plan.seen].split) <= {"dev", "test"}


@pytest.mark.parametrize(
    "change,param",
    [
        (dict(n_train=50_000), "n_train"),
        (dict(n_test_seen_speakers=40), "n_test_seen_speakers"),
        (dict(n_test_unseen_speakers=30, n_dev_unseen_speakers=2), "n_test_unseen_speakers"),
    ],
)
def test_too_big_requests_name_the_param(sentences, change, param):
    with pytest.raises(UserError, match=param):
        plan_embedded_corpus(sentences, SPEAKERS, seed=0, **{**KW, **change})
