"""Synthesis refuses what it cannot do instead of writing wrong audio (issue 21): over-long
prompts, outputs far shorter than their text, punctuation-only text, bad output paths
(refused before any synthesis), and system directories used from another directory.

Each test here failed before its fix (checked on the parent commit): the 60 s prompt gave
rc 0 and a 0.01 s wav; punctuation-only text gave rc 0; bad output paths raised tracebacks
after synthesis; a system used from another directory raised 'checkpoint not found'."""

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from e2etts import cli
from e2etts.atomic import torch_save
from e2etts.errors import UserError
from e2etts.flow.model import FlowMatchingConfig, FlowMatchingDecoder
from e2etts.llm.model import TextToTokenLM, TextToTokenLMConfig
from e2etts.synthesis import System, clean_text
from e2etts.tokenizer.model import SpeechTokenizer, SpeechTokenizerConfig

PROMPT_TEXT = "a short prompt sentence."


def _save(path, kind, model, cfg):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch_save(path, {"kind": kind, "model": model.state_dict(), "config": cfg.__dict__, "step": 0})


def _system(root, alignment="prefix", max_len=1024):
    """An untrained tiny system laid out as the pipeline writes it: system.json in
    <root>/results/checkpoints/tiny with checkpoint paths relative to <root>."""
    torch.manual_seed(0)
    rel = "results/checkpoints/tiny"
    tok = SpeechTokenizerConfig(d_model=32, n_heads=2, encoder_layers=1, decoder_layers=1, fsq_levels=(5, 5, 4))
    llm = TextToTokenLMConfig(d_model=32, n_layers=1, n_heads=2, fsq_levels=(5, 5, 4), alignment=alignment,
                              max_len=max_len)
    flow = FlowMatchingConfig(fsq_dim=3, d_model=32, n_layers=1, n_heads=2, token_encoder_layers=1)
    _save(root / rel / "tokenizer.pt", "tokenizer", SpeechTokenizer(tok), tok)
    _save(root / rel / "llm.pt", "llm", TextToTokenLM(llm), llm)
    _save(root / rel / "flow.pt", "flow", FlowMatchingDecoder(flow), flow)
    spec = {"name": "tiny", "tokenizer": f"{rel}/tokenizer.pt", "llm": f"{rel}/llm.pt", "flow": f"{rel}/flow.pt",
            "vocoder": {"type": "griffinlim", "iters": 2}, "synthesis": {"n_steps": 2}}
    (root / rel / "system.json").write_text(json.dumps(spec))
    return root / rel


def _wav(path, seconds, sr=16000, amplitude=0.3):
    t = np.arange(int(sr * seconds)) / sr
    sf.write(str(path), (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr)
    return path


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project root holding a tiny system; commands run from it unless a test moves."""
    root = tmp_path / "proj"
    system = _system(root)
    monkeypatch.chdir(root)
    return root, system


def _synthesize(capsys, *args):
    code = cli.main(["synthesize", *map(str, args)])
    return code, capsys.readouterr().err.strip()


def test_long_prompt_is_refused_naming_the_limit(project, tmp_path, capsys):
    root, system = project
    prompt = _wav(tmp_path / "long.wav", 60.0)
    out = tmp_path / "o.wav"
    code, err = _synthesize(capsys, "--system", system, "--text", "hello there.", "--prompt-wav", prompt,
                            "--prompt-text", PROMPT_TEXT, "--out", out)
    assert code == 2, err
    assert str(prompt) in err and "60.0 s" in err and "synthesis_checks.max_prompt_seconds" in err
    assert not out.exists()


@pytest.mark.parametrize("alignment", ["prefix", "interleaved"])
def test_prompt_that_fills_the_llm_context_is_refused(tmp_path, alignment):
    """Below max_prompt_seconds but too long for this LLM's context: generation would stop
    at the context's end and return (almost) nothing."""
    system = System(_system(tmp_path, alignment=alignment, max_len=96))
    prompt = _wav(tmp_path / "p.wav", 3.0)  # 75 tokens + text > 96 positions
    with pytest.raises(UserError, match=r"p\.wav: the prompt \(3\.0 s\) and the text take .* use a shorter prompt"):
        system.synthesize("hello there, how are you today.", prompt, PROMPT_TEXT)
    wav, info = System(_system(tmp_path / "big", alignment=alignment)).synthesize("hello.", prompt, PROMPT_TEXT)
    assert not info["too_short"] and info["audio_s"] >= info["min_expected_s"]


def test_too_short_output_is_an_error_single_and_counted_in_batch(project, tmp_path, capsys, monkeypatch):
    """The reported failure (0.01 s for a sentence) forced here: the LLM returns no tokens."""
    root, system = project
    monkeypatch.setattr(System, "speech_tokens", lambda self, *a, **k: torch.zeros(0, dtype=torch.long))
    prompt = _wav(tmp_path / "p.wav", 2.0)
    out = tmp_path / "o.wav"
    code, err = _synthesize(capsys, "--system", system, "--text", "a sentence of several words.",
                            "--prompt-wav", prompt, "--prompt-text", PROMPT_TEXT, "--out", out)
    assert code == 2 and "synthesized only 0.01 s" in err and "max_chars_per_second" in err, err
    assert not out.exists()

    items = tmp_path / "items.tsv"
    items.write_text("item_id\tprompt_wav\tprompt_text\ttarget_text\n"
                     f"i1\t{prompt}\t{PROMPT_TEXT}\ta sentence of several words.\n")
    code, err = _synthesize(capsys, "--system", system, "--items", items, "--out-dir", tmp_path / "batch")
    assert code == 0 and "warning: tiny: 1 of 1 outputs are shorter" in err
    stats = json.loads((tmp_path / "batch" / "synthesis.json").read_text())
    assert stats["n_too_short"] == 1 and stats["too_short_items"] == ["i1"]
    # The settings the audio was decoded with travel beside it (summarize compares seeds).
    assert stats["decoding"]["synthesis"]["n_steps"] == System(system).cfg.n_steps
    assert stats["decoding"]["vocoder"] == {"type": "griffinlim", "iters": 2}
    # A trained vocoder's weights path differs between clones of one run: not a setting.
    from e2etts.synthesis import decoding_settings

    assert decoding_settings({"type": "vocos", "path": "/clone/a/vocos.pt"}) == {"vocoder": {"type": "vocos"}}
    assert (decoding_settings({"type": "vocos", "path": "/clone/a/vocos.pt"}, System(system).cfg)
            == decoding_settings({"type": "vocos", "path": "/clone/b/vocos.pt"}, System(system).cfg))


@pytest.mark.parametrize("text", ["...", " ?! ", "-,;:"])
def test_punctuation_only_text_is_refused(text):
    with pytest.raises(UserError, match=r"--text: .* has no words to speak"):
        clean_text(text, "--text")
    assert clean_text("Hi!", "--text") == "hi!"


def test_punctuation_only_text_through_the_cli(project, tmp_path, capsys):
    root, system = project
    code, err = _synthesize(capsys, "--system", system, "--text", "?!...", "--prompt-wav", _wav(tmp_path / "p.wav", 2.0),
                            "--prompt-text", PROMPT_TEXT, "--out", tmp_path / "o.wav")
    assert code == 2 and "'?!...'" in err and "no words" in err
    assert not (tmp_path / "o.wav").exists()


def _unwritable_dir(tmp_path):
    """A directory no file can be created in, for root too (sysfs refuses new files)."""
    if os.geteuid() == 0:
        d = Path("/sys")
    else:
        d = tmp_path / "ro"
        d.mkdir()
        d.chmod(0o500)
    try:
        fd, probe = tempfile.mkstemp(dir=d)
    except OSError:
        return d
    os.close(fd)
    os.unlink(probe)
    pytest.skip(f"{d} is writable here")


def test_bad_output_paths_are_refused_before_synthesis(project, tmp_path, capsys, monkeypatch):
    root, system = project

    def must_not_run(*a, **k):
        raise AssertionError("synthesis ran before the output path was checked")

    monkeypatch.setattr(System, "synthesize", must_not_run)
    (tmp_path / "afile").write_text("x")
    prompt = _wav(tmp_path / "p.wav", 2.0)
    cases = {
        tmp_path / "afile" / "o.wav": "afile is a file, not a directory",
        tmp_path / "afile" / "deeper" / "o.wav": "afile is a file, not a directory",
        tmp_path: "is a directory",
        _unwritable_dir(tmp_path) / "sub" / "o.wav": "cannot write in",
    }
    for out, pattern in cases.items():
        code, err = _synthesize(capsys, "--system", system, "--text", "hello.", "--prompt-wav", prompt,
                                "--prompt-text", PROMPT_TEXT, "--out", out)
        assert code == 2 and f"--out {out}" in err and pattern in err and "Traceback" not in err, (out, err)
    code, err = _synthesize(capsys, "--system", system, "--items", tmp_path / "items.tsv",
                            "--out-dir", tmp_path / "afile" / "batch")
    assert code == 2 and "--out-dir" in err and "afile is a file" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "p.wav", "proj"]  # no probe left


def test_system_given_by_absolute_path_from_another_directory(project, tmp_path, monkeypatch):
    root, system = project
    elsewhere = tmp_path / "elsewhere"
    # An unrelated checkout with the same layout in the working directory is not used.
    (elsewhere / "results/checkpoints/tiny").mkdir(parents=True)
    (elsewhere / "results/checkpoints/tiny/llm.pt").write_bytes(b"not this one")
    monkeypatch.chdir(elsewhere)
    loaded = System(system.resolve())
    assert loaded.spec["llm"] == str(root.resolve() / "results/checkpoints/tiny/llm.pt")
    assert json.loads((system / "system.json").read_text())["llm"] == "results/checkpoints/tiny/llm.pt"
    # Relative --system from a subdirectory of the project works too.
    (root / "docs").mkdir()
    monkeypatch.chdir(root / "docs")
    assert System("../results/checkpoints/tiny").name == "tiny"


def test_checks_are_params_with_schema_defaults_and_reach_system_json(project, tmp_path, capsys):
    """params.yaml `synthesis_checks` -> assemble-system -> system.json -> System.cfg; the
    schema's defaults are the code's (a system.json written before the section existed
    gets them)."""
    import dataclasses

    import yaml

    from e2etts.config import REPO_ROOT, SCHEMA_PATH, load_params
    from e2etts.synthesis import SynthesisConfig

    root, system = project
    schema = yaml.safe_load(SCHEMA_PATH.read_text())["properties"]["synthesis_checks"]["properties"]
    code_defaults = {f.name: f.default for f in dataclasses.fields(SynthesisConfig)}
    assert {k: v["default"] for k, v in schema.items()} == {k: code_defaults[k] for k in schema}
    params = load_params(REPO_ROOT / "params.yaml")
    assert set(params["synthesis_checks"]) == set(schema)
    assert System(system).cfg.max_prompt_seconds == schema["max_prompt_seconds"]["default"]  # old system.json

    params["synthesis_checks"]["max_prompt_seconds"] = 4.5
    rel = "results/checkpoints/tiny"
    code = cli.main(["assemble-system", "--params", json.dumps(params), "--name", "tiny2", "--tokenizer",
                     f"{rel}/tokenizer.pt", "--llm", f"{rel}/llm.pt", "--flow", f"{rel}/flow.pt",
                     "--out", "results/checkpoints/tiny2/system.json"])
    assert code == 0, capsys.readouterr().err
    assert System(root / "results/checkpoints/tiny2").cfg.max_prompt_seconds == 4.5


@pytest.mark.parametrize("amplitude", [0.0, 1e-4])
def test_silent_prompt_is_refused(tmp_path, amplitude):
    """A silent prompt has no voice to clone; it gave rc 0 and full-length audio before."""
    system = System(_system(tmp_path))
    prompt = _wav(tmp_path / "quiet.wav", 3.0, amplitude=amplitude)
    with pytest.raises(UserError, match=r"quiet\.wav: prompt is silent or nearly .*-60 dBFS"):
        system.synthesize("hello there.", prompt, PROMPT_TEXT)
    _, info = system.synthesize("hello there.", _wav(tmp_path / "ok.wav", 3.0, amplitude=0.01), PROMPT_TEXT)
    assert info["audio_s"] > 0


def test_system_with_a_deleted_checkpoint_names_it(project, tmp_path, capsys):
    """system.json present, the LLM checkpoint it points at deleted (issue 21, item 3):
    one error line naming the file and how to rebuild it, exit 2, nothing written."""
    root, system = project
    (system / "llm.pt").unlink()
    out = tmp_path / "o.wav"
    code, err = _synthesize(capsys, "--system", system, "--text", "hello there.", "--out", out)
    assert code == 2, err
    assert "llm.pt: checkpoint not found" in err and "snakemake" in err and "Traceback" not in err
    assert not out.exists()
