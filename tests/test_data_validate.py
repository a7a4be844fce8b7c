"""Manifest validation: every kind of bad row names the file and the reason."""

from collections import Counter

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import torchaudio

from e2etts.data.validate import resampled_length, validate_manifest
from e2etts.errors import DataError, UserError


def _tone(path, seconds=1.0, sr=16000, channels=1):
    t = np.arange(int(round(seconds * sr))) / sr
    wav = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    if channels > 1:
        wav = np.stack([wav] * channels, axis=1)
    sf.write(str(path), wav, sr)


def _make(tmp_path, case):
    """-> manifest row for one case (the wav written as the case needs)."""
    path = tmp_path / f"{case}.wav"
    text = "a fine sentence."
    if case in ("good", "empty_text", "blank_text", "oov_text", "duplicate"):
        _tone(path)
    elif case == "stereo44k":
        _tone(path, seconds=1.25, sr=44100, channels=2)
    elif case == "corrupt":
        path.write_bytes(np.random.default_rng(0).bytes(4000))
    elif case == "riff_garbage":
        path.write_bytes(b"RIFF\x00\x01garbage" * 10)
    elif case == "zero_bytes":
        path.write_bytes(b"")
    elif case == "no_samples":
        sf.write(str(path), np.zeros(0, dtype=np.float32), 16000)
    elif case == "too_short":
        _tone(path, seconds=0.2)
    elif case == "too_long":
        _tone(path, seconds=3.0)
    if case == "empty_text":
        text = "  \u201c \u201d "
    if case == "blank_text":
        text = ""
    if case == "oov_text":
        text = "costs 5 euros \u20ac"
    utt_id = "good" if case == "duplicate" else case
    return {"utt_id": utt_id, "speaker": "s", "text": text, "wav": str(path), "split": "train"}


CASES = {
    "missing": ("missing_file", "does not exist"),
    "corrupt": ("undecodable", "cannot decode"),
    "riff_garbage": ("undecodable", "cannot decode"),
    "zero_bytes": ("empty_file", "empty"),
    "no_samples": ("no_samples", "no samples"),
    "too_short": ("too_short", r"duration 0\.20 s outside \[0\.5, 2\.0\]"),
    "too_long": ("too_long", r"duration 3\.00 s outside"),
    "empty_text": ("empty_text", "empty text"),
    "blank_text": ("empty_text", "empty text"),
    "oov_text": ("out_of_vocab", r"outside the text vocabulary: '5' '\u20ac'"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_error_mode_names_file_utt_and_reason(tmp_path, case):
    row = _make(tmp_path, case)
    frame = pd.DataFrame([_make(tmp_path, "good"), row])
    with pytest.raises(DataError, match=CASES[case][1]) as err:
        validate_manifest(frame, min_duration=0.5, max_duration=2.0)
    assert str(err.value).startswith(f"{row['wav']} (utt {case}): ")
    assert err.value.path == row["wav"]


def test_skip_mode_counts_and_lists(tmp_path):
    cases = ["good", "stereo44k", "duplicate", *CASES]
    frame = pd.DataFrame([_make(tmp_path, c) for c in cases])
    clean, report = validate_manifest(frame, min_duration=0.5, max_duration=2.0, on_bad_row="skip")
    assert list(clean.utt_id) == ["good", "stereo44k"]
    assert report["rows_in"] == len(cases) and report["rows_dropped"] == len(cases) - 2
    expected = dict(Counter(kind for kind, _ in CASES.values())) | {"duplicate_utt_id": 1}
    assert report["dropped_by_reason"] == expected
    assert report["converted"] == {"downmixed": 1, "resampled": 1}
    assert report["source_sample_rates"] == {"16000": 1, "44100": 1}
    assert {d["utt_id"] for d in report["dropped_examples"]} >= set(CASES)
    assert all(d["reason"] and d["wav"] for d in report["dropped_examples"])
    # the stereo 44.1 kHz file is kept; its duration is the one after resampling
    assert clean.duration.tolist() == pytest.approx([1.0, 1.25], abs=1e-4)
    assert clean.text[0] == "a fine sentence."


def test_report_lists_at_most_20(tmp_path):
    rows = [
        dict(_make(tmp_path, "good"), utt_id=f"m{i}", wav=str(tmp_path / f"m{i}.wav"))
        for i in range(25)
    ]
    rows.append(_make(tmp_path, "good"))
    clean, report = validate_manifest(
        pd.DataFrame(rows), min_duration=0.5, max_duration=2, on_bad_row="skip"
    )
    assert len(clean) == 1 and report["dropped_by_reason"] == {"missing_file": 25}
    assert len(report["dropped_examples"]) == 20


def test_all_bad_and_bad_settings(tmp_path):
    frame = pd.DataFrame([_make(tmp_path, "missing")])
    with pytest.raises(UserError, match="no usable rows"):
        validate_manifest(frame, min_duration=0.5, max_duration=2, on_bad_row="skip")
    with pytest.raises(UserError, match="on_bad_row"):
        validate_manifest(frame, min_duration=0.5, max_duration=2, on_bad_row="ignore")
    with pytest.raises(UserError, match="lacks columns"):
        validate_manifest(frame.drop(columns=["wav"]), min_duration=0.5, max_duration=2)


@pytest.mark.parametrize("n,sr", [(44100, 44100), (12345, 22050), (7, 24000), (1001, 8000)])
def test_resampled_length_matches_torchaudio(n, sr):
    out = torchaudio.functional.resample(torch.zeros(n), sr, 16000)
    assert resampled_length(n, sr, 16000) == out.numel()
