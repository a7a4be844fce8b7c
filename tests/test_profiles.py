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


def test_process_count_comes_from_the_profile():
    """torchrun's --nproc_per_node is resources.nproc, set by a profile or the command line."""
    target = "results/checkpoints/s1234/cascade/llm/final.pt"
    plain = run(["snakemake", target, "-n", "-p", "--forceall"], REPO).stdout
    assert "e2etts train llm" in plain and "torchrun" not in plain
    ddp = run(["snakemake", target, "-n", "-p", "--forceall", "--set-resources", "train_llm:nproc=4"], REPO).stdout
    assert "torchrun --standalone --nproc_per_node 4 -m e2etts.cli train llm" in ddp
    assert "e2etts train tokenizer" in ddp  # other rules keep one process


def test_benchmark_rule_dry_runs():
    out = run(["snakemake", "results/bench/bench_cpu.json", "-n", "-p"], REPO).stdout
    assert "python -m e2etts.bench" in out and "--device cpu" in out
