"""Nothing a test or the smoke target runs may rewrite this checkout's committed figures
(issue 21: a smoke run overwrote the git-tracked results/metrics/*.json)."""

import os
import shutil
import subprocess

import pytest

from workflow_utils import REPO, copy_repo, tracked_output_digests


def test_tracked_output_guard_sees_a_rewrite(tmp_path):
    """The session guard in conftest.py compares these digests before and after the run."""
    repo = tmp_path / "r"
    (repo / "results/metrics").mkdir(parents=True)
    (repo / "results/metrics/summary.json").write_text("{}\n")
    (repo / "results/metrics/untracked.json").write_text("{}\n")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "results/metrics/summary.json"], cwd=repo, check=True)
    before = tracked_output_digests(repo)
    assert list(before) == ["results/metrics/summary.json"]
    (repo / "results/metrics/untracked.json").write_text('{"x": 1}\n')
    assert tracked_output_digests(repo) == before
    (repo / "results/metrics/summary.json").write_text('{"wer": 0.5}\n')
    assert tracked_output_digests(repo) != before


def test_a_copy_shares_no_file_with_the_checkout(tmp_path):
    before = tracked_output_digests()
    assert "results/metrics/summary.json" in before
    copy = copy_repo(tmp_path / "repo")
    (copy / "results/metrics/summary.json").write_text("{}\n")  # what a smoke run in the copy does
    assert tracked_output_digests() == before


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_make_smoke_runs_in_a_copy(tmp_path):
    """`make smoke` with a stand-in snakemake that records where it ran. Failed before the
    fix: it ran in the checkout itself."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "snakemake"
    fake.write_text(f'#!/bin/sh\npwd > {tmp_path}/cwd\necho "$@" > {tmp_path}/args\n')
    fake.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", SMOKE_DIR=str(tmp_path / "copy"))
    (tmp_path / "copy").mkdir()
    # -o setup: do not run the set-up script; VENV: keep the real snakemake off PATH.
    proc = subprocess.run(["make", "-s", "-o", "setup", "smoke", "VENV=no-venv"], cwd=REPO, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    cwd = (tmp_path / "cwd").read_text().strip()
    assert os.path.realpath(cwd) == os.path.realpath(tmp_path / "copy")
    assert (tmp_path / "copy/Snakefile").exists() and (tmp_path / "copy/config/smoke.yaml").exists()
    assert "--configfile config/smoke.yaml" in (tmp_path / "args").read_text()
