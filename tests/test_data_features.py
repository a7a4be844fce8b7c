"""Feature file round trip, shapes and dtypes, statistics, atomicity."""

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from e2etts.audio import MelConfig, load_wav, log_mel
from e2etts.data.features import FeatureSet, extract_features
from e2etts.errors import DataError, UserError
from e2etts.text import decode


def _manifest(tmp_path, lengths):
    rng = np.random.default_rng(0)
    rows = []
    for i, n in enumerate(lengths):
        path = tmp_path / f"u{i}.wav"
        sf.write(str(path), (0.1 * rng.standard_normal(n)).astype(np.float32), 16000)
        rows.append(
            {
                "utt_id": f"u{i}",
                "speaker": f"s{i % 2}",
                "text": f"Utterance {'abc'[i % 3]}!",
                "wav": str(path),
            }
        )
    return pd.DataFrame(rows)


def test_round_trip(tmp_path):
    lengths = [8000, 12345, 16001, 600]
    frame = _manifest(tmp_path, lengths)
    out = tmp_path / "feats" / "train.pt"
    summary = extract_features(frame, out, threads=2)
    assert torch.get_num_threads() == 1  # restored (conftest sets 1)
    fs = FeatureSet(out)
    assert len(fs) == 4 and summary["utterances"] == 4
    assert fs.lengths.tolist() == [n // 160 + 1 for n in lengths]
    assert fs.mel.dtype == torch.float16 and fs.mel.shape == (
        sum(n // 160 + 1 for n in lengths),
        80,
    )
    assert fs.offsets.tolist() == [0, *np.cumsum(fs.lengths.tolist())[:-1].tolist()]
    assert fs.mel_config == MelConfig()
    item = fs[1]
    assert set(item) == {"utt_id", "speaker", "text_ids", "mel"}
    assert item["utt_id"] == "u1" and item["speaker"] == "s1"
    assert item["mel"].dtype == torch.float32 and item["mel"].shape == (12345 // 160 + 1, 80)
    assert decode(item["text_ids"]) == "utterance b!" and item["text_ids"].dtype == torch.long
    expected = log_mel(load_wav(frame.wav[1]))
    assert torch.allclose(item["mel"], expected, atol=0.02, rtol=0.01)
    assert fs[-1]["utt_id"] == "u3"
    with pytest.raises(IndexError):
        fs[4]
    mean, std = fs.mel_stats()
    assert mean.shape == std.shape == (80,) and (std > 0).all()
    full = fs.mel.double()
    assert torch.allclose(mean.double(), full.mean(0), atol=1e-4)
    assert torch.allclose(std.double(), full.std(0), atol=1e-3)
    # Text and tokens only (the LLM's and the reward model's sets): the mel is not kept.
    textual = FeatureSet(out, with_mel=False)
    assert textual.mel is None and set(textual[1]) == {"utt_id", "speaker", "text_ids"}
    assert torch.equal(textual[1]["text_ids"], item["text_ids"]) and textual.lengths.tolist() == fs.lengths.tolist()
    raw = torch.load(out, weights_only=True)
    assert set(raw) == {
        "utt_id",
        "speaker",
        "text",
        "text_ids",
        "mel",
        "offsets",
        "lengths",
        "mel_config",
        "text_frontend",
    }


def test_failure_midway_leaves_nothing(tmp_path):
    frame = _manifest(tmp_path, [8000, 8000, 8000])
    frame.loc[1, "wav"] = str(tmp_path / "gone.wav")
    out = tmp_path / "dev.pt"
    with pytest.raises(DataError, match="gone.wav"):
        extract_features(frame, out)
    assert (
        not out.exists()
        and list(tmp_path.glob("*.pt*")) == []
        and list(tmp_path.glob(".dev*")) == []
    )
    bad_text = _manifest(tmp_path, [8000]).assign(text="5 euros")
    with pytest.raises(DataError, match="outside the text vocabulary"):
        extract_features(bad_text, out)
    assert not out.exists()
    with pytest.raises(DataError, match="too short"):
        extract_features(_manifest(tmp_path, [300]), out)
    assert not out.exists()


def test_missing_inputs(tmp_path):
    with pytest.raises(UserError, match="empty manifest"):
        extract_features(_manifest(tmp_path, [800]).iloc[:0], tmp_path / "x.pt")
    with pytest.raises(DataError, match="extract_features"):
        FeatureSet(tmp_path / "nope.pt")


def test_phone_front_end_is_stored_and_read_back(tmp_path):
    from e2etts.text import PHONE_TO_ID, encode_text

    frame = _manifest(tmp_path, [8000, 9000])
    out = tmp_path / "phones.pt"
    extract_features(frame, out, text_frontend="phones")
    fs = FeatureSet(out)
    assert fs.text_frontend == "phones"
    for i, text in enumerate(fs.texts):
        assert fs[i]["text_ids"].tolist() == encode_text(text, "phones")
        assert any(int(t) in PHONE_TO_ID.values() for t in fs[i]["text_ids"])


def test_tokenized_set_checks_its_utterances_and_can_leave_out_the_mel(tmp_path):
    from e2etts.tokens import TokenizedSet

    out = tmp_path / "feats.pt"
    extract_features(_manifest(tmp_path, [8000, 9600]), out)
    tokens = [torch.arange(3), torch.arange(4)]
    good, bad = tmp_path / "tokens.pt", tmp_path / "other.pt"
    torch.save({"utt_id": ["u0", "u1"], "tokens": tokens, "fsq_levels": [4, 4]}, good)
    torch.save({"utt_id": ["u1", "u0"], "tokens": tokens, "fsq_levels": [4, 4]}, bad)
    with pytest.raises(UserError, match="other.pt: utterances differ"):
        TokenizedSet(out, bad)
    full, textual = TokenizedSet(out, good), TokenizedSet(out, good, with_mel=False)
    assert "mel" in full[1] and torch.equal(full[1]["tokens"], tokens[1])
    assert set(textual[1]) == {"utt_id", "speaker", "text_ids", "tokens"}
