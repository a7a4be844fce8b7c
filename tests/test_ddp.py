"""DDP under torchrun: 2 CPU processes (gloo) follow the 1-process loss trajectory."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
TOLERANCE = 1e-4  # relative; gloo's all-reduce sums in a different order than one process


def _losses(path):
    with open(path) as fh:
        return [float(r["loss"]) for r in csv.DictReader(fh, delimiter="\t")]


def _torchrun(nproc, out):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", str(HERE / "ddp_toy.py"), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
    _torchrun(1, tmp_path / "one")
    _torchrun(2, tmp_path / "two")
    one, two = _losses(tmp_path / "one/train_log.tsv"), _losses(tmp_path / "two/train_log.tsv")
    assert len(one) == len(two) == 30
    assert one[-1] < 0.5 * one[0]
    for a, b in zip(one, two, strict=True):
        assert abs(a - b) <= TOLERANCE * max(1.0, abs(a)), (one, two)
    assert (tmp_path / "two/final.pt").exists()
