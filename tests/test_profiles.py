"""Execution profiles: the SLURM profile dry-runs (no cluster needed); the default is local."""

import pytest

from workflow_utils import REPO, run

pytestmark = pytest.mark.slow


def test_slurm_profile_dry_run():
    out = run(["snakemake", "-n", "--forceall", "--profile", "workflow/profiles/slurm"], REPO).stdout
    assert "train_joint_e2" in out and "train_tokenizer" in out


def test_default_profile_dry_run():
    out = run(["snakemake", "-n", "--forceall", "--profile", "workflow/profiles/default"], REPO).stdout
    assert "report" in out
