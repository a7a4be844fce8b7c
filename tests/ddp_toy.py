"""Launched by test_ddp.py under torchrun: the toy regression task of the shared loop."""

import sys

import torch
from torch import nn

from e2etts.train import TrainConfig, TrainTask, fit


def main(out_dir: str) -> None:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 8, generator=g)
    y = x @ torch.randn(8, 1, generator=g)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.GELU(), nn.Linear(32, 1))
    task = TrainTask(
        kind="toy",
        model=model,
        dataset=[(x[i], y[i]) for i in range(64)],
        lengths=[1] * 64,
        collate=lambda items: (torch.stack([a for a, _ in items]), torch.stack([b for _, b in items])),
        loss=lambda m, b: (nn.functional.mse_loss(m(b[0]), b[1]), {}),
        evaluate=lambda m: {"dev_loss": float(nn.functional.mse_loss(m(x[:16]), y[:16]))},
        export=lambda m: {"model": m.state_dict(), "config": {}},
    )
    cfg = TrainConfig(max_steps=30, batch_size=8, lr=1e-2, warmup_steps=3, eval_every=10,
                      ckpt_every=10, log_every=1, progress=False, device="cpu")
    fit(task, cfg, out_dir, seed=0)


if __name__ == "__main__":
    main(sys.argv[1])
