"""The report from tiny fake results: self-contained HTML + README, rendered headless."""

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from e2etts.audio import save_wav
from e2etts.evaluate.score import summarize
from e2etts.report.html import build_report

SR = 16000
SYSTEMS = ["gt", "gt_vocoded", "cascade", "e2e_full", "broken"]


@pytest.fixture
def fake_results(tmp_path):
    rng = np.random.default_rng(0)
    n = 6
    t = np.arange(SR // 2) / SR
    items = pd.DataFrame(
        {
            "item_id": [f"item{i:04d}" for i in range(n)],
            "speaker": [f"spk{i % 3}" for i in range(n)],
            "seen": [i % 2 == 1 for i in range(n)],
            "prompt_text": [f"prompt <{i}> & text" for i in range(n)],
            "target_text": [f"target sentence number {i}." for i in range(n)],
        }
    )
    items["prompt_wav"] = [str(tmp_path / "data" / f"p{i}.wav") for i in range(n)]
    items["target_wav"] = [str(tmp_path / "data" / f"t{i}.wav") for i in range(n)]
    for i in range(n):
        save_wav(items.loc[i, "prompt_wav"], 0.3 * np.sin(2 * np.pi * (200 + 20 * i) * t))
        save_wav(items.loc[i, "target_wav"], 0.3 * np.sin(2 * np.pi * (220 + 20 * i) * t))
    rates = {"gt": 0.02, "gt_vocoded": 0.05, "cascade": 0.12, "e2e_full": 0.08, "broken": 0.7}
    per_utt, metrics, wav_dirs = {}, {}, {}
    for k, name in enumerate(SYSTEMS):
        words = np.full(n, 4)
        errors = rng.binomial(words, rates[name])
        sims = np.clip(rng.normal(0.8 - 0.1 * k, 0.05, n), -1, 1)
        per_utt[name] = pd.DataFrame(
            {
                "item_id": items["item_id"],
                "errors": errors,
                "words": words,
                "wer": errors / words,
                "sim": sims,
                "hypothesis": ["some | words"] * n,
            }
        )
        wer = errors.sum() / words.sum()
        metrics[name] = {
            "wer": float(wer),
            "wer_ci95": [max(0.0, wer - 0.05), wer + 0.05],
            "sim": float(sims.mean()),
            "sim_ci95": [float(sims.mean()) - 0.03, float(sims.mean()) + 0.03],
            "rtf": None if name == "gt" else 0.3,
            "n_items": n,
            "n_missing": 1 if name == "broken" else 0,
            "asr_judge": "whisper-tiny.en (faster-whisper int8, beam 1)",
            "sim_judge": "resemblyzer",
        }
        wav_dirs[name] = tmp_path / "samples" / name
        for i in range(n - (1 if name == "broken" else 0)):
            save_wav(
                wav_dirs[name] / f"item{i:04d}.wav", 0.2 * np.sin(2 * np.pi * (300 + 10 * k) * t)
            )
    seeds = {name: None if name in ("gt", "gt_vocoded") else 1234 for name in metrics}
    summary = summarize({n: {seeds[n]: m} for n, m in metrics.items()},
                        {n: {seeds[n]: t} for n, t in per_utt.items()}, n_boot=200)
    steps = np.arange(0, 200, 10)
    curves = {
        "cascade/llm/train": pd.DataFrame(
            {
                "step": steps,
                "loss": 5 * np.exp(-steps / 60) + 1,
                "acc": 1 - np.exp(-steps / 80),
                "wall_s": steps * 0.1,
            }
        ),
        "cascade/llm/dev": pd.DataFrame(
            {"step": [100, 200], "dev_loss": [2.1, 1.7], "dev_acc": [0.4, 0.5]}
        ),
        "e2e_full/joint_e1/train": pd.DataFrame(
            {"step": steps, "fm": 2 - steps / 200, "rm": np.nan, "lr": 1e-3}
        ),
    }
    return summary, per_utt, items, wav_dirs, curves


def test_report_files(fake_results, tmp_path):
    out = tmp_path / "report"
    build_report(*fake_results, out, n_audio=3)
    page = (out / "index.html").read_text()
    readme = (out / "README.md").read_text()
    assert page.count("<svg") >= 5  # 2 bar charts + curves
    assert page.count("data:audio/wav;base64,") == 3 * (2 + 4) - 0  # prompt, gt, 4 systems
    assert "<script" not in page.lower()
    assert not re.search(r"(src|href)=[\"']https?://", page)
    assert "prompt &lt;0&gt; &amp; text" in page  # text is escaped
    assert "unintelligible" in page and "resemblyzer" in page
    for name in SYSTEMS:
        assert f"| {name} |" in readme
    assert "p(WER lower)" in readme and "**broken: unintelligible**" in readme
    assert "some \\| words" not in readme  # hypotheses are not in the README table
    assert "whisper-tiny.en" in readme


def test_report_renders_headless(fake_results, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip(
            "chromium is not installed (Debian package 'chromium'): cannot render the report"
        )
    out = tmp_path / "report"
    build_report(*fake_results, out, n_audio=2)
    shot = tmp_path / "shot.png"
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={shot}",
        "--window-size=1200,1600",
        (out / "index.html").as_uri(),
    ]
    subprocess.run(cmd, capture_output=True, timeout=90, check=False)
    assert shot.is_file(), "chromium wrote no screenshot"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # a blank 1200x1600 page compresses to a few kB


def test_curve_captions_tell_probes_from_evaluations():
    import pandas as pd

    from e2etts.report.html import curve_panels

    dev = pd.DataFrame({"step": [200, 400], "dev_loss": [3.0, 2.5], "train_loss": [3.2, 2.4],
                        "train_min": [2.0, 4.5]})
    curve = pd.DataFrame({"step": [0, 500], "train_min": [0.0, 6.0], "dev_wer": [1.1, 0.9],
                          "dev_sim": [0.5, 0.6], "probe_s": [30.0, 31.0]})
    dev_html = "".join(p["svg"] + p["caption"] for p in curve_panels("cascade/llm/dev", dev))
    curve_html = "".join(p["svg"] + p["caption"] for p in curve_panels("cascade/llm/curve", curve))
    assert "2 evaluations over 4.5 training minutes" in dev_html and "probes" not in dev_html
    assert "held-out synthesis, 2 probes over 6.0 training minutes" in curve_html
    assert "probe_s" not in curve_html  # bookkeeping columns are not drawn


def test_report_shows_every_seed_and_both_baselines(tmp_path):
    """Three training seeds a system: the table gives the seed count, each seed's WER and
    the spread, p-values against the cascade and the control, and says what they resample."""
    rng = np.random.default_rng(1)
    words = np.full(60, 5)
    metrics, per_utt = {}, {}
    for name, rate in (("cascade", 0.3), ("cascade_matched", 0.29), ("e2e_full", 0.2)):
        metrics[name], per_utt[name] = {}, {}
        for seed in (1, 2, 3):
            errors = rng.binomial(words, rate + 0.01 * seed)
            table = pd.DataFrame({"item_id": [f"i{k}" for k in range(60)], "errors": errors,
                                  "words": words, "sim": rng.normal(0.8, 0.02, 60)})
            per_utt[name][seed] = table
            metrics[name][seed] = {"wer": float(errors.sum() / words.sum()), "sim": float(table["sim"].mean()),
                                   "n_items": 60, "n_missing": 0}
    summary = summarize(metrics, per_utt, n_boot=300)
    build_report(summary, {}, pd.DataFrame(), {}, {}, tmp_path, n_audio=0)
    readme = (tmp_path / "README.md").read_text()
    header = next(line for line in readme.splitlines() if line.startswith("| system"))
    for col in ("seeds", "WER per seed", "WER seed sd", "p WER < cascade", "p WER < cascade_matched"):
        assert f"| {col} |" in header, col
    row = next(line for line in readme.splitlines() if line.startswith("| e2e_full |"))
    per_seed = " / ".join(f"{100 * v:.1f}%" for v in summary["e2e_full"]["wer_per_seed"])
    assert "| 3 |" in row and per_seed in row
    assert "mean over 3 training seeds" in readme and "resample seeds and utterances" in readme
    assert "e2e_full vs cascade_matched" in readme
    test_line = next(line for line in readme.splitlines() if line.startswith("- e2e_full vs cascade:"))
    assert test_line.endswith("(60 paired items x 3 training seeds, both resampled)"), test_line
