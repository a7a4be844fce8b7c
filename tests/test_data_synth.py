"""Speaker variants and flite + sox synthesis (real flite and sox, a few short utterances)."""

import logging

import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from e2etts.data.synth import SynthesisError, synthesize_corpus, synthesize_utterance
from e2etts.data.voices import SpeakerSpec, make_speakers, make_spec
from e2etts.errors import UserError

TEXTS = ["The dog barked all night.", "Hold your breath.", "She sighed sadly.", "Is this the way?"]


def test_make_speakers_is_deterministic_and_spread():
    a = make_speakers(["slt", "rms", "awb", "kal16"], 8, seed=1234)
    assert a == make_speakers(["slt", "rms", "awb", "kal16"], 8, seed=1234)
    names = [s.name for s in a]
    assert len(set(names)) == 32 and names[:3] == ["slt_00", "slt_01", "slt_02"]
    assert "rms_07" in names and "kal16_05" in names
    for voice in ("slt", "rms", "awb", "kal16"):
        specs = [s for s in a if s.base_voice == voice]
        # variant 0 is the voice itself; the others are distinct settings
        assert specs[0].flite_features == () and specs[0].formant == 1.0 and specs[0].f0 == 1.0
        keys = {(s.formant, s.f0, s.tempo, s.tilt_db) for s in specs}
        assert len(keys) == 8
        # spread on the grid: both formant extremes are used
        formants = [s.formant for s in specs]
        assert min(formants) < 0.85 and max(formants) > 1.2
        assert all(s.sox_effects[-2:] == ("rate", "16k") for s in specs)
    assert make_speakers(["slt"], 8, seed=1) != make_speakers(
        ["slt"], 8, seed=2
    )  # seed breaks ties


def test_make_speakers_rejects_bad_requests():
    with pytest.raises(UserError, match="unknown flite base voice"):
        make_speakers(["nosuchvoice"], 2, 0)
    with pytest.raises(UserError, match="variants_per_voice"):
        make_speakers(["slt"], 99, 0)
    with pytest.raises(UserError, match="repeat"):
        make_speakers(["slt", "slt"], 2, 0)


def test_make_spec_compensates_speed():
    spec = make_spec("x", "slt", formant=1.21, f0=1.0, tempo=1.0)
    features = dict(spec.flite_features)
    assert features["f0_shift"] == pytest.approx(1 / 1.21, abs=1e-3)
    assert features["duration_stretch"] == pytest.approx(1.21, abs=1e-3)
    assert spec.sox_effects[spec.sox_effects.index("speed") + 1] == "1.2100"
    kal = make_spec("k", "kal16", tempo=1.1)  # kal16's own duration_stretch is 1.1
    assert dict(kal.flite_features)["duration_stretch"] == pytest.approx(1.0, abs=1e-3)


def _pitch_and_centroid(path):
    y, sr = sf.read(path, dtype="float32")
    f0 = librosa.yin(y, fmin=50, fmax=500, sr=sr, frame_length=1024, hop_length=256)
    rms = librosa.feature.rms(y=y, frame_length=1024, hop_length=256)[0]
    centroid = librosa.feature.spectral_centroid(y=y, sr=sr, n_fft=1024, hop_length=256)[0]
    n = min(len(f0), len(rms), len(centroid))
    voiced = rms[:n] > 0.3 * rms[:n].max()
    return float(np.median(f0[:n][voiced])), float(centroid[:n][voiced].mean())


def test_synthesize_corpus_two_speakers(tmp_path, caplog):
    base = make_spec("slt_00", "slt")
    variant = make_spec("slt_01", "slt", formant=1.21, f0=1.25)
    speakers = {s.name: s for s in (base, variant)}
    plan = pd.DataFrame(
        [(f"{s}-{i}", s, t) for s in speakers for i, t in enumerate(TEXTS[:2])],
        columns=["utt_id", "speaker", "text"],
    )
    with caplog.at_level(logging.INFO, logger="e2etts.data.synth"):
        out = synthesize_corpus(plan, speakers, tmp_path / "wavs", n_jobs=2)
    assert list(out.utt_id) == list(plan.utt_id) and "synthesized 4/4" in caplog.text
    for wav, duration in zip(out.wav, out.duration, strict=True):
        info = sf.info(wav)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert duration > 0.3 and duration == pytest.approx(info.frames / 16000, abs=1e-3)
    # the two variants of slt differ measurably: F0 up ~25 %, formants (centroid) up
    f0_a, cen_a = _pitch_and_centroid(out.wav[0])
    f0_b, cen_b = _pitch_and_centroid(out.wav[2])
    assert 1.12 < f0_b / f0_a < 1.4
    assert cen_b > 1.1 * cen_a

    # resumable: complete files are reused untouched; a stray temp file never counts,
    # a damaged final file is redone
    mtimes = {w: (tmp_path / w).stat().st_mtime_ns for w in out.wav}
    (tmp_path / "wavs" / "slt_00" / ".stray.wav.abc.tmp.wav").write_bytes(b"junk")
    with open(out.wav[1], "wb") as handle:
        handle.write(b"RIFF")
    again = synthesize_corpus(plan, speakers, tmp_path / "wavs", n_jobs=1)
    pd.testing.assert_frame_equal(again, out)
    assert (tmp_path / out.wav[0]).stat().st_mtime_ns == mtimes[out.wav[0]]
    assert sf.info(out.wav[1]).frames > 0
    # a changed text gets a new file name, never the stale audio
    changed = plan.assign(text=[TEXTS[3], *plan.text[1:]])
    assert synthesize_corpus(changed, speakers, tmp_path / "wavs").wav[0] != out.wav[0]


def test_synthesis_failure_names_utterance_and_stderr(tmp_path):
    bad = SpeakerSpec(name="bad", base_voice="slt", sox_effects=("speed", "banana", "rate", "16k"))
    plan = pd.DataFrame([("utt-7", "bad", "Hello there.")], columns=["utt_id", "speaker", "text"])
    with pytest.raises(
        SynthesisError, match=r"utterance utt-7: `sox .*speed banana.*` exited with \d+: .*speed"
    ):
        synthesize_corpus(plan, {"bad": bad}, tmp_path)
    assert not list(tmp_path.rglob("*.wav"))  # no partial or temp file left behind
    with pytest.raises(SynthesisError, match="unknown flite voice"):
        synthesize_utterance(
            "Hello.", SpeakerSpec(name="x", base_voice="nosuch"), tmp_path / "x.wav"
        )
    with pytest.raises(UserError, match="without a SpeakerSpec"):
        synthesize_corpus(plan, {}, tmp_path)
