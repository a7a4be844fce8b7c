"""The data stages through Snakemake and through DVC, on the smoke config, in a repo copy."""

import json

import pandas as pd
import pytest
import yaml
from workflow_utils import REPO, copy_repo, merged_params, run

pytestmark = pytest.mark.slow


def test_snakemake_lint_and_dry_run():
    run(["snakemake", "--lint"], REPO)
    out = run(["snakemake", "-n", "--configfile", "config/smoke.yaml"], REPO).stdout
    assert "prepare_corpus" in out


def test_data_stages_snakemake_then_dvc(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    run(["snakemake", "data_all", "--cores", "2", "--configfile", "config/smoke.yaml"], repo)
    train = pd.read_csv(repo / "data/manifests/train.tsv", sep="\t")
    test = pd.read_csv(repo / "data/manifests/test.tsv", sep="\t")
    assert {"utt_id", "speaker", "text", "wav", "duration"} <= set(train.columns)
    assert not set(test["text"]) & set(train["text"])
    assert (repo / "logs/data/prepare_corpus.log").stat().st_size > 0
    nothing = run(["snakemake", "data_all", "-n", "--configfile", "config/smoke.yaml"], repo).stdout
    assert "Nothing to be done" in nothing

    # DVC: the smoke values become params.yaml of this copy; stage runs, then is clean.
    (repo / "params.yaml").write_text(yaml.safe_dump(merged_params(REPO / "config/smoke.yaml")))
    run(["git", "init", "-q"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "copy"], repo)
    run(["dvc", "repro", "data"], repo)
    status = run(["dvc", "status", "data"], repo).stdout
    assert "up to date" in status.lower() or status.strip() == "", status
    again = run(["dvc", "repro", "data"], repo).stdout
    assert "didn't change" in again or "up to date" in again.lower(), again
    corpus = json.loads((repo / "results/metrics/corpus.json").read_text())
    assert corpus
