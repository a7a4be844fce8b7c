"""A toy regression TrainTask shared by the training-loop tests and the torchrun script."""

import torch
from torch import nn

from e2etts.train import TrainTask


def regression_task(model: nn.Module, x: torch.Tensor, y: torch.Tensor, dev_x: torch.Tensor,
                    dev_y: torch.Tensor) -> TrainTask:
    """Items (x[i], y[i]); MSE loss; held-out MSE on (dev_x, dev_y) as dev_loss."""
    return TrainTask(
        kind="toy",
        model=model,
        dataset=[(x[i], y[i]) for i in range(len(x))],
        lengths=[1] * len(x),
        collate=lambda items: (torch.stack([a for a, _ in items]), torch.stack([b for _, b in items])),
        loss=lambda m, b: (nn.functional.mse_loss(m(b[0]), b[1]), {}),
        evaluate=lambda m: {"dev_loss": float(nn.functional.mse_loss(m(dev_x), dev_y))},
        export=lambda m: {"model": m.state_dict(), "config": {}},
    )


def crash_at(task: TrainTask, call: int) -> TrainTask:
    """task whose loss raises KeyboardInterrupt (a killed job) at its `call`-th call."""
    original, calls = task.loss, {"n": 0}

    def crashing(m, b):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt("simulated kill")
        return original(m, b)

    task.loss = crashing
    return task
