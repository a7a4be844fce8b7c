"""The data stages through Snakemake on the smoke config, in a repo copy (DVC: test_dvc.py)."""

import json

import pandas as pd
import pytest

from workflow_utils import REPO, copy_repo, run

pytestmark = pytest.mark.slow


def test_snakemake_lint_and_dry_run():
    run(["snakemake", "--lint"], REPO)
    out = run(["snakemake", "-n", "--forceall", "--configfile", "config/smoke.yaml"], REPO).stdout
    assert "prepare_corpus" in out


def test_data_stages_through_snakemake(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    run(["snakemake", "data_all", "--cores", "2", "--configfile", "config/smoke.yaml"], repo)
    train = pd.read_csv(repo / "data/manifests/train.tsv", sep="\t")
    test = pd.read_csv(repo / "data/manifests/test.tsv", sep="\t")
    assert {"utt_id", "speaker", "text", "wav", "duration"} <= set(train.columns)
    assert not set(test["text"]) & set(train["text"])
    assert (repo / "logs/data/prepare_corpus.log").stat().st_size > 0
    nothing = run(["snakemake", "data_all", "-n", "--configfile", "config/smoke.yaml"], repo).stdout
    assert "Nothing to be done" in nothing

    corpus = json.loads((repo / "results/metrics/corpus.json").read_text())
    assert corpus["speakers"] == 6
