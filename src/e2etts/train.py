"""One training loop for every component (tokenizer, LLM, flow, vocoder, reward, joint).

A component supplies a `TrainTask`: the modules to optimize, a dataset with item lengths,
a collate function, a loss, and a held-out evaluation. The loop owns everything else:
length-bucketed deterministic batching, AdamW with warm-up + cosine decay, bf16 autocast,
DDP under torchrun, full-state checkpoints with automatic resume, NaN/OOM guards,
held-out model selection, early stopping, and TSV logs that `dvc plots` reads.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import checkpoint as ckpt_io
from . import distributed as dist_util
from .atomic import file_digest, torch_save
from .errors import UserError
from .seed import rng_state, seed_everything, set_rng_state


class TrainingDiverged(UserError):
    """Loss became NaN/Inf; the last good checkpoint is kept."""


@dataclass
class TrainConfig:
    max_steps: int = 1000
    batch_size: int = 16  # global batch, in utterances (split evenly across DDP ranks)
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.98
    grad_clip: float = 1.0
    log_every: int = 10
    eval_every: int = 200
    ckpt_every: int = 200
    keep_last: int = 2
    early_stop_patience: int = 0  # evaluations without improvement; 0 disables
    # Memorization guard: stop when the held-out metric has not improved for this many
    # evaluations while the training loss kept falling (0 disables). See detect_memorization.
    memorization_span: int = 0
    memorization_min_drop: float = 0.02  # relative training-loss fall that counts as "falling"
    probe_every: int = 0  # learning-curve probe (task.probe) every N steps; 0 disables
    select_metric: str = "dev_loss"  # held-out metric for best.pt (lower is better)
    precision: str = "fp32"  # fp32 | bf16 (autocast; CPU and CUDA)
    device: str = "auto"
    compile: bool = False
    # GPU runs: deterministic kernels (slower; docs/reproducibility.md). CPU runs are
    # deterministic either way.
    deterministic: bool = False
    progress: bool = True


@dataclass
class TrainTask:
    """What a component hands the loop.

    model: the module holding every trainable parameter (frozen parts may live inside).
    lengths: per-item length (frames) used for bucketing, len == len(dataset).
    collate: list of dataset items -> batch (tensors on CPU).
    loss: (model, batch on device) -> (scalar loss, {name: float} for the log).
    evaluate: (unwrapped model) -> {metric: float} on held-out data; must hold select_metric.
    export: (unwrapped model) -> dict saved in final.pt/best.pt (weights + model config).
    """

    kind: str
    model: nn.Module
    dataset: Sequence
    lengths: Sequence[int]
    collate: Callable[[list], Any]
    loss: Callable[[nn.Module, Any], tuple[torch.Tensor, dict[str, float]]]
    evaluate: Callable[[nn.Module], dict[str, float]]
    export: Callable[[nn.Module], dict]
    find_unused_parameters: bool = False
    extra_state: dict = field(default_factory=dict)
    # (unwrapped model) -> {metric: float} from synthesized held-out speech (learning
    # curves, evaluate.curves); run every TrainConfig.probe_every steps outside the clock.
    probe: Callable[[nn.Module], dict[str, float]] | None = None
    # {submodule name: {"lr": peak lr, "warmup_steps": n}}: each submodule of `model` on its
    # own schedule (either key may be left out: TrainConfig's). Every trainable parameter
    # must lie in one. Empty: one schedule for the whole model.
    param_groups: dict[str, dict] = field(default_factory=dict)


def detect_memorization(
    train_means: Sequence[float], dev_values: Sequence[float], span: int, min_drop: float = 0.02
) -> str | None:
    """The memorization pattern docs/feasibility.md found, or None.

    train_means[i]: mean training loss over the steps before evaluation i; dev_values[i]:
    the held-out metric at evaluation i (lower is better). Fires when the best held-out
    value is ``span`` or more evaluations old while the training loss has fallen by more
    than ``min_drop`` (relative) since then.
    """
    if span <= 0 or len(dev_values) <= span or len(train_means) != len(dev_values):
        return None
    best = min(range(len(dev_values)), key=lambda i: dev_values[i])
    waited = len(dev_values) - 1 - best
    if waited < span:
        return None
    then, now = train_means[best], train_means[-1]
    if now < then * (1 - min_drop):
        return (
            f"held-out metric has not improved for {waited} evaluations (best "
            f"{dev_values[best]:.4f} at evaluation {best + 1}) while the training loss fell "
            f"{then:.4f} -> {now:.4f}: the model is memorizing its training set"
        )
    return None


def make_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Deterministic length-bucketed batches for one epoch.

    Items are shuffled, then sorted by length inside windows of 50 batches so padding stays
    small while batch composition still varies from epoch to epoch.
    """
    g = torch.Generator().manual_seed(seed * 1000003 + epoch)
    order = torch.randperm(len(lengths), generator=g).tolist()
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    batches = [b for b in batches if len(b) == batch_size] or batches[:1]
    perm = torch.randperm(len(batches), generator=g).tolist()
    return [batches[i] for i in perm]


def lr_lambda(cfg: TrainConfig, warmup_steps: int | None = None) -> Callable[[int], float]:
    """step -> the factor on a group's peak lr: linear warm-up over `warmup_steps`
    (default cfg.warmup_steps), then cosine decay to cfg.min_lr_ratio at cfg.max_steps."""
    warmup = cfg.warmup_steps if warmup_steps is None else warmup_steps

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        progress = (step - warmup) / max(1, cfg.max_steps - warmup)
        cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine

    return f


def make_optimizer(model: nn.Module, cfg: TrainConfig,
                   param_groups: dict[str, dict] | None = None) -> torch.optim.Optimizer:
    """AdamW; no weight decay on vectors (biases, norms). param_groups (TrainTask's): each
    named submodule's parameters in groups of their own, each group holding its peak "lr",
    "warmup_steps" and "name" (make_scheduler and the train log read them)."""
    if param_groups:
        return _grouped_optimizer(model, cfg, param_groups)
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))


def _grouped_optimizer(model: nn.Module, cfg: TrainConfig, param_groups: dict[str, dict]) -> torch.optim.Optimizer:
    groups, claimed = [], set()
    for name, settings in param_groups.items():
        decay, no_decay = [], []
        for pname, p in model.named_parameters():
            if p.requires_grad and pname.startswith(f"{name}."):
                (decay if p.dim() >= 2 else no_decay).append(p)
                claimed.add(pname)
        common = {"name": name, "lr": settings.get("lr", cfg.lr),
                  "warmup_steps": settings.get("warmup_steps", cfg.warmup_steps)}
        groups += [{"params": decay, "weight_decay": cfg.weight_decay, **common},
                   {"params": no_decay, "weight_decay": 0.0, **common}]
    stray = [n for n, p in model.named_parameters() if p.requires_grad and n not in claimed]
    if stray:
        raise UserError(f"param groups {', '.join(param_groups)} leave trainable parameters out "
                        f"({', '.join(stray[:5])}{' ...' if len(stray) > 5 else ''})")
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """Warm-up + cosine on every group's own peak lr: LambdaLR multiplies each group's
    initial lr by its factor, so a group keeps its own peak; one from make_optimizer's
    param_groups also keeps its own warm-up."""
    if any("warmup_steps" in g for g in optimizer.param_groups):
        factors = [lr_lambda(cfg, g.get("warmup_steps")) for g in optimizer.param_groups]
        return torch.optim.lr_scheduler.LambdaLR(optimizer, factors)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg))


def pin(batch: Any) -> Any:
    """Page-locked copies of a batch's CPU tensors, so the copy to a GPU can overlap."""
    if isinstance(batch, torch.Tensor):
        return batch.pin_memory()
    if isinstance(batch, dict):
        return {k: pin(v) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(pin(v) for v in batch)
    return batch


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


LOG_NAMES = ("train_log.tsv", "dev_log.tsv", "curve_log.tsv")


class TsvLog:
    """Append-only TSV log; on resume rows after the resumed step are dropped."""

    def __init__(self, path: Path, resume_step: int | None):
        self.path = path
        self.columns: list[str] | None = None
        self.last_row: dict[str, str] = {}  # the last row kept on resume
        if path.exists() and resume_step is not None:
            with path.open() as fh:
                rows = list(csv.DictReader(fh, delimiter="\t"))
            kept = [r for r in rows if int(r["step"]) <= resume_step]
            self.last_row = kept[-1] if kept else {}
            self.columns = list(rows[0].keys()) if rows else None
            with path.open("w") as fh:
                if self.columns:
                    writer = csv.DictWriter(fh, self.columns, delimiter="\t")
                    writer.writeheader()
                    writer.writerows(kept)
        elif path.exists():
            path.unlink()

    def last_value(self, column: str) -> float:
        """The column's value in the last row kept on resume (0.0 when there is none)."""
        try:
            return float(self.last_row[column])
        except (KeyError, ValueError):
            return 0.0

    def write(self, row: dict) -> None:
        if self.columns is None:
            self.columns = list(row.keys())
            with self.path.open("w") as fh:
                fh.write("\t".join(self.columns) + "\n")
        with self.path.open("a") as fh:
            fh.write("\t".join(_fmt(row.get(c, "")) for c in self.columns) + "\n")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _held_out(measure: Callable[[nn.Module], dict[str, float]], model: nn.Module) -> dict[str, float]:
    """Run a held-out measurement (task.evaluate, task.probe) in eval mode without gradients.

    It must not perturb the training RNG stream, or a run that evaluates at a different
    moment (or resumes) would diverge from an uninterrupted one."""
    state = rng_state()
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return measure(model)
    finally:
        model.train(was_training)
        set_rng_state(state)


# Settings that do not change what is trained (a resume may differ in them).
_NOT_IN_SIGNATURE = ("progress", "device", "compile", "probe_every", "log_every")


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
    signature = {
        "inputs": inputs,
        "kind": task.kind,
        "seed": seed,
        "config": exported.get("config"),
        "shapes": {k: list(v.shape) for k, v in model.state_dict().items()},
        "train": {k: v for k, v in asdict(cfg).items() if k not in _NOT_IN_SIGNATURE},
    }
    if task.param_groups:  # absent when unused, so older runs keep their signatures
        signature["param_groups"] = task.param_groups
    blob = json.dumps(signature, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def fit(task: TrainTask, cfg: TrainConfig, out_dir: str | Path, seed: int,
        log_dir: str | Path | None = None, inputs: str | None = None) -> dict:
    """Train to cfg.max_steps (or early stop), resuming from out_dir/last.pt if present
    and saved by the same run (same settings, seed and ``inputs``, an ``input_digest``).

    Returns the final held-out metrics. Writes final.pt last, so its presence means done.
    """
    out_dir = Path(out_dir)
    world_size = dist_util.world_size_from_env()
    if cfg.batch_size % world_size:
        raise UserError(
            f"train.batch_size={cfg.batch_size} must be divisible by the number of processes "
            f"({world_size})"
        )
    info = dist_util.init(cfg.device)
    out_dir.mkdir(parents=True, exist_ok=True)
    # The logs carry wall-clock columns; kept apart from the checkpoints (log_dir), the
    # checkpoint directory of two runs with the same seed hashes the same.
    log_dir = Path(log_dir) if log_dir is not None else out_dir
    log_dir.mkdir(parents=True, exist_ok=True)
    if log_dir.resolve() != out_dir.resolve():
        for name in LOG_NAMES:  # written there by an older layout; would spoil the dir's hash
            (out_dir / name).unlink(missing_ok=True)
    if cfg.deterministic:
        # cuBLAS needs a fixed workspace to be deterministic; set before its first use.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    seed_everything(seed)
    model = task.model.to(info.device)
    optimizer = make_optimizer(model, cfg, task.param_groups)
    scheduler = make_scheduler(optimizer, cfg)

    step, epoch, batch_pos = 0, 0, 0
    best = {"value": math.inf, "step": -1}
    evals_since_best = 0
    # Held-out metric and mean training loss at each evaluation (memorization guard), and
    # the running training-loss sum since the last evaluation. Wall-clock time is kept out
    # of the state so that resumable checkpoints of two runs are byte-identical; the
    # training clock continues from the train log instead.
    history = {"train_means": [], "dev_values": [], "loss_sum": 0.0, "loss_count": 0}
    signature = run_signature(task, model, cfg, seed, inputs)
    state = ckpt_io.load_state(out_dir)
    if state is not None and state.get("signature") != signature:
        # A changed params section re-runs the rule: its old checkpoints belong to another
        # run, and resuming them would mix two configurations (or fail on shapes).
        if info.is_main:
            print(f"[train] {out_dir / ckpt_io.LAST} was saved by a run with other settings "
                  f"(model, training section, seed or input files changed); starting "
                  f"{task.kind} afresh")
            ckpt_io.clear_states(out_dir)
        dist_util.barrier(info)
        state = None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, epoch, batch_pos = state["step"], state["epoch"], state["batch_pos"]
        best = state["best"]
        evals_since_best = state["evals_since_best"]
        history = state.get("history", history)
        set_rng_state(state["rng"])
        if info.is_main:
            print(f"[train] resumed {task.kind} from {out_dir / ckpt_io.LAST} at step {step}")

    train_model: nn.Module = model
    if info.enabled:
        train_model = nn.parallel.DistributedDataParallel(
            model,
            device_ids=[info.device.index] if info.device.type == "cuda" else None,
            find_unused_parameters=task.find_unused_parameters,
        )
    if cfg.compile:
        train_model = torch.compile(train_model)

    logs = None
    if info.is_main:
        resume_step = step if state is not None else None
        logs = {
            "train": TsvLog(log_dir / "train_log.tsv", resume_step),
            "dev": TsvLog(log_dir / "dev_log.tsv", resume_step),
        }
        if task.probe is not None and cfg.probe_every:
            logs["curve"] = TsvLog(log_dir / "curve_log.tsv", resume_step)
    progress = None
    if info.is_main and cfg.progress:
        from tqdm import tqdm

        progress = tqdm(total=cfg.max_steps, initial=step, desc=task.kind, mininterval=5)

    def save(final_metrics: dict | None = None) -> None:
        if not info.is_main:
            return
        ckpt_io.save_state(
            out_dir,
            {
                "kind": task.kind,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "step": step,
                "epoch": epoch,
                "batch_pos": batch_pos,
                "best": best,
                "evals_since_best": evals_since_best,
                "history": {**history, "loss_sum": float(loss_sum), "loss_count": loss_count},
                "rng": rng_state(),
                "train_config": asdict(cfg),
                "signature": signature,
            },
            cfg.keep_last,
        )

    def run_eval() -> bool:
        """Evaluate, log, update best.pt. Returns True when early stopping triggers."""
        nonlocal evals_since_best, loss_sum, loss_count
        stop = torch.zeros(1)
        if info.is_main:
            metrics = _held_out(task.evaluate, model)
            if cfg.select_metric not in metrics:
                raise RuntimeError(f"evaluate() must report '{cfg.select_metric}'")
            value = metrics[cfg.select_metric]
            history["dev_values"].append(float(value))
            history["train_means"].append(float(loss_sum) / max(loss_count, 1))
            loss_sum, loss_count = torch.zeros_like(loss_sum), 0
            memorizing = detect_memorization(
                history["train_means"], history["dev_values"], cfg.memorization_span,
                cfg.memorization_min_drop,
            )
            logs["dev"].write({"step": step, **metrics, "train_loss": history["train_means"][-1],
                               "train_min": round(clock() / 60, 3)})
            if value < best["value"]:
                best.update(value=float(value), step=step)
                evals_since_best = 0
                torch_save(out_dir / ckpt_io.BEST, _export(task, model, step, metrics))
            else:
                evals_since_best += 1
            if cfg.early_stop_patience and evals_since_best >= cfg.early_stop_patience:
                print(f"[train] early stop at step {step}: no {cfg.select_metric} gain in "
                      f"{evals_since_best} evaluations (best {best['value']:.4f} at {best['step']})")
                stop[0] = 1
            if memorizing:
                print(f"[train] {task.kind} stopped at step {step}: {memorizing}; keeping the "
                      f"held-out best (step {best['step']}). More distinct training data or "
                      "more regularization is the fix, not more steps")
                stop[0] = 1
        if info.enabled:
            torch.distributed.broadcast(stop, 0)
        return bool(stop.item())

    def run_probe() -> None:
        if not (info.is_main and task.probe is not None and cfg.probe_every):
            return
        minutes = round(clock() / 60, 3)  # training time so far; the probe's own is not
        figures = _held_out(task.probe, model)
        logs["curve"].write({"step": step, "train_min": minutes, **figures})
        print(f"[train] {task.kind} step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in figures.items()))

    # Summed on the device in float64 (the same sums as Python floats): reading the loss
    # back every step would stall a GPU; it is read once per evaluation.
    loss_sum = torch.tensor(history["loss_sum"], dtype=torch.float64, device=info.device)
    loss_count = history["loss_count"]
    # Seconds spent training (evaluation included, learning-curve probes not), continued
    # across resumes from the last kept row of the train log.
    clock_base = logs["train"].last_value("wall_s") if logs is not None else 0.0
    clock_start = time.perf_counter()

    def clock() -> float:
        return clock_base + time.perf_counter() - clock_start

    if step == 0:
        run_probe()  # the untrained starting point of the curve
        clock_start = time.perf_counter()
    stopped = False
    model.train()
    while step < cfg.max_steps and not stopped:
        batches = make_batches(task.lengths, cfg.batch_size, seed, epoch)
        while batch_pos < len(batches) and step < cfg.max_steps:
            indices = batches[batch_pos][info.rank :: info.world_size]
            batch = task.collate([task.dataset[i] for i in indices])
            if info.device.type == "cuda":
                batch = pin(batch)
            batch = to_device(batch, info.device)
            try:
                with _autocast(info.device, cfg.precision):
                    loss, parts = task.loss(train_model, batch)
                if not torch.isfinite(loss):
                    raise TrainingDiverged(
                        f"{task.kind}: loss is {loss.item()} at step {step + 1}; stopped, the last "
                        f"good checkpoint {out_dir / ckpt_io.LAST} is kept. Lower train.lr or "
                        f"raise train.warmup_steps, then re-run to resume"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            except torch.OutOfMemoryError:
                raise UserError(
                    f"{task.kind}: out of memory on a batch of {len(indices)} utterances per "
                    f"process; lower train.batch_size (now {cfg.batch_size})"
                ) from None
            optimizer.step()
            scheduler.step()
            loss_sum += loss.detach()
            loss_count += 1
            step += 1
            batch_pos += 1
            if progress is not None:
                progress.update(1)
            if step % cfg.log_every == 0 or step == 1:
                # The logged loss is the global-batch mean, comparable across world sizes.
                global_loss = float(dist_util.all_reduce_mean(loss.detach().float(), info))
            if info.is_main and (step % cfg.log_every == 0 or step == 1):
                logs["train"].write(
                    {
                        "step": step,
                        "epoch": epoch,
                        "loss": global_loss,
                        **{k: float(v) for k, v in parts.items()},
                        "grad_norm": float(grad_norm),
                        "lr": scheduler.get_last_lr()[0],
                        **{f"lr_{g['name']}": g["lr"] for g in optimizer.param_groups if "name" in g},
                        "wall_s": round(clock(), 2),
                    }
                )
            if step % cfg.eval_every == 0 or step == cfg.max_steps:
                stopped = run_eval()
            if cfg.probe_every and (step % cfg.probe_every == 0 or step == cfg.max_steps or stopped):
                paused = time.perf_counter()
                run_probe()
                clock_start += time.perf_counter() - paused  # probes are not training time
            if step % cfg.ckpt_every == 0 or step == cfg.max_steps or stopped:
                save()
            if stopped:
                break
        if batch_pos >= len(batches):
            epoch += 1
            batch_pos = 0
    if progress is not None:
        progress.close()

    if info.is_main:
        if best["step"] < 0:  # no evaluation ever ran (max_steps == 0)
            run_eval()
        final = torch.load(out_dir / ckpt_io.BEST, map_location="cpu", weights_only=False)
        torch_save(out_dir / ckpt_io.FINAL, final)
        print(f"[train] {task.kind}: selected step {best['step']} "
              f"({cfg.select_metric}={best['value']:.4f}) -> {out_dir / ckpt_io.FINAL}")
    dist_util.barrier(info)
    result = dict(best)
    dist_util.shutdown(info)
    return result


def _export(task: TrainTask, model: nn.Module, step: int, metrics: dict) -> dict:
    exported = task.export(model)
    exported.update(kind=task.kind, step=step, dev=metrics)
    return exported
