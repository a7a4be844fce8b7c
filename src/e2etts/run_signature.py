"""Which run a checkpoint belongs to: a resume continues only a run with the same
signature (same model, training settings, seed and input files)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from .atomic import file_digest
from .errors import UserError

if TYPE_CHECKING:
    from torch import nn

    from .train import TrainConfig, TrainTask

# Settings that do not change what is trained (a resume may differ in them).
_NOT_IN_SIGNATURE = ("progress", "device", "compile", "snapshot_every", "log_every")


def input_digest(paths: list[str | Path]) -> str:
    """Content hash of a run's input files (training data, initial and frozen weights)."""
    h = hashlib.sha256()
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path}: training input not found")
        h.update(f"{path.name}\0{file_digest(path)}\0".encode())
    return h.hexdigest()[:16]


def run_signature(task: TrainTask, model: nn.Module, cfg: TrainConfig, seed: int,
                  inputs: str | None = None) -> str:
    """Fingerprint of what a run trains: component kind, model config and parameter
    shapes, training settings, seed, and the digest of its input files. A checkpoint
    resumes only a run with the same one. (Session 4: without the inputs, an E2 rule
    re-run on a new stage-2 LLM resumed the old run's finished last.pt and silently
    reported stale weights.)"""
    exported = task.export(model)
    config = exported.get("config")
    if isinstance(config, dict):
        # A model setting added later takes None for "as before it existed" (e.g.
        # llm.model.attention_dropout): left out, so a run interrupted before the key
        # existed still resumes under the code that has it.
        config = {k: v for k, v in config.items() if v is not None}
    signature = {
        "inputs": inputs,
        "kind": task.kind,
        "seed": seed,
        "config": config,
        "shapes": {k: list(v.shape) for k, v in model.state_dict().items()},
        "train": {k: v for k, v in asdict(cfg).items() if k not in _NOT_IN_SIGNATURE},
    }
    if task.param_groups:  # absent when unused, so older runs keep their signatures
        signature["param_groups"] = task.param_groups
    blob = json.dumps(signature, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
