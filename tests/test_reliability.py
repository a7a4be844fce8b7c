"""Crash-resume and exact reproduction on the smoke configuration (issue: reliability).

A training rule killed with SIGKILL mid-run resumes from its last checkpoint when
Snakemake is re-run, and ends with a final checkpoint byte-identical to an uninterrupted
run's; two runs from scratch are byte-identical too (CPU)."""

import hashlib
import os
import signal
import subprocess
import time

import pytest
import yaml

from workflow_utils import REPO, copy_repo, run

pytestmark = pytest.mark.slow

# Long enough to be killed mid-run: 60 steps, a checkpoint every 10.
LONGER = {"tokenizer": {"train": {"max_steps": 60, "ckpt_every": 10, "eval_every": 20}}}
TARGET = "results/checkpoints/s1234/cascade/tokenizer/final.pt"


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = copy_repo(tmp_path_factory.mktemp("rel") / "repo")
    (repo / "config/longer.yaml").write_text(yaml.safe_dump(LONGER))
    run(["snakemake", "data_all", "--cores", "1", "--configfile", "config/smoke.yaml"], repo)
    return repo


def _snakemake(repo):
    return ["snakemake", TARGET, "--cores", "1", "--configfile", "config/smoke.yaml", "config/longer.yaml"]


def test_sigkill_resume_equals_uninterrupted_and_runs_reproduce(repo):
    out = repo / "results/checkpoints/s1234/cascade/tokenizer"
    env = dict(os.environ, PATH=f"{REPO / '.venv/bin'}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.Popen(_snakemake(repo), cwd=repo, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not list(out.glob("step_000002*.pt")):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole job: snakemake and the training process
    proc.wait()
    assert not (out / "final.pt").exists(), "killed too late: training had finished"
    killed_at = __import__("torch").load(out / "last.pt", weights_only=False)["step"]
    assert 0 < killed_at < 60

    # Snakemake itself was killed too (as in a power loss), so its lock must be cleared;
    # a killed training process alone needs no --unlock.
    run([*_snakemake(repo), "--unlock"], repo)
    run([*_snakemake(repo), "--rerun-incomplete"], repo)
    log = (repo / "logs/s1234/cascade/train_tokenizer.log").read_text()
    assert f"resumed tokenizer from results/checkpoints/s1234/cascade/tokenizer/last.pt at step {killed_at}" in log

    # Two uninterrupted runs from scratch through the CLI, same params and seed.
    from e2etts.config import deep_merge, load_yaml

    params = deep_merge(deep_merge(load_yaml(repo / "params.yaml"), load_yaml(repo / "config/smoke.yaml")), LONGER)
    cfg = repo / "merged.yaml"
    cfg.write_text(yaml.safe_dump(params))
    for name in ("fresh_a", "fresh_b"):
        run(["e2etts", "train", "tokenizer", "--params", str(cfg), "--out-dir", f"results/{name}"], repo)
    a, b = repo / "results/fresh_a/final.pt", repo / "results/fresh_b/final.pt"
    assert _sha(a) == _sha(b), "two runs from scratch differ"
    assert _sha(out / "final.pt") == _sha(a), "resumed run differs from an uninterrupted one"
    # The pipeline writes its logs apart from the checkpoints; the bare CLI beside them.
    resumed_log = repo / "results/train_logs/s1234/cascade/tokenizer/train_log.tsv"
    assert not (out / "train_log.tsv").exists()
    assert resumed_log.read_text().count("\n") == a.parent.joinpath("train_log.tsv").read_text().count("\n")
