import os

import pytest
import torch

# The machine has 2 cores; one torch thread per test process keeps runs comparable.
torch.set_num_threads(1)
os.environ.setdefault("DVC_NO_ANALYTICS", "1")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
