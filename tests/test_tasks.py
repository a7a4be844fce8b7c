"""The task registry (e2etts.tasks): every task the CLI and the workflow train is registered
once, with one builder signature; unknown names and missing flags are clear errors."""

import inspect
import re
from pathlib import Path

import pytest

from e2etts import cli, tasks
from e2etts.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def _train_choices() -> list[str]:
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    component = next(a for a in sub.choices["train"]._actions if a.dest == "component")
    return list(component.choices)


def test_the_registry_holds_every_task_the_cli_and_the_workflow_train():
    assert _train_choices() == list(tasks.TASKS)
    assert set(tasks.TASKS) == {"tokenizer", "llm", "flow", "vocoder", "reward", "joint_e1", "joint_e2"}
    rules = "".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    trained = set(re.findall(r"\} train (\w+) ", rules))
    assert trained and trained <= set(tasks.TASKS)
    for name, spec in tasks.TASKS.items():
        assert spec.name == name
        assert list(inspect.signature(spec.build).parameters) == ["ctx"]


def test_unknown_task_is_a_clear_error(capsys):
    with pytest.raises(UserError, match=r"unknown task 'nope'; the trainable tasks are tokenizer, llm, "):
        tasks.get("nope")
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "nope", "--params", "{}", "--out-dir", "x"])
    assert exc.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_a_task_is_registered_once():
    with pytest.raises(ValueError, match="registered twice"):
        tasks.register("llm")(lambda ctx: None)
    assert tasks.TASKS["llm"].build is tasks._llm


@pytest.mark.parametrize(("argv", "message"), [
    (["flow"], "train flow: --tokens-dir is required"),
    (["joint_e2", "--tokens-dir", "t"], "train joint_e2: --init (stage-2 LLM) is required"),
    (["joint_e2", "--tokens-dir", "t", "--init", "i", "--flow", "f"], "train joint_e2: --reward is required"),
    (["llm", "--tokens-dir", "t", "--init-llm", "x"], "train llm: --init-llm warm-start E1's components"),
])
def test_missing_or_foreign_flags_name_the_task(tmp_path, capsys, argv, message):
    code = cli.main(["train", argv[0], "--params", "{}", "--out-dir", str(tmp_path), *argv[1:]])
    assert code == 2 and message in capsys.readouterr().err


def test_training_inputs_are_the_data_and_weight_files():
    args = cli.build_parser().parse_args(
        ["train", "joint_e2", "--params", "{}", "--out-dir", "x", "--tokens-dir", "tok", "--init", "llm.pt",
         "--flow", "flow.pt", "--reward", "rm.pt"])
    ctx = tasks.TaskContext.from_args(args, {})
    assert tasks.get("joint_e2").inputs(ctx) == [
        Path("tok/train.pt"), Path("tok/dev.pt"), Path("llm.pt"), Path("flow.pt"), Path("rm.pt")]
    args = cli.build_parser().parse_args(["train", "vocoder", "--params", "{}", "--out-dir", "x"])
    assert tasks.get("vocoder").inputs(tasks.TaskContext.from_args(args, {})) == [
        Path("data/manifests/train.tsv"), Path("data/manifests/dev.tsv")]
