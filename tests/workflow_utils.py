"""Helpers for workflow tests: a throw-away copy of the repository to run pipelines in."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def copy_repo(dest: Path) -> Path:
    """Copy tracked + untracked-but-not-ignored files (what a clone plus local edits holds)."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO, check=True, capture_output=True, text=True,
    ).stdout.split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return dest


# Committed figures a pipeline run would rewrite: the git-tracked metrics and dvc.lock.
TRACKED_OUTPUTS = ("results", "dvc.lock")


def tracked_output_digests(repo: Path = REPO) -> dict[str, str]:
    """sha256 of each git-tracked file under TRACKED_OUTPUTS ({} outside a git checkout)."""
    import hashlib

    proc = subprocess.run(["git", "ls-files", "-z", "--", *TRACKED_OUTPUTS], cwd=repo,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return {}
    files = [repo / rel for rel in proc.stdout.split("\0") if rel]
    return {str(f.relative_to(repo)): hashlib.sha256(f.read_bytes()).hexdigest() if f.exists() else ""
            for f in files}


def merged_params(*overrides: Path | dict) -> dict:
    from e2etts.config import deep_merge

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for extra in overrides:
        params = deep_merge(params, extra if isinstance(extra, dict) else yaml.safe_load(Path(extra).read_text()))
    return params


def run(cmd: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, DVC_NO_ANALYTICS="1", PYTHONHASHSEED="0")
    bin_dir = str(Path(os.sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc
