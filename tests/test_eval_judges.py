"""The embedded judges on flite speech: Whisper tiny.en (WER) and resemblyzer (SIM)."""

import shutil
import subprocess

import numpy as np
import pytest
import torch

from e2etts.audio import load_wav
from e2etts.errors import UserError

pytestmark = pytest.mark.slow

SENTENCES = [
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It is easy to tell the depth of a well.",
]


@pytest.fixture(scope="module")
def flite_wavs(tmp_path_factory):
    if shutil.which("flite") is None:
        pytest.skip("flite is not installed (apt-get install flite)")
    out = tmp_path_factory.mktemp("flite")
    paths = {}
    for voice in ("slt", "rms"):
        for i, text in enumerate(SENTENCES):
            path = out / f"{voice}_{i}.wav"
            subprocess.run(
                ["flite", "-voice", voice, "-t", text, "-o", str(path)], check=True, timeout=60
            )
            paths[voice, i] = path
    return paths


@pytest.fixture(scope="module")
def wer_judge():
    from e2etts.evaluate.asr import WERJudge

    torch.set_num_threads(1)
    return WERJudge(cpu_threads=1)


@pytest.fixture(scope="module")
def sim_judge():
    from e2etts.evaluate.sim import SIMJudge

    torch.set_num_threads(1)
    return SIMJudge("resemblyzer")


def test_whisper_transcribes_flite(flite_wavs, wer_judge):
    hyps = [wer_judge.transcribe(flite_wavs["slt", i]) for i in range(len(SENTENCES))]
    assert wer_judge.wer(SENTENCES, hyps) < 0.35, hyps
    # An in-memory 16 kHz array gives the same text as its file.
    samples = load_wav(flite_wavs["slt", 0]).numpy()
    assert wer_judge.transcribe(samples) == hyps[0]
    assert len(wer_judge.utterance_wers(SENTENCES, hyps)) == 3
    assert "tiny.en" in wer_judge.name


def test_resemblyzer_same_voice_beats_other_voice(flite_wavs, sim_judge):
    slt0, slt1 = (load_wav(flite_wavs["slt", i]).numpy() for i in (0, 1))
    rms1 = load_wav(flite_wavs["rms", 1]).numpy()
    emb = sim_judge.embed(slt0)
    assert emb.ndim == 1 and np.linalg.norm(emb) == pytest.approx(1.0, abs=1e-5)
    same, other = sim_judge.similarity(slt0, slt1), sim_judge.similarity(slt0, rms1)
    assert same > other, (same, other)
    assert -1.0 <= other <= same <= 1.0
    # Silence and very short inputs do not crash the encoder.
    assert np.isfinite(sim_judge.embed(np.zeros(800, dtype=np.float32))).all()


def test_judge_errors_are_user_errors(tmp_path):
    from e2etts.evaluate.asr import WERJudge
    from e2etts.evaluate.sim import SIMJudge

    with pytest.raises(UserError, match="asr_model_dir"):
        WERJudge(model_dir=tmp_path)
    with pytest.raises(UserError, match="resemblyzer"):
        SIMJudge("wavlm-not-installed")


def test_token_cap_bounds_a_transcript_but_not_real_speech(flite_wavs, wer_judge):
    """The repetition-loop guard: the decoded length is capped by the clip's duration; at the
    default 12 tokens/s real flite speech is untouched, a tiny cap cuts it to MIN_TOKEN_CAP."""
    import copy

    from e2etts.evaluate.asr import MIN_TOKEN_CAP, WERJudge

    assert wer_judge.max_tokens_per_second is None and wer_judge.token_cap(16000) is None
    default = copy.copy(wer_judge)
    default.max_tokens_per_second = 12.0
    assert default.token_cap(16000 * 3) == 36
    assert default.token_cap(1600) == MIN_TOKEN_CAP  # 0.1 s: the floor
    tight = copy.copy(wer_judge)
    tight.max_tokens_per_second = 0.01
    tokenizer = wer_judge.model.hf_tokenizer
    for i in range(len(SENTENCES)):
        free = wer_judge.transcribe(flite_wavs["rms", i])
        assert default.transcribe(flite_wavs["rms", i]) == free
        cut = tight.transcribe(flite_wavs["rms", i])
        assert len(tokenizer.encode(" " + free).ids) > MIN_TOKEN_CAP  # the test means something
        assert len(tokenizer.encode(" " + cut).ids) <= MIN_TOKEN_CAP + 1, (free, cut)
        assert free.startswith(cut.rstrip(".").strip()[:5])
    with pytest.raises(UserError, match="asr_max_tokens_per_second"):
        WERJudge(max_tokens_per_second=0)
