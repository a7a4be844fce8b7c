"""Real-corpus readers (LJSpeech, LibriTTS layouts written here) and the sentence split."""

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from e2etts.audio import load_wav
from e2etts.data.readers import read_libritts, read_ljspeech, split_real_corpus
from e2etts.data.validate import validate_manifest
from e2etts.errors import UserError


def _tone(path, seconds=1.0, sr=16000, channels=1):
    t = np.arange(int(seconds * sr)) / sr
    wav = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    if channels > 1:
        wav = np.stack([wav, 0.5 * wav], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wav, sr)


def test_ljspeech(tmp_path):
    root = tmp_path / "LJSpeech-1.1"
    _tone(root / "wavs" / "LJ001-0001.wav", sr=22050, channels=2, seconds=1.5)
    _tone(root / "wavs" / "LJ001-0002.wav", sr=22050)
    _tone(root / "wavs" / "LJ001-0003.wav", sr=22050)
    (root / "metadata.csv").write_text(
        "LJ001-0001|Printing, in 1494, was new|Printing, in fourteen ninety-four, was new\n"
        'LJ001-0002|He said "no" twice|He said "no" twice\n'
        'LJ001-0003|"Hello" there|"Hello" there\n'
    )
    df = read_ljspeech(root)
    assert list(df.columns) == ["utt_id", "speaker", "text", "wav"]
    assert list(df.utt_id) == ["LJ001-0001", "LJ001-0002", "LJ001-0003"]
    assert set(df.speaker) == {"LJ"}
    assert df.text[0] == "printing, in fourteen ninety-four, was new"
    assert df.text[1] == "he said no twice"  # quoting off: the quote marks are text
    assert df.text[2] == "hello there"  # a field may start with a quote mark
    clean, report = validate_manifest(df, min_duration=0.5, max_duration=10)
    assert len(clean) == 3
    assert report["converted"] == {"downmixed": 1, "resampled": 3}
    assert report["source_sample_rates"] == {"22050": 3}
    wav = load_wav(clean.wav[0])
    assert wav.ndim == 1 and wav.numel() == round(1.5 * 16000)
    assert clean.duration[0] == pytest.approx(1.5, abs=1e-3)
    with pytest.raises(UserError, match=str(tmp_path / "nowhere" / "metadata.csv")):
        read_ljspeech(tmp_path / "nowhere")


def _libritts(root):
    for subset, speakers in (("train-clean-100", ("19", "26", "32", "40")), ("dev-clean", ("84",))):
        for spk in speakers:
            for i in range(5):
                stem = f"{spk}_198_{i:06d}_000001"
                wav = root / subset / spk / "198" / f"{stem}.wav"
                _tone(wav, sr=24000, channels=2 if (spk, i) == ("19", 0) else 1)
                wav.with_name(stem + ".normalized.txt").write_text(
                    f"Speaker {spk} says line {'abcde'[i]}.\n"
                )
    _tone(root / "dev-clean" / "84" / "198" / "84_198_000099_000000.wav")  # no transcript


def test_libritts_with_subsets(tmp_path):
    root = tmp_path / "LibriTTS"
    _libritts(root)
    df = read_libritts(root)
    assert len(df) == 25 and set(df.speaker) == {"19", "26", "32", "40", "84"}
    row = df[df.utt_id == "26_198_000002_000001"].iloc[0]
    assert (
        row.text == "speaker 26 says line c."
    )  # normalized; digits are left for validation to refuse
    assert row.wav.endswith("train-clean-100/26/198/26_198_000002_000001.wav")
    assert read_libritts(root / "train-clean-100").speaker.nunique() == 4
    # the wavs it names validate (24 kHz, one stereo); texts replaced: digits are refused
    clean, report = validate_manifest(
        df.assign(text="a fine sentence."), min_duration=0.5, max_duration=5
    )
    assert len(clean) == 25 and report["converted"] == {"downmixed": 1, "resampled": 25}
    with pytest.raises(UserError, match="nowhere"):
        read_libritts(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="normalized.txt"):
        read_libritts(tmp_path / "empty")


def _multi_speaker(n_speakers=12, per_speaker=30, shared=5):
    rows = []
    for s in range(n_speakers):
        for i in range(per_speaker):
            # a few sentences are read by every speaker, the rest are their own
            text = f"common line {'abcdefghij'[i]}." if i < shared else f"speaker {s} line {i}."
            rows.append((f"{s}_{i}", f"spk{s}", text.replace("1", "one"), f"/x/{s}_{i}.wav"))
    return pd.DataFrame(rows, columns=["utt_id", "speaker", "text", "wav"])


def test_split_real_corpus_partitions_sentences_and_speakers():
    df = _multi_speaker()
    out = split_real_corpus(df, dev_fraction=0.1, test_fraction=0.1, n_unseen_speakers=2, seed=3)
    pd.testing.assert_frame_equal(
        out, split_real_corpus(df, dev_fraction=0.1, test_fraction=0.1, n_unseen_speakers=2, seed=3)
    )
    text = {s: set(out[out.split == s].text) for s in ("train", "dev", "test")}
    assert not text["test"] & text["train"] and not text["test"] & text["dev"]
    assert not text["dev"] & text["train"]
    unseen = set(out[~out.seen].speaker)
    assert len(unseen) == 2 and set(out[~out.seen].split) == {"test"}
    assert not unseen & set(out[out.split != "test"].speaker)
    assert set(out[out.seen & (out.split == "test")].speaker)  # seen speakers in test too
    seen_rows = out[out.seen]
    assert 0.05 < (seen_rows.split == "test").mean() < 0.2
    assert 0.05 < (seen_rows.split == "dev").mean() < 0.2
    # held-out speakers keep (almost) all their utterances for zero-shot testing
    assert (~out.seen).sum() >= 2 * 25


def test_split_single_speaker_and_errors():
    lj = _multi_speaker(n_speakers=1, per_speaker=100, shared=0)
    out = split_real_corpus(lj, dev_fraction=0.05, test_fraction=0.05, n_unseen_speakers=4, seed=0)
    assert out.seen.all() and set(out.split) == {"train", "dev", "test"}
    with pytest.raises(UserError, match="n_unseen_speakers"):
        split_real_corpus(
            _multi_speaker(n_speakers=3),
            dev_fraction=0.1,
            test_fraction=0.1,
            n_unseen_speakers=3,
            seed=0,
        )
    with pytest.raises(UserError, match="test_fraction"):
        split_real_corpus(lj, dev_fraction=0.1, test_fraction=1.5, n_unseen_speakers=0, seed=0)


def test_ljspeech_malformed_line_skipped_and_counted_or_named(tmp_path):
    """data.on_bad_row: skip drops a metadata line with the wrong column count and counts
    it in the data report; error stops naming the file and line (issue 21: skip stopped
    the run; failed before the fix)."""
    from e2etts.data.prepare import prepare_corpus, validate_splits

    root = tmp_path / "LJSpeech-1.1"
    lines = []
    words = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima".split()
    for i, word in enumerate(words):
        _tone(root / "wavs" / f"LJ001-{i:04d}.wav")
        lines.append(f"LJ001-{i:04d}|the word {word}|the word {word}")
    lines.insert(3, "LJ001-0099 has no separators at all")
    lines.insert(6, "LJ001-0098|a|pipe|inside")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    data = {"source": "ljspeech", "corpus_path": str(root), "sample_rate": 16000, "min_duration": 0.5,
            "max_duration": 5.0, "on_bad_row": "skip",
            "real": {"dev_fraction": 0.2, "test_fraction": 0.2, "n_unseen_speakers": 0}}
    raw = tmp_path / "raw.tsv"
    prepare_corpus(data, 0, raw, tmp_path / "unused", jobs=1)
    report = validate_splits(data, raw, tmp_path / "manifests")
    assert report["validation"]["rows_kept"] == len(words)
    assert report["validation"]["dropped_by_reason"] == {"malformed_row": 2}
    named = {d["wav"] for d in report["validation"]["dropped_examples"]}
    assert named == {f"{root / 'metadata.csv'}:4", f"{root / 'metadata.csv'}:7"}
    assert sum(len(pd.read_csv(tmp_path / "manifests" / f"{s}.tsv", sep="\t")) for s in ("train", "dev", "test")) == len(words)

    with pytest.raises(UserError, match=r"metadata\.csv: line 4: expected 'id\|text\|normalized text', found 1 column .*on_bad_row"):
        prepare_corpus({**data, "on_bad_row": "error"}, 0, tmp_path / "raw2.tsv", tmp_path / "unused", jobs=1)
    assert not (tmp_path / "raw2.tsv").exists()
