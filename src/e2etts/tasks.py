"""The trainable tasks: one registry, name -> TaskSpec, every builder `build(ctx) -> TrainTask`.

`e2etts train <name>` looks its name up here (the parser's choices are this registry's
names). A builder imports its component's training module only when called, so importing
this module (and building the CLI parser) imports no torch. The components' own
`build_task` functions keep their explicit arguments; the builders here translate a
TaskContext into them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import UserError

if TYPE_CHECKING:
    from .train import TrainTask

# The warm-start flags of E1 (TaskContext fields and their command-line names).
WARM_STARTS = {"init_flow": "--init-flow", "init_llm": "--init-llm", "init_reward": "--init-reward"}


@dataclass(frozen=True)
class TaskContext:
    """What a builder reads: the params and the parsed `e2etts train` arguments, as paths.

    section: the params section of the model or objective (--section; default the task's
    name)."""

    name: str
    params: dict
    section: str
    features_dir: Path
    tokens_dir: Path | None = None
    manifest_dir: Path | None = None
    init: Path | None = None
    init_flow: Path | None = None
    init_llm: Path | None = None
    init_reward: Path | None = None
    flow: Path | None = None
    reward: Path | None = None
    tokenizer: Path | None = None

    @classmethod
    def from_args(cls, args, params: dict) -> TaskContext:
        def path(value: str | None) -> Path | None:
            return Path(value) if value else None

        return cls(
            name=args.component, params=params, section=args.section or args.component,
            features_dir=Path(args.features_dir), tokens_dir=path(args.tokens_dir),
            manifest_dir=path(args.manifest_dir), init=path(args.init), init_flow=path(args.init_flow),
            init_llm=path(args.init_llm), init_reward=path(args.init_reward), flow=path(args.flow),
            reward=path(args.reward), tokenizer=path(args.tokenizer),
        )

    def weights(self) -> list[Path]:
        """The weight files the run starts from or keeps frozen."""
        return [p for p in (self.init, self.flow, self.reward, self.tokenizer,
                            self.init_flow, self.init_llm, self.init_reward) if p]


@dataclass(frozen=True)
class TaskSpec:
    """One trainable task.

    requires: {TaskContext field: how the error names it} that the task cannot do without.
    warm_starts: takes E1's --init-flow/--init-llm/--init-reward. curves: exports
    learning-curve snapshots (--snapshot-every; `e2etts learning-curve`). data: where its training data lies
    ("features": features_dir or tokens_dir; "manifests": manifest_dir's wav lists)."""

    name: str
    build: Callable[[TaskContext], TrainTask]
    requires: tuple[tuple[str, str], ...] = ()
    warm_starts: bool = False
    curves: bool = False
    data: str = "features"

    def check(self, ctx: TaskContext) -> None:
        """The command-line arguments fit the task (before anything is loaded)."""
        given = [flag for key, flag in WARM_STARTS.items() if getattr(ctx, key)]
        if given and not self.warm_starts:
            raise UserError(f"train {self.name}: {', '.join(given)} warm-start E1's components: "
                            f"only for train joint_e1")
        for key, flag in self.requires:
            if getattr(ctx, key) is None:
                raise UserError(f"train {self.name}: {flag} is required")

    def inputs(self, ctx: TaskContext) -> list[Path]:
        """The files a training run reads: its data split files and the weights it starts
        from or keeps frozen (these decide whether a checkpoint in --out-dir may be resumed)."""
        if self.data == "manifests":
            data = [ctx.manifest_dir / f"{s}.tsv" for s in ("train", "dev")]
        else:
            root = ctx.tokens_dir or ctx.features_dir
            data = [root / f"{s}.pt" for s in ("train", "dev")]
        return data + ctx.weights()


TASKS: dict[str, TaskSpec] = {}


def register(name: str, **options) -> Callable:
    """Decorator: register `build(ctx) -> TrainTask` as the task `name` (once)."""

    def add(build: Callable[[TaskContext], TrainTask]) -> Callable[[TaskContext], TrainTask]:
        if name in TASKS:
            raise ValueError(f"task {name} registered twice")
        TASKS[name] = TaskSpec(name, build, **options)
        return build

    return add


def get(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise UserError(f"unknown task {name!r}; the trainable tasks are {', '.join(TASKS)}") from None


_TOKENS = ("tokens_dir", "--tokens-dir")


@register("tokenizer")
def _tokenizer(ctx: TaskContext) -> TrainTask:
    from .tokenizer.train import build_task

    return build_task(ctx.params[ctx.section], ctx.features_dir)


@register("llm", requires=(_TOKENS,), curves=True)
def _llm(ctx: TaskContext) -> TrainTask:
    from .llm.train import build_task

    return build_task(ctx.params["llm"], ctx.features_dir, ctx.tokens_dir, ctx.init, ctx.tokenizer)


@register("flow", requires=(_TOKENS,), curves=True)
def _flow(ctx: TaskContext) -> TrainTask:
    from .flow.train import build_task

    return build_task(ctx.params["flow"], ctx.features_dir, ctx.tokens_dir, ctx.init)


@register("vocoder", data="manifests")
def _vocoder(ctx: TaskContext) -> TrainTask:
    from .vocoder.train import build_task

    return build_task(ctx.params[ctx.section], ctx.manifest_dir)


@register("reward", requires=(_TOKENS,))
def _reward(ctx: TaskContext) -> TrainTask:
    from .reward.train import build_task

    return build_task(ctx.params, ctx.features_dir, ctx.tokens_dir, ctx.init)


@register("joint_e1", warm_starts=True)
def _joint_e1(ctx: TaskContext) -> TrainTask:
    from .joint.e1 import build_task

    return build_task(ctx.params, ctx.features_dir, ctx.init, ctx.init_flow, ctx.init_llm, ctx.init_reward)


@register("joint_e2", requires=(_TOKENS, ("init", "--init (stage-2 LLM)"), ("flow", "--flow"),
                                  ("reward", "--reward")))
def _joint_e2(ctx: TaskContext) -> TrainTask:
    from .joint.e2 import build_task

    return build_task(ctx.params, ctx.section, ctx.features_dir, ctx.tokens_dir, ctx.init, ctx.flow,
                      ctx.reward, ctx.tokenizer)
