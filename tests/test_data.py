"""Data layer: sentences, corpus plan, real-corpus readers, validation, features."""

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from e2etts.data.embedded import plan_embedded_corpus
from e2etts.data.features import FeatureSet, extract_features
from e2etts.data.readers import read_libritts, read_ljspeech, split_real_corpus
from e2etts.data.sentences import load_wordnet_sentences
from e2etts.data.validate import validate_manifest
from e2etts.errors import DataError, UserError


def _tone(path, seconds=1.0, sr=16000, channels=1, freq=220.0):
    t = np.arange(int(seconds * sr)) / sr
    wav = 0.3 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    if channels > 1:
        wav = np.stack([wav] * channels, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wav, sr)
    return str(path)


def test_wordnet_sentences_are_many_real_and_clean():
    sentences = load_wordnet_sentences(min_words=3, max_words=20)
    assert len(sentences) > 3000
    assert sentences == sorted(set(sentences))
    assert not any(ch.isdigit() for s in sentences[:5000] for ch in s)
    assert all(3 <= len(s.split()) <= 20 for s in sentences)


def test_wordnet_missing_gives_install_hint(tmp_path):
    with pytest.raises(UserError, match="wordnet-base"):
        load_wordnet_sentences(tmp_path)


def _plan(seed=1):
    speakers = [f"{v}_{i:02d}" for v in ("slt", "rms", "awb") for i in range(4)]
    sentences = [f"sentence number {w} here." for w in map(str, range(600))]
    sentences = [s.replace("0", "o") for s in sentences]
    return plan_embedded_corpus(sorted(set(sentences)), speakers, n_train=300, n_dev=30,
                                n_test_seen_speakers=2, n_test_unseen_speakers=2,
                                n_dev_unseen_speakers=1, test_utts_per_speaker=5, seed=seed)


def test_plan_is_deterministic_and_splits_are_clean():
    a, b = _plan(), _plan()
    pd.testing.assert_frame_equal(a, b)
    assert not _plan(seed=2).equals(a)
    train, dev, test = (a[a.split == s] for s in ("train", "dev", "test"))
    assert not set(test.text) & set(train.text) and not set(test.text) & set(dev.text)
    assert not set(dev.text) & set(train.text)
    unseen = set(test.speaker) - set(train.speaker)
    assert len(unseen) == 2 and set(test[test.seen].speaker) <= set(train.speaker)
    assert len(set(dev.speaker) - set(train.speaker)) == 1
    assert a.utt_id.is_unique


def test_plan_too_big_names_the_param():
    with pytest.raises(UserError, match="n_train"):
        plan_embedded_corpus(["a b c."] * 10, ["slt_00", "slt_01", "rms_00", "rms_01"], n_train=100,
                             n_dev=1, n_test_seen_speakers=1, n_test_unseen_speakers=1,
                             n_dev_unseen_speakers=0, test_utts_per_speaker=2, seed=0)


def test_ljspeech_reader(tmp_path):
    root = tmp_path / "LJSpeech-1.1"
    _tone(root / "wavs" / "LJ001-0001.wav", sr=22050)
    _tone(root / "wavs" / "LJ001-0002.wav", sr=22050)
    (root / "metadata.csv").write_text(
        'LJ001-0001|Printing, in 1 sense|Printing, in one sense\nLJ001-0002|"Hello" there|"Hello" there\n')
    df = read_ljspeech(root)
    assert list(df.utt_id) == ["LJ001-0001", "LJ001-0002"]
    assert df.text[0] == "printing, in one sense" and df.text[1] == "hello there"
    clean, report = validate_manifest(df.assign(split="train"), min_duration=0.5, max_duration=5)
    assert len(clean) == 2 and report["converted"]["resampled"] == 2
    with pytest.raises(UserError, match="metadata.csv"):
        read_ljspeech(tmp_path / "nowhere")


def test_libritts_reader_and_split(tmp_path):
    root = tmp_path / "LibriTTS" / "train-clean-100"
    for spk in ("19", "26", "32"):
        for i in range(4):
            stem = f"{spk}_198_{i:06d}_000000"
            wav = root / spk / "198" / f"{stem}.wav"
            _tone(wav, sr=24000, channels=2 if i == 0 else 1)
            wav.with_suffix(".normalized.txt").write_text(f"Sentence {chr(97 + i)} of speaker.")
    df = read_libritts(tmp_path / "LibriTTS")
    assert len(df) == 12 and set(df.speaker) == {"19", "26", "32"}
    split = split_real_corpus(df, dev_fraction=0.25, test_fraction=0.25, n_unseen_speakers=1, seed=0)
    test, train = split[split.split == "test"], split[split.split == "train"]
    assert not set(test.text) & set(train.text)
    assert (~split.seen).any() and set(split[~split.seen].split) == {"test"}
    clean, report = validate_manifest(split, min_duration=0.5, max_duration=5)
    assert report["converted"]["downmixed"] >= 1


def _row(tmp_path, name, **kw):
    base = {"utt_id": name, "speaker": "s", "text": "a fine sentence.", "wav": str(tmp_path / f"{name}.wav"), "split": "train"}
    base.update(kw)
    return base


@pytest.mark.parametrize(
    "case,make,pattern",
    [
        ("missing", lambda p: None, "does not exist"),
        ("corrupt", lambda p: p.write_bytes(b"RIFF\x00\x01garbage" * 10), "cannot decode"),
        ("empty", lambda p: p.write_bytes(b""), "empty"),
        ("short", lambda p: _tone(p, seconds=0.1), "duration 0.10 s outside"),
    ],
)
def test_bad_audio_rows_name_file_and_reason(tmp_path, case, make, pattern):
    row = _row(tmp_path, case)
    make(tmp_path / f"{case}.wav")
    with pytest.raises(DataError, match=pattern) as err:
        validate_manifest(pd.DataFrame([row]), min_duration=0.5, max_duration=5)
    assert row["wav"] in str(err.value)


@pytest.mark.parametrize("text,pattern", [("", "empty text"), ("costs 5 \u20ac", "outside the text vocabulary")])
def test_bad_text_rows(tmp_path, text, pattern):
    row = _row(tmp_path, "t", text=text)
    _tone(tmp_path / "t.wav")
    with pytest.raises(DataError, match=pattern):
        validate_manifest(pd.DataFrame([row]), min_duration=0.5, max_duration=5)


def test_skip_mode_drops_and_counts(tmp_path):
    good = _row(tmp_path, "good")
    _tone(tmp_path / "good.wav")
    stereo = _row(tmp_path, "stereo")
    _tone(tmp_path / "stereo.wav", sr=44100, channels=2)
    rows = [good, stereo, _row(tmp_path, "missing"), _row(tmp_path, "notext", text="  ")]
    _tone(tmp_path / "notext.wav")
    clean, report = validate_manifest(pd.DataFrame(rows), min_duration=0.5, max_duration=5, on_bad_row="skip")
    assert list(clean.utt_id) == ["good", "stereo"]
    assert report["rows_dropped"] == 2 and report["converted"] == {"downmixed": 1, "resampled": 1}
    assert abs(clean.duration[1] - 1.0) < 0.01


def test_features_round_trip_and_atomic(tmp_path):
    rows = [_row(tmp_path, f"u{i}") for i in range(3)]
    for i in range(3):
        _tone(tmp_path / f"u{i}.wav", seconds=0.5 + 0.25 * i)
    out = tmp_path / "feats.pt"
    extract_features(pd.DataFrame(rows), out)
    fs = FeatureSet(out)
    assert len(fs) == 3 and fs[0]["mel"].shape == (8000 // 160 + 1, 80)
    assert fs[2]["mel"].dtype == torch.float32 and fs.mel.dtype == torch.float16
    mean, std = fs.mel_stats()
    assert mean.shape == (80,) and (std > 0).all()
    bad = pd.DataFrame(rows + [_row(tmp_path, "gone")])
    out2 = tmp_path / "feats2.pt"
    with pytest.raises(DataError):
        extract_features(bad, out2)
    assert not out2.exists() and not list(tmp_path.glob(".feats2*"))
