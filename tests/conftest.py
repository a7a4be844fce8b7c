import os

import pytest
import torch

from workflow_utils import tracked_output_digests

# The machine has 2 cores; one torch thread per test process keeps runs comparable.
torch.set_num_threads(1)
os.environ.setdefault("DVC_NO_ANALYTICS", "1")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session", autouse=True)
def _committed_figures_untouched():
    """Pipelines run in copy_repo() copies; a test that writes the checkout's git-tracked
    results/metrics/*.json or dvc.lock (what an in-place smoke run did, issue 21) fails the
    session here. (A pipeline run in this checkout at the same time would trip it too.)"""
    before = tracked_output_digests()
    yield
    after = tracked_output_digests()
    changed = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    assert not changed, (
        f"the test session rewrote git-tracked files {changed}: run pipelines in a copy "
        f"(tests/workflow_utils.copy_repo), then `git checkout -- {' '.join(changed)}`"
    )
