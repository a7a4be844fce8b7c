"""Bad input through the CLI: one line naming the file/key and what to do, exit 2, no
traceback, nothing half-written."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from e2etts.config import REPO_ROOT


def _cli(*args, cwd=None):
    proc = subprocess.run([sys.executable, "-m", "e2etts.cli", *args], capture_output=True, text=True, cwd=cwd)
    return proc.returncode, proc.stderr.strip()


def _params(tmp_path, **data_overrides):
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["data"].update(data_overrides)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path, params


def _manifest(tmp_path, wav, text="a good sentence."):
    path = tmp_path / "raw.tsv"
    pd.DataFrame([{"utt_id": "u1", "speaker": "s", "text": text, "wav": str(wav), "split": "train"}]).to_csv(path, sep="\t", index=False)
    return path


def _tone(path, sr=16000, channels=1, seconds=1.0):
    wav = 0.3 * np.sin(np.arange(int(sr * seconds)) / sr * 2 * np.pi * 220).astype(np.float32)
    sf.write(str(path), np.stack([wav] * channels, 1) if channels > 1 else wav, sr)


CASES = {
    "missing wav": (lambda p: p / "nope.wav", "a good sentence.", "does not exist"),
    "corrupt wav": (lambda p: (p / "bad.wav").write_bytes(b"RIFFjunkjunk" * 50) and p / "bad.wav", "a good sentence.", "cannot decode"),
    "empty text": (lambda p: (_tone(p / "ok.wav"), p / "ok.wav")[1], "   ", "empty text"),
    "zero-length wav": (lambda p: (_tone(p / "zero.wav", seconds=0.0), p / "zero.wav")[1],
                        "a good sentence.", "audio has no samples"),
    # Accents are folded (creme brulee); a symbol and a digit are refused, named.
    "characters outside the vocabulary": (lambda p: (_tone(p / "ok.wav"), p / "ok.wav")[1],
                                          "cr\u00e8me br\u00fbl\u00e9e \u2713 costs 3 euros",
                                          "outside the text vocabulary: '3' '\u2713' in 'creme brulee"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_validate_errors_are_one_line(tmp_path, case):
    make, text, pattern = CASES[case]
    wav = make(tmp_path)
    params, _ = _params(tmp_path)
    out = tmp_path / "manifests"
    code, err = _cli("validate", "--params", str(params), "--raw", str(_manifest(tmp_path, wav, text)), "--out-dir", str(out))
    assert code == 2, err
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert pattern in err and str(wav) in err
    assert not out.exists() or not any(out.iterdir())


def test_stereo_44k_is_converted_not_refused(tmp_path):
    _tone(tmp_path / "st.wav", sr=44100, channels=2)
    params, _ = _params(tmp_path)
    rows = [{"utt_id": f"u{s}", "speaker": "s", "text": "a good sentence.", "wav": str(tmp_path / "st.wav"), "split": s}
            for s in ("train", "dev", "test")]
    raw = tmp_path / "raw.tsv"
    pd.DataFrame(rows).to_csv(raw, sep="\t", index=False)
    code, err = _cli("validate", "--params", str(params), "--raw", str(raw), "--out-dir", str(tmp_path / "m"))
    assert code == 0, err
    report = json.loads((tmp_path / "m" / "data_report.json").read_text())
    assert report["validation"]["converted"] == {"downmixed": 3, "resampled": 3}


def test_misspelled_params_key_names_it(tmp_path):
    params, content = _params(tmp_path)
    content["data"]["on_bad_rwo"] = "skip"
    params.write_text(yaml.safe_dump(content))
    code, err = _cli("validate", "--params", str(params), "--raw", "x.tsv", "--out-dir", str(tmp_path))
    assert code == 2 and "unknown key data.on_bad_rwo" in err and "on_bad_row" in err


def test_wrong_type_names_the_key(tmp_path):
    params, content = _params(tmp_path)
    content["llm"]["train"]["max_steps"] = "lots"
    params.write_text(yaml.safe_dump(content))
    code, err = _cli("validate", "--params", str(params), "--raw", "x.tsv", "--out-dir", str(tmp_path))
    assert code == 2 and "llm.train.max_steps" in err


def test_unknown_model_field_names_the_key():
    from e2etts.config import build
    from e2etts.errors import ConfigError
    from e2etts.llm.model import TextToTokenLMConfig

    with pytest.raises(ConfigError, match="llm.model.n_layer "):
        build(TextToTokenLMConfig, {"n_layer": 3}, "llm.model")


def test_synthesize_missing_checkpoint_and_bad_text(tmp_path):
    code, err = _cli("synthesize", "--system", str(tmp_path), "--text", "hi there.", "--prompt-wav", "x.wav",
                     "--prompt-text", "x.", "--out", str(tmp_path / "o.wav"))
    assert code == 2 and "system.json" in err and "snakemake" in err


def test_over_long_text_is_split_at_sentences_then_commas():
    from e2etts.synthesis import split_sentences

    assert split_sentences("one short sentence.") == ["one short sentence."]
    text = "first sentence here. " * 20 + "a long clause, " * 30 + "end."
    chunks = split_sentences(text, max_chars=120)
    assert all(len(c) <= 120 for c in chunks) and len(chunks) > 5
    assert " ".join(chunks).split() == text.split()  # nothing lost, nothing reordered
    no_break = "x" * 500
    assert "".join(split_sentences(no_break, max_chars=200)) == no_break
