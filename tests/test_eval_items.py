"""The seeded test list: prompt/target pairs of one speaker, seen and unseen speakers."""

import pandas as pd
import pytest

from e2etts.errors import UserError
from e2etts.evaluate.items import ITEM_COLUMNS, make_test_items


def _manifest(n_speakers=6, per_speaker=5):
    rows = []
    for s in range(n_speakers):
        for u in range(per_speaker):
            rows.append(
                {
                    "utt_id": f"spk{s}_{u:02d}",
                    "speaker": f"spk{s}",
                    "text": f"sentence {u} of speaker {s}.",
                    "wav": f"/data/spk{s}_{u:02d}.wav",
                    # one long and one very short utterance per speaker, the rest 2-6 s
                    "duration": {0: 9.0, 1: 0.8}.get(u, 2.5 + 0.5 * u),
                }
            )
    return pd.DataFrame(rows)


SEEN = {"spk0", "spk1", "spk2", "train_only"}


def test_items_are_valid_pairs_and_balanced():
    manifest = _manifest()
    items = make_test_items(manifest, 12, seed=0, seen_speakers=SEEN)
    assert list(items.columns) == ITEM_COLUMNS
    assert len(items) == 12 and items["item_id"].is_unique
    by_id = manifest.set_index("utt_id")
    for it in items.itertuples():
        assert it.prompt_utt_id != it.target_utt_id
        assert (
            by_id.loc[it.prompt_utt_id, "speaker"]
            == by_id.loc[it.target_utt_id, "speaker"]
            == it.speaker
        )
        assert it.target_text == by_id.loc[it.target_utt_id, "text"]
        assert it.prompt_wav == by_id.loc[it.prompt_utt_id, "wav"]
        assert it.seen == (it.speaker in SEEN)
        # Every speaker has 2-6 s utterances besides the target: the prompt is one of them.
        assert 2.0 <= by_id.loc[it.prompt_utt_id, "duration"] <= 6.0
    assert items["seen"].sum() == 6 and (~items["seen"]).sum() == 6
    assert items["target_utt_id"].is_unique
    assert items["speaker"].nunique() == 6  # round-robin over speakers
    assert set(items["seen"].head(2)) == {True, False}  # any prefix mixes both


def test_items_deterministic_and_order_free():
    manifest = _manifest()
    a = make_test_items(manifest, 10, seed=3, seen_speakers=SEEN)
    b = make_test_items(manifest.sample(frac=1.0, random_state=1), 10, seed=3, seen_speakers=SEEN)
    pd.testing.assert_frame_equal(a, b)
    c = make_test_items(manifest, 10, seed=4, seen_speakers=SEEN)
    assert not a.equals(c)


def test_items_top_up_from_other_half_and_errors():
    manifest = _manifest(n_speakers=3, per_speaker=4)  # spk0..2 all seen: 12 utterances
    items = make_test_items(manifest, 5, seed=0, seen_speakers=SEEN)
    assert items["seen"].all() and len(items) == 5
    with pytest.raises(UserError, match="at most 12 test items"):
        make_test_items(manifest, 13, seed=0, seen_speakers=SEEN)
    lonely = pd.DataFrame(
        [{"utt_id": "x", "speaker": "s", "text": "t", "wav": "w", "duration": 3.0}]
    )
    with pytest.raises(UserError, match="2\\+ utterances"):
        make_test_items(lonely, 1, seed=0, seen_speakers=set())
    with pytest.raises(UserError, match="lacks column"):
        make_test_items(manifest.drop(columns=["duration"]), 1, seed=0, seen_speakers=SEEN)
