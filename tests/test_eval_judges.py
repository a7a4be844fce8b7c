"""The packaged judges on flite speech: Whisper base and tiny.en (WER), resemblyzer (SIM)."""

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
    return WERJudge(cpu_threads=1)  # the default: Whisper base, joined from its two packages


@pytest.fixture(scope="module")
def tiny_judge():
    from e2etts.evaluate.asr import WERJudge

    return WERJudge(model="tiny.en", cpu_threads=1)


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
    assert "whisper-base" in wer_judge.name


def test_tiny_judge_transcribes_flite(flite_wavs, tiny_judge):
    hyps = [tiny_judge.transcribe(flite_wavs["slt", i]) for i in range(len(SENTENCES))]
    assert tiny_judge.wer(SENTENCES, hyps) < 0.35, hyps
    assert "whisper-tiny.en" in tiny_judge.name


def test_asr_model_dir_is_a_local_judge_that_wins_over_the_packaged_one(flite_wavs, tiny_judge, tmp_path):
    """eval.asr_model_dir (e.g. a local Whisper-large-v3 at real scale): a CTranslate2
    directory anywhere on disk, used instead of eval.asr_model; here a copy of tiny.en's."""
    import shutil

    from e2etts.config import validate
    from e2etts.evaluate.asr import WERJudge
    from e2etts.evaluate.judge_models import packaged_model_dir

    local = tmp_path / "my-whisper"
    shutil.copytree(packaged_model_dir("tiny.en"), local)
    ev = {"asr_model": "base", "asr_model_dir": str(local), "asr_beam_size": 1, "asr_max_tokens_per_second": None}
    judge = WERJudge.from_params(validate({"eval": ev}, partial=True)["eval"])  # the schema fills the rest
    assert "my-whisper" in judge.name and "base" not in judge.name
    assert judge.transcribe(flite_wavs["slt", 0]) == tiny_judge.transcribe(flite_wavs["slt", 0])


def test_transcript_cache_key_names_the_packaged_model_not_where_it_is_installed(wer_judge, tmp_path,
                                                                                  monkeypatch):
    """The cached transcripts are tracked in git: a clone that joins the packaged judge
    somewhere else must find them under the same key (it once held the install path, so each
    clone added a second copy of every transcript). A local directory keys by its path."""
    from e2etts.evaluate.asr import WERJudge

    monkeypatch.setenv("E2ETTS_JUDGE_CACHE", str(tmp_path / "elsewhere"))
    moved = WERJudge(cpu_threads=1)  # joined again, under tmp_path
    assert moved.model_dir != wer_judge.model_dir and str(tmp_path) in str(moved.model_dir)
    assert moved.cache_key == wer_judge.cache_key
    assert "packaged base" in moved.cache_key and "/" not in moved.cache_key
    local = WERJudge(model_dir=moved.model_dir, cpu_threads=1)
    assert local.cache_key != moved.cache_key and str(moved.model_dir.resolve()) in local.cache_key


@pytest.mark.parametrize("batch_size", [2, 4])
def test_batched_decoding_gives_the_per_clip_transcripts(flite_wavs, wer_judge, batch_size):
    """transcribe_batch is faster-whisper's per-clip transcribe(), item for item, in order,
    also for silence, an empty clip and a batch that does not divide the list."""
    import copy

    clips = [load_wav(path).numpy() for path in flite_wavs.values()]
    clips += [np.zeros(16000, dtype=np.float32), np.zeros(0, dtype=np.float32)]
    judge = copy.copy(wer_judge)
    judge.batch_size = batch_size
    judge.max_tokens_per_second = 12.0
    assert judge.transcribe_batch(clips) == [judge.transcribe(c) for c in clips]


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

    with pytest.raises(UserError, match="asr_model_dir") as err:
        WERJudge(model_dir=tmp_path)
    assert str(tmp_path) in str(err.value)
    with pytest.raises(UserError, match="unknown packaged judge 'large'"):
        WERJudge(model="large")
    with pytest.raises(UserError, match="asr_batch_size"):
        WERJudge(batch_size=0)
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
    for i in range(len(SENTENCES)):
        free = wer_judge.transcribe(flite_wavs["rms", i])
        assert default.transcribe(flite_wavs["rms", i]) == free
        cut = tight.transcribe(flite_wavs["rms", i])
        # A word is at least one token: the cut text has at most MIN_TOKEN_CAP words, fewer
        # than the free one (re-encoding the text would not count the decoder's tokens).
        assert len(cut.split()) <= MIN_TOKEN_CAP and len(cut.split()) < len(free.split()), (free, cut)
        assert free.startswith(cut.rstrip(".").strip()[:5])
    # In a batch, clips that decode past their own cap are decoded again alone: same texts.
    clips = [load_wav(flite_wavs["rms", i]).numpy() for i in range(len(SENTENCES))]
    tight.batch_size = 3
    assert tight.transcribe_batch(clips) == [tight.transcribe(c) for c in clips]
    with pytest.raises(UserError, match="asr_max_tokens_per_second"):
        WERJudge(max_tokens_per_second=0)
