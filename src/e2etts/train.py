"""One training loop for every component (tokenizer, LLM, flow, vocoder, reward, joint).

A component supplies a `TrainTask`: the modules to optimize, a dataset with item lengths,
a collate function, a loss, and a held-out evaluation. The loop owns everything else:
length-bucketed deterministic batching, AdamW with warm-up + cosine decay, bf16 autocast,
DDP under torchrun, full-state checkpoints with automatic resume, NaN/OOM guards,
held-out model selection, early stopping, and TSV logs that `dvc plots` reads.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import checkpoint as ckpt_io
from . import distributed as dist_util
from .atomic import torch_save
from .batching import make_batches, to_device
from .checkpoint import TrainState
from .errors import UserError
from .run_signature import run_signature
from .seed import rng_state, seed_everything, set_rng_state
from .train_log import LOG_NAMES, SNAPSHOT_DIR, SNAPSHOT_LOG, TsvLog


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
    # Export the weights every N steps, at step 0 and at the end to <out_dir>/snapshots/ for
    # the learning-curve rule (evaluate.curves, `e2etts learning-curve`); 0 disables. The
    # probes that score them run as their own job, so what they read (synthesis, vocoder,
    # judges) is not a training input.
    snapshot_every: int = 0
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
    # {submodule name: {"lr": peak lr, "warmup_steps": n, "hold_steps": n}}: each submodule of
    # `model` on its own schedule (lr and warmup_steps may be left out: TrainConfig's; hold_steps:
    # none). Every trainable parameter must lie in one. Empty: one schedule for the whole model.
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


def lr_lambda(cfg: TrainConfig, warmup_steps: int | None = None, hold_steps: int = 0) -> Callable[[int], float]:
    """step -> the factor on a group's peak lr: 0 for the first `hold_steps` steps (the group
    does not move while the others learn), then linear warm-up over `warmup_steps` (default
    cfg.warmup_steps), then cosine decay to cfg.min_lr_ratio at cfg.max_steps."""
    warmup = cfg.warmup_steps if warmup_steps is None else warmup_steps

    def f(step: int) -> float:
        if step < hold_steps:
            return 0.0
        step -= hold_steps
        if step < warmup:
            return (step + 1) / max(1, warmup)
        progress = (step - warmup) / max(1, cfg.max_steps - hold_steps - warmup)
        cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine

    return f


def make_optimizer(model: nn.Module, cfg: TrainConfig,
                   param_groups: dict[str, dict] | None = None) -> torch.optim.Optimizer:
    """AdamW; no weight decay on vectors (biases, norms). param_groups (TrainTask's): each
    named submodule's parameters in groups of their own, each group holding its peak "lr",
    "warmup_steps", "name" and, when set, "hold_steps" (make_scheduler and the train log read
    them)."""
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
        if settings.get("hold_steps"):
            # Only when set: the optimizer's state (last.pt) of every other schedule stays as before.
            common["hold_steps"] = settings["hold_steps"]
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
        factors = [lr_lambda(cfg, g.get("warmup_steps"), g.get("hold_steps", 0)) for g in optimizer.param_groups]
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


def _autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _held_out(measure: Callable[[nn.Module], dict[str, float]], model: nn.Module) -> dict[str, float]:
    """Run a held-out measurement (task.evaluate) in eval mode without gradients.

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




class _Clock:
    """Seconds spent training (evaluation included, learning-curve probes not), continued
    across resumes from the last kept row of the train log."""

    def __init__(self, base: float):
        self.base = base
        self.start = time.perf_counter()

    def __call__(self) -> float:
        return self.base + time.perf_counter() - self.start

    def restart(self) -> None:
        self.start = time.perf_counter()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        paused = time.perf_counter()
        yield
        self.start += time.perf_counter() - paused


def fit(task: TrainTask, cfg: TrainConfig, out_dir: str | Path, seed: int,
        log_dir: str | Path | None = None, inputs: str | None = None) -> dict:
    """Train to cfg.max_steps (or early stop), resuming from out_dir/last.pt if present
    and saved by the same run (same settings, seed and ``inputs``, an ``input_digest``).

    Returns the final held-out metrics. Writes final.pt last, so its presence means done.
    """
    return Trainer(task, cfg, Path(out_dir), seed, log_dir, inputs).run()


class Trainer:
    """fit()'s loop. What a checkpoint holds is one TrainState (self.state); everything
    else is set up once from the task and the settings: devices, the optimizer, the logs."""

    def __init__(self, task: TrainTask, cfg: TrainConfig, out_dir: Path, seed: int,
                 log_dir: str | Path | None, inputs: str | None):
        self.task, self.cfg, self.out_dir, self.seed = task, cfg, out_dir, seed
        world_size = dist_util.world_size_from_env()
        if cfg.batch_size % world_size:
            raise UserError(
                f"train.batch_size={cfg.batch_size} must be divisible by the number of processes "
                f"({world_size})"
            )
        self.info = dist_util.init(cfg.device)
        self.log_dir = self._make_dirs(log_dir)
        if cfg.deterministic:
            # cuBLAS needs a fixed workspace to be deterministic; set before its first use.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        seed_everything(seed)
        self.model = task.model.to(self.info.device)
        self.optimizer = make_optimizer(self.model, cfg, task.param_groups)
        self.scheduler = make_scheduler(self.optimizer, cfg)
        self.state = TrainState(kind=task.kind, train_config=asdict(cfg),
                                signature=run_signature(task, self.model, cfg, seed, inputs))
        resumed = self._resume()
        if not resumed and self.info.is_main:
            # A fresh run's curve starts again: another run's snapshots are not its points.
            for path in (self.out_dir / SNAPSHOT_DIR).glob("step_*.pt"):
                path.unlink()
        self.train_model = self._wrap(self.model)
        self.logs = self._open_logs(resumed)
        self.progress = None
        if self.info.is_main and cfg.progress:
            from tqdm import tqdm

            self.progress = tqdm(total=cfg.max_steps, initial=self.state.step, desc=task.kind, mininterval=5)
        # The training-loss sum since the last evaluation, kept on the device in float64 (the
        # same sums as Python floats): reading the loss back every step would stall a GPU;
        # it is read once per evaluation (and into state.history when saving).
        self.loss_sum = torch.tensor(self.state.history["loss_sum"], dtype=torch.float64, device=self.info.device)
        self.clock = _Clock(self.logs["train"].last_value("wall_s") if self.logs is not None else 0.0)

    # -- set-up -----------------------------------------------------------------------

    def _make_dirs(self, log_dir: str | Path | None) -> Path:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        # The logs carry wall-clock columns; kept apart from the checkpoints (log_dir), the
        # checkpoint directory of two runs with the same seed hashes the same.
        log_dir = Path(log_dir) if log_dir is not None else self.out_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        if log_dir.resolve() != self.out_dir.resolve():
            for name in LOG_NAMES:  # written there by an older layout; would spoil the dir's hash
                (self.out_dir / name).unlink(missing_ok=True)
        return log_dir

    def _resume(self) -> bool:
        """Continue from out_dir/last.pt when the same run saved it. -> whether it did."""
        saved = ckpt_io.load_state(self.out_dir)
        if saved is not None and saved.get("signature") != self.state.signature:
            # A changed params section re-runs the rule: its old checkpoints belong to another
            # run, and resuming them would mix two configurations (or fail on shapes).
            if self.info.is_main:
                print(f"[train] {self.out_dir / ckpt_io.LAST} was saved by a run with other settings "
                      f"(model, training section, seed or input files changed); starting "
                      f"{self.task.kind} afresh")
                ckpt_io.clear_states(self.out_dir)
            dist_util.barrier(self.info)
            saved = None
        if saved is None:
            return False
        # The settings outside the signature (progress, log_every, ...) are this run's.
        fresh = self.state
        self.state = replace(TrainState.from_dict(saved), kind=fresh.kind,
                             train_config=fresh.train_config, signature=fresh.signature)
        self.model.load_state_dict(self.state.model)
        self.optimizer.load_state_dict(self.state.optimizer)
        self.scheduler.load_state_dict(self.state.scheduler)
        set_rng_state(self.state.rng)
        if self.info.is_main:
            print(f"[train] resumed {self.task.kind} from {self.out_dir / ckpt_io.LAST} at step {self.state.step}")
        return True

    def _wrap(self, model: nn.Module) -> nn.Module:
        """The module the loss runs through: DDP under torchrun, compiled if asked."""
        if self.info.enabled:
            model = nn.parallel.DistributedDataParallel(
                model,
                device_ids=[self.info.device.index] if self.info.device.type == "cuda" else None,
                find_unused_parameters=self.task.find_unused_parameters,
            )
        if self.cfg.compile:
            model = torch.compile(model)
        return model

    def _open_logs(self, resumed: bool) -> dict[str, TsvLog] | None:
        if not self.info.is_main:
            return None
        resume_step = self.state.step if resumed else None
        logs = {
            "train": TsvLog(self.log_dir / "train_log.tsv", resume_step),
            "dev": TsvLog(self.log_dir / "dev_log.tsv", resume_step),
        }
        if self.cfg.snapshot_every:
            logs["snapshot"] = TsvLog(self.log_dir / SNAPSHOT_LOG, resume_step)
        return logs

    # -- the loop ---------------------------------------------------------------------

    def run(self) -> dict:
        state, cfg = self.state, self.cfg
        if state.step == 0:
            self.snapshot()  # the untrained starting point of the curve
            self.clock.restart()
        stopped = False
        self.model.train()
        while state.step < cfg.max_steps and not stopped:
            batches = make_batches(self.task.lengths, cfg.batch_size, self.seed, state.epoch)
            while state.batch_pos < len(batches) and state.step < cfg.max_steps and not stopped:
                self.train_step(batches[state.batch_pos][self.info.rank :: self.info.world_size])
                stopped = self.after_step()
            if state.batch_pos >= len(batches):
                state.epoch += 1
                state.batch_pos = 0
        if self.progress is not None:
            self.progress.close()
        return self.finish()

    def train_step(self, indices: list[int]) -> None:
        """One optimizer step on this process's share of a batch; logs every log_every."""
        task, cfg, state = self.task, self.cfg, self.state
        batch = task.collate([task.dataset[i] for i in indices])
        if self.info.device.type == "cuda":
            batch = pin(batch)
        batch = to_device(batch, self.info.device)
        try:
            with _autocast(self.info.device, cfg.precision):
                loss, parts = task.loss(self.train_model, batch)
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"{task.kind}: loss is {loss.item()} at step {state.step + 1}; stopped, the last "
                    f"good checkpoint {self.out_dir / ckpt_io.LAST} is kept. Lower train.lr or "
                    f"raise train.warmup_steps, then re-run to resume"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        except torch.OutOfMemoryError:
            raise UserError(
                f"{task.kind}: out of memory on a batch of {len(indices)} utterances per "
                f"process; lower train.batch_size (now {cfg.batch_size})"
            ) from None
        self.optimizer.step()
        self.scheduler.step()
        self.loss_sum += loss.detach()
        state.history["loss_count"] += 1
        state.step += 1
        state.batch_pos += 1
        if self.progress is not None:
            self.progress.update(1)
        if state.step % cfg.log_every == 0 or state.step == 1:
            self._log_step(loss, parts, grad_norm)

    def _log_step(self, loss: torch.Tensor, parts: dict, grad_norm: torch.Tensor) -> None:
        # The logged loss is the global-batch mean, comparable across world sizes.
        global_loss = float(dist_util.all_reduce_mean(loss.detach().float(), self.info))
        if not self.info.is_main:
            return
        self.logs["train"].write(
            {
                "step": self.state.step,
                "epoch": self.state.epoch,
                "loss": global_loss,
                **{k: float(v) for k, v in parts.items()},
                "grad_norm": float(grad_norm),
                "lr": self.scheduler.get_last_lr()[0],
                **{f"lr_{g['name']}": g["lr"] for g in self.optimizer.param_groups if "name" in g},
                "wall_s": round(self.clock(), 2),
            }
        )

    def after_step(self) -> bool:
        """Evaluate, probe and save when due. -> whether training stops here."""
        step, cfg = self.state.step, self.cfg
        stopped = False
        if step % cfg.eval_every == 0 or step == cfg.max_steps:
            stopped = self.evaluate()
        if cfg.snapshot_every and (step % cfg.snapshot_every == 0 or step == cfg.max_steps or stopped):
            with self.clock.paused():  # writing the snapshot is not training time
                self.snapshot()
        if step % cfg.ckpt_every == 0 or step == cfg.max_steps or stopped:
            self.save()
        return stopped

    def evaluate(self) -> bool:
        """Evaluate, log, update best.pt (main process). -> whether to stop (early stopping,
        memorization), agreed by every process."""
        stop = torch.zeros(1)
        if self.info.is_main and self._evaluate_main():
            stop[0] = 1
        if self.info.enabled:
            torch.distributed.broadcast(stop, 0)
        return bool(stop.item())

    def _evaluate_main(self) -> bool:
        task, cfg, state, history = self.task, self.cfg, self.state, self.state.history
        metrics = _held_out(task.evaluate, self.model)
        if cfg.select_metric not in metrics:
            raise RuntimeError(f"evaluate() must report '{cfg.select_metric}'")
        value = metrics[cfg.select_metric]
        history["dev_values"].append(float(value))
        history["train_means"].append(float(self.loss_sum) / max(history["loss_count"], 1))
        self.loss_sum = torch.zeros_like(self.loss_sum)
        history["loss_count"] = 0
        memorizing = detect_memorization(
            history["train_means"], history["dev_values"], cfg.memorization_span, cfg.memorization_min_drop,
        )
        self.logs["dev"].write({"step": state.step, **metrics, "train_loss": history["train_means"][-1],
                                "train_min": round(self.clock() / 60, 3)})
        best = state.best
        if value < best["value"]:
            best.update(value=float(value), step=state.step)
            state.evals_since_best = 0
            torch_save(self.out_dir / ckpt_io.BEST, _export(task, self.model, state.step, metrics))
        else:
            state.evals_since_best += 1
        stop = False
        if cfg.early_stop_patience and state.evals_since_best >= cfg.early_stop_patience:
            print(f"[train] early stop at step {state.step}: no {cfg.select_metric} gain in "
                  f"{state.evals_since_best} evaluations (best {best['value']:.4f} at {best['step']})")
            stop = True
        if memorizing:
            print(f"[train] {task.kind} stopped at step {state.step}: {memorizing}; keeping the "
                  f"held-out best (step {best['step']}). More distinct training data or "
                  "more regularization is the fix, not more steps")
            stop = True
        return stop

    def snapshot(self) -> None:
        """The weights now, exported like final.pt, to snapshots/step_<N>.pt, and a row of the
        snapshot log (step, training minutes, file) for the learning-curve rule (main process).

        The log holds the minutes (a wall-clock figure) so the checkpoint directory of two
        runs with the same seed keeps the same bytes. Nothing here touches the RNG."""
        if not (self.info.is_main and self.cfg.snapshot_every):
            return
        minutes = round(self.clock() / 60, 3)  # training time so far
        step = self.state.step
        path = self.out_dir / SNAPSHOT_DIR / f"step_{step:07d}.pt"
        torch_save(path, _export(self.task, self.model, step, {}))
        self.logs["snapshot"].write({"step": step, "train_min": minutes,
                                     "snapshot": str(path.relative_to(self.out_dir))})

    def save(self) -> None:
        """last.pt (and a rotating step_<N>.pt): the state, with the module, optimizer,
        scheduler and RNG states taken now (main process)."""
        if not self.info.is_main:
            return
        state = self.state
        state.model = self.model.state_dict()
        state.optimizer = self.optimizer.state_dict()
        state.scheduler = self.scheduler.state_dict()
        state.history["loss_sum"] = float(self.loss_sum)
        state.rng = rng_state()
        ckpt_io.save_state(self.out_dir, state.to_dict(), self.cfg.keep_last)

    def finish(self) -> dict:
        """final.pt: a copy of best.pt, written last. -> the selected step and its metric."""
        best = self.state.best
        if self.info.is_main:
            if best["step"] < 0:  # no evaluation ever ran (max_steps == 0)
                self.evaluate()
            final = torch.load(self.out_dir / ckpt_io.BEST, map_location="cpu", weights_only=False)
            torch_save(self.out_dir / ckpt_io.FINAL, final)
            print(f"[train] {self.task.kind}: selected step {best['step']} "
                  f"({self.cfg.select_metric}={best['value']:.4f}, trained on {self.info.device}) "
                  f"-> {self.out_dir / ckpt_io.FINAL}")
        dist_util.barrier(self.info)
        result = dict(best)
        dist_util.shutdown(self.info)
        return result


def _export(task: TrainTask, model: nn.Module, step: int, metrics: dict) -> dict:
    exported = task.export(model)
    exported.update(kind=task.kind, step=step, dev=metrics)
    return exported
