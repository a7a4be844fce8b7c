"""The one checkpoint module: full training state at fixed paths, written atomically.

Layout of a component directory (results/checkpoints/s<seed>/<system>/<component>/):
  last.pt            full state (model, optimizer, scheduler, step, data position, RNG)
  step_<N>.pt        rotating copies of last.pt (train.keep_last of them)
  best.pt            model weights at the best held-out score so far
  final.pt           the selected model the rest of the pipeline reads (written last)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch

from .atomic import torch_save
from .errors import UserError

LAST = "last.pt"
BEST = "best.pt"
FINAL = "final.pt"


def _no_history() -> dict:
    return {"train_means": [], "dev_values": [], "loss_sum": 0.0, "loss_count": 0}


@dataclass
class TrainState:
    """A training run's resumable state; `to_dict()` is last.pt, key for key and in this
    order, and `from_dict(torch.load(last.pt))` reads it back.

    The training loop advances the counters (step .. history) in place. The module,
    optimizer, scheduler and RNG states are taken when a checkpoint is written and applied
    when one is resumed; in between they hold whatever was last saved or loaded.

    history: the held-out metric and the mean training loss at each evaluation (the
    memorization guard), and the training-loss sum and count since the last one. Wall-clock
    time is kept out of the state, so that the checkpoints of two runs are byte-identical;
    the training clock continues from the train log instead.
    """

    kind: str
    model: dict = field(default_factory=dict)
    optimizer: dict = field(default_factory=dict)
    scheduler: dict = field(default_factory=dict)
    step: int = 0
    epoch: int = 0
    batch_pos: int = 0  # batches of this epoch already trained on
    best: dict = field(default_factory=lambda: {"value": math.inf, "step": -1})
    evals_since_best: int = 0
    history: dict = field(default_factory=_no_history)
    rng: dict = field(default_factory=dict)
    train_config: dict = field(default_factory=dict)
    signature: str = ""

    def to_dict(self) -> dict:
        """The checkpoint dict: every field by name, in order; values as they are (no copy,
        so tensors that share storage still share it)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, state: dict) -> TrainState:
        """A checkpoint dict back (a missing `history`, from before the memorization guard,
        starts empty); keys this version does not know are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in state.items() if k in names})


def save_state(directory: Path, state: dict, keep_last: int) -> None:
    """Write a TrainState's dict as last.pt and as the newest of `keep_last` step_<N>.pt."""
    directory.mkdir(parents=True, exist_ok=True)
    torch_save(directory / LAST, state)
    if keep_last > 0:
        torch_save(directory / f"step_{state['step']:07d}.pt", state)
        rotating = sorted(directory.glob("step_*.pt"))
        for old in rotating[:-keep_last]:
            old.unlink(missing_ok=True)


def clear_states(directory: Path) -> None:
    """Remove a run's resumable state (last, rotating steps, best, final) before a fresh
    run; exported component files and anything else in the directory stay."""
    for path in [directory / LAST, *directory.glob("step_*.pt"), directory / BEST, directory / FINAL]:
        path.unlink(missing_ok=True)


def load_state(directory: Path) -> dict | None:
    path = directory / LAST
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)


def load_model_file(path: str | Path, expected_kind: str | None = None) -> dict:
    """Load a final/best checkpoint; errors name the file and what to do."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: checkpoint not found; train it first (snakemake {path})")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise UserError(f"{path}: cannot read checkpoint ({exc}); delete it and re-train") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "kind" not in ckpt:
        raise UserError(f"{path}: not an e2etts model checkpoint (missing 'model'/'kind')")
    if "config" not in ckpt:
        # last.pt and step_<N>.pt hold the training state, whose model config lives in the
        # run's final.pt / best.pt only.
        raise UserError(
            f"{path}: a training state ({LAST} / step_<N>.pt: no model config), not a model "
            f"checkpoint; pass the run's {FINAL} or {BEST}"
        )
    if expected_kind is not None and ckpt["kind"] != expected_kind:
        raise UserError(
            f"{path}: checkpoint holds a '{ckpt['kind']}' model, expected '{expected_kind}'"
        )
    return ckpt


def load_model(path: str | Path, kind: str, model_cls, config_cls):
    """Build a component from its final/best checkpoint, in eval mode -> (model, checkpoint)."""
    ckpt = load_model_file(path, expected_kind=kind)
    try:
        model = model_cls(config_cls(**ckpt["config"]))
        model.load_state_dict(ckpt["model"])
    except (TypeError, RuntimeError) as exc:
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        # load_state_dict's first line is only "Error(s) in loading state_dict for X:"; the
        # next one says which weights are missing, unexpected or of another shape.
        first = "; ".join(lines[:2]) if len(lines) > 1 and lines[0].startswith("Error(s) in loading") else lines[0]
        if len(first) > 400:
            first = first[:400] + " ..."
        raise UserError(
            f"{path}: this {kind} checkpoint does not fit the current {kind} model ({first}); "
            f"it was written by another version or configuration: re-train it (snakemake {path})"
        ) from None
    return model.eval(), ckpt
