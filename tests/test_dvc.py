"""DVC over the smoke pipeline: repro, clean status, no-op second repro, and a round trip
through a local directory remote into a fresh clone (no re-training)."""

import json

import pytest
import yaml

from workflow_utils import REPO, copy_repo, merged_params, run

pytestmark = pytest.mark.slow
GIT = ["git", "-c", "user.email=ci@example.org", "-c", "user.name=ci"]


def test_dvc_repro_status_and_remote_round_trip(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    (repo / "params.yaml").write_text(yaml.safe_dump(merged_params(REPO / "config/smoke.yaml")))
    run(["git", "init", "-q"], repo)
    run(["git", "add", "-A"], repo)
    run([*GIT, "commit", "-qm", "smoke copy"], repo)

    run(["dvc", "repro"], repo, timeout=900)
    status = run(["dvc", "status"], repo).stdout
    assert "up to date" in status.lower(), status
    again = run(["dvc", "repro"], repo).stdout
    assert "didn't change" in again or "up to date" in again.lower(), again
    metrics = run(["dvc", "metrics", "show", "--json"], repo).stdout
    assert "summary.json" in metrics

    remote = tmp_path / "remote"
    run(["dvc", "remote", "add", "-d", "store", str(remote)], repo)
    run(["dvc", "push"], repo, timeout=600)
    run(["git", "add", "-A"], repo)
    run([*GIT, "commit", "-qm", "run"], repo)

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    run(["dvc", "pull"], clone, timeout=600)
    status = run(["dvc", "status"], clone).stdout
    assert "up to date" in status.lower(), status
    a = json.loads((repo / "results/metrics/summary.json").read_text())
    b = json.loads((clone / "results/metrics/summary.json").read_text())
    assert a == b
    assert (clone / "results/checkpoints/e2e_full/llm/final.pt").exists()
    assert "didn't change" in run(["dvc", "repro"], clone).stdout
