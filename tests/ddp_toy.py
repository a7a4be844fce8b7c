"""Launched by test_ddp.py under torchrun: the toy regression task of the shared loop."""

import sys

import torch
from torch import nn

from e2etts.train import TrainConfig, fit
from toy_tasks import regression_task


def main(out_dir: str) -> None:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 8, generator=g)
    y = x @ torch.randn(8, 1, generator=g)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.GELU(), nn.Linear(32, 1))
    task = regression_task(model, x, y, x[:16], y[:16])
    cfg = TrainConfig(max_steps=30, batch_size=8, lr=1e-2, warmup_steps=3, eval_every=10,
                      ckpt_every=10, log_every=1, progress=False, device="cpu")
    fit(task, cfg, out_dir, seed=0)


if __name__ == "__main__":
    main(sys.argv[1])
