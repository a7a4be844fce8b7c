"""The whole pipeline on the smoke configuration: data -> cascade -> E2E -> evaluation ->
report, in a throw-away copy of the repository."""

import json

import pytest

from workflow_utils import copy_repo, run

pytestmark = pytest.mark.slow

SYSTEMS = ["cascade", "cascade_matched", "e2e_tok", "e2e_fm", "e2e_full"]
TOPLINES = ["gt", "gt_vocoded", "resynth_cascade", "resynth_e2e_tok"]


@pytest.fixture(scope="module")
def smoke_repo(tmp_path_factory):
    repo = copy_repo(tmp_path_factory.mktemp("smoke") / "repo")
    run(["snakemake", "--cores", "2", "--configfile", "config/smoke.yaml"], repo, timeout=900)
    return repo


def test_summary_has_every_system_and_topline(smoke_repo):
    summary = json.loads((smoke_repo / "results/metrics/summary.json").read_text())
    assert set(summary) == set(SYSTEMS + TOPLINES)
    for name, m in summary.items():
        assert {"wer", "wer_ci95", "sim", "sim_ci95", "rtf", "n_items"} <= set(m), name
        assert m["n_items"] == 4
        assert 0.0 <= m["wer_ci95"][0] <= m["wer"] <= m["wer_ci95"][1] or m["wer"] > 1.0
    assert "p_wer_lower_than_cascade" in summary["e2e_full"]
    # The compute-matched control is a system of its own, and a second baseline.
    assert "p_wer_lower_than_cascade_matched" in summary["e2e_full"]
    assert summary["cascade_matched"]["tokenizer"] == "cascade" and summary["e2e_full"]["seeds"] == [1234]
    # Token diagnostics (issue 16) reach every row that speaks through a tokenizer.
    for name in SYSTEMS + TOPLINES[2:]:
        assert {"token_entropy_bits", "token_mi_bits", "token_mi_bits_shuffled"} <= set(summary[name]), name
    assert summary["e2e_full"]["tokenizer"] == "e2e_tok" and "tokenizer" not in summary["gt"]
    # Ground truth of the flite corpus is intelligible to the judge.
    assert summary["gt"]["wer"] < 0.5


def test_llm_did_not_memorize_and_curves_were_logged(smoke_repo):
    """The memorization guard on the smoke LLM (issue 8): held-out loss must not stall for
    llm.train.memorization_span evaluations while its training loss keeps falling."""
    import pandas as pd
    import yaml

    from e2etts.train import detect_memorization

    span = yaml.safe_load((smoke_repo / "config/smoke.yaml").read_text())["llm"]["train"]["memorization_span"]
    dev = pd.read_csv(smoke_repo / "results/train_logs/s1234/cascade/llm/dev_log.tsv", sep="\t")
    assert len(dev) > span  # enough evaluations for the guard to judge
    verdict = detect_memorization(dev["train_loss"].tolist(), dev["dev_loss"].tolist(), span)
    assert verdict is None, verdict
    for component in ("llm", "flow"):  # learning curves: held-out WER/SIM of synthesized speech
        curve = pd.read_csv(smoke_repo / f"results/train_logs/s1234/cascade/{component}/curve_log.tsv", sep="\t")
        assert {"step", "train_min", "dev_wer", "dev_sim", "dev_per"} <= set(curve.columns)
        assert curve["step"].iloc[0] == 0 and len(curve) >= 2
        assert curve["dev_wer"].between(0, 10).all() and curve["dev_sim"].between(-1, 1).all()
        assert curve["dev_per"].between(0, 10).all()


def test_report_and_synthesis_cli(smoke_repo):
    html = (smoke_repo / "results/report/index.html").read_text()
    assert "<svg" in html and "data:audio/wav;base64," in html
    readme = (smoke_repo / "results/report/README.md").read_text()
    assert "cascade" in readme and "e2e_full" in readme
    items = (smoke_repo / "results/eval/items.tsv").read_text().splitlines()
    header, first = items[0].split("\t"), items[1].split("\t")
    row = dict(zip(header, first, strict=True))
    out = smoke_repo / "cli.wav"
    proc = run(["e2etts", "synthesize", "--system", "results/checkpoints/s1234/e2e_full",
                "--text", "a short unseen sentence.", "--prompt-wav", row["prompt_wav"],
                "--prompt-text", row["prompt_text"], "--out", str(out)], smoke_repo)
    assert "RTF" in proc.stdout
    import soundfile as sf

    info = sf.info(str(out))
    assert info.samplerate == 16000 and info.channels == 1 and info.frames > 0
    # Over-long text is split into sentence chunks, each synthesized with the same prompt.
    long_text = " ".join(["the quick brown fox jumps over the lazy dog, again and again."] * 8)
    proc = run(["e2etts", "synthesize", "--system", "results/checkpoints/s1234/cascade",
                "--text", long_text, "--prompt-wav", row["prompt_wav"],
                "--prompt-text", row["prompt_text"], "--out", str(out)], smoke_repo)
    assert "sentence chunks" in proc.stdout and sf.info(str(out)).frames > info.frames


def test_second_run_does_nothing(smoke_repo):
    out = run(["snakemake", "-n", "--configfile", "config/smoke.yaml"], smoke_repo).stdout
    assert "Nothing to be done" in out


def test_report_renders_in_headless_chromium(smoke_repo, tmp_path):
    import shutil
    import subprocess

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian chromium not installed (make setup installs it)")
    shot = tmp_path / "report.png"
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,1600",
           (smoke_repo / "results/report/index.html").as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=120)
    # A blank 1200x1600 page compresses to a few kB; tables, charts and players do not.
    assert shot.exists() and shot.stat().st_size > 20_000


def test_prefix_llm_alternative_through_the_workflow(smoke_repo, tmp_path):
    """The default LLM is interleaved (the smoke run above trains every system with it); the
    prefix format stays a working alternative: the cascade trains and speaks with it, and
    no tokenizer is handed to the LLM rule. Runs on a copy."""
    import shutil

    import torch
    import yaml

    smoke_llm = torch.load(smoke_repo / "results/checkpoints/s1234/e2e_full/llm/final.pt", weights_only=False)
    assert smoke_llm["config"]["alignment"] == "interleaved"
    repo = tmp_path / "repo"
    shutil.copytree(smoke_repo, repo, symlinks=True)
    cfg = yaml.safe_load((repo / "config/smoke.yaml").read_text())
    cfg["llm"]["model"]["alignment"] = "prefix"
    (repo / "config/prefix.yaml").write_text(yaml.safe_dump(cfg))
    # The target goes first: --configfile takes every path after it.
    target = "results/checkpoints/s1234/cascade/system.json"
    dry = run(["snakemake", target, "-n", "-p", "--cores", "2", "--configfile", "config/prefix.yaml"], repo)
    train_llm = [line for line in dry.stdout.splitlines() if " train llm " in line]
    assert len(train_llm) == 1 and "--tokenizer" not in train_llm[0]
    run(["snakemake", target, "--cores", "2", "--configfile", "config/prefix.yaml"], repo)
    llm = torch.load(repo / "results/checkpoints/s1234/cascade/llm/final.pt", weights_only=False)
    assert llm["config"]["alignment"] == "prefix"
    row = dict(zip(*[line.split("\t") for line in (repo / "results/eval/items.tsv").read_text().splitlines()[:2]],
                   strict=True))
    out = repo / "prefix.wav"
    proc = run(["e2etts", "synthesize", "--system", "results/checkpoints/s1234/cascade",
                "--text", "a short unseen sentence.", "--prompt-wav", row["prompt_wav"],
                "--prompt-text", row["prompt_text"], "--out", str(out)], repo)
    assert "RTF" in proc.stdout and out.stat().st_size > 1000


def test_changing_the_decoding_trains_nothing_again(smoke_repo, tmp_path):
    """The learning-curve probes decode with `synthesis` and `vocoder`, but as a rule of their
    own (learning_curve, over the training runs' snapshots): changing a decoding key
    re-synthesizes, re-scores and re-draws the curves, and re-runs no training job (it
    re-ran the cascade LLM, flow and control until session 22)."""
    import re
    import shutil

    import yaml

    repo = tmp_path / "repo"
    shutil.copytree(smoke_repo, repo, symlinks=True)
    (repo / "config/decoding.yaml").write_text(yaml.safe_dump({"synthesis": {"n_steps": 3, "temperature": 0.9}}))
    dry = run(["snakemake", "all", "-n", "--cores", "2", "--configfile", "config/smoke.yaml", "config/decoding.yaml"],
              repo)
    stats = dry.stdout.split("Job stats:", 1)[1].split("Reasons:", 1)[0]
    jobs = set(re.findall(r"^(\w+)\s+\d+\s*$", stats, flags=re.M)) - {"total"}
    assert {"learning_curve", "synthesize_system", "topline_resynth", "score_seeded"} <= jobs, dry.stdout
    assert not {j for j in jobs if j.startswith(("train_", "fit_", "extract_", "export_"))}, dry.stdout


def test_changing_the_judge_rescores_without_retraining(smoke_repo, tmp_path):
    """The evaluation's judge (model, beam, batch) is not a training input: the learning-curve
    probes keep their own judge (curves.asr_model), so switching eval.asr_model re-runs
    scoring only, not the cascade LLM and flow whose probes score speech too."""
    import re
    import shutil

    import yaml

    repo = tmp_path / "repo"
    shutil.copytree(smoke_repo, repo, symlinks=True)
    (repo / "config/judge.yaml").write_text(
        yaml.safe_dump({"eval": {"asr_model": "tiny.en", "asr_beam_size": 2, "asr_batch_size": 4}})
    )
    dry = run(["snakemake", "all", "-n", "--cores", "2", "--configfile", "config/smoke.yaml", "config/judge.yaml"], repo)
    stats = dry.stdout.split("Job stats:", 1)[1].split("Reasons:", 1)[0]
    jobs = set(re.findall(r"^(\w+)\s+\d+\s*$", stats, flags=re.M)) - {"total"}
    assert jobs == {"score", "score_seeded", "summarize", "report", "all"}, dry.stdout
