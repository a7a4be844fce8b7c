"""Component boundaries (issue 19): a component package depends on shared modules and on
other components' models, never on another component's training code or on joint/; the
inference side (synthesis, evaluation) loads models without importing training code."""

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "e2etts"
COMPONENTS = ("tokenizer", "llm", "flow", "reward", "vocoder")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of every module `path` imports, at any depth of the file (imports
    inside functions count: they run too)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from .x import train`
    return {name for name in found if name.startswith("e2etts")}


def _violations() -> list[str]:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        parts = module.split(".")
        own = parts[1] if len(parts) > 2 and parts[1] in COMPONENTS else None
        inference = module in ("e2etts.synthesis",) or module.startswith("e2etts.evaluate")
        for name in sorted(_imports(path)):
            target = name.split(".")
            if own and target[1:2] == ["joint"]:
                bad.append(f"{module} imports {name} (joint/ from a component)")
            if len(target) > 2 and target[1] in COMPONENTS and target[2] == "train":
                if own and target[1] != own:
                    bad.append(f"{module} imports {name} (another component's training code)")
                if inference:
                    bad.append(f"{module} imports {name} (training code on the inference side)")
    return bad


def test_no_component_imports_another_components_training_code_or_joint():
    assert _violations() == []


def test_the_walker_sees_a_violation(tmp_path, monkeypatch):
    """The check can fail: a component module importing joint/ and another's train module,
    absolutely and relatively, inside a function too."""
    fake = tmp_path / "e2etts"
    (fake / "reward").mkdir(parents=True)
    (fake / "reward" / "bad.py").write_text(
        "from ..joint.e1 import JointE1\n"
        "def f():\n    from e2etts.tokenizer.train import build_task\n"
        "    from ..llm import train\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert _violations() == [
        "e2etts.reward.bad imports e2etts.joint.e1 (joint/ from a component)",
        "e2etts.reward.bad imports e2etts.joint.e1.JointE1 (joint/ from a component)",
        "e2etts.reward.bad imports e2etts.llm.train (another component's training code)",
        "e2etts.reward.bad imports e2etts.tokenizer.train (another component's training code)",
        "e2etts.reward.bad imports e2etts.tokenizer.train.build_task (another component's training code)",
    ]


def test_every_job_rule_has_a_log_and_a_benchmark():
    """snakemake-workflows' convention: a rule that runs something says where its output
    and its time and memory go (`log:`, `benchmark:`); aggregate targets run nothing."""
    import re

    rules = PACKAGE.parents[1] / "workflow" / "rules"
    missing = []
    for smk in sorted(rules.glob("*.smk")):
        for block in re.split(r"\n(?=rule \w+:)", smk.read_text()):
            name = re.match(r"rule (\w+):", block)
            if name and re.search(r"\n    (shell|run|script):", block):
                missing += [f"{smk.name}:{name.group(1)} lacks {d}" for d in ("log:", "benchmark:") if f"\n    {d}" not in block]
    assert missing == []


def _module_file(name: str) -> Path | None:
    """e2etts.a.b(.Name) -> the file that defines it (a module or a package's __init__)."""
    parts = name.split(".")
    for k in range(len(parts), 1, -1):
        base = PACKAGE.parent.joinpath(*parts[:k])
        if base.with_suffix(".py").exists():
            return base.with_suffix(".py")
        if (base / "__init__.py").exists():
            return base / "__init__.py"
    return None


def _unlisted_code_deps(stages: dict) -> dict[str, list[str]]:
    """Per DVC stage: modules that its listed code imports but its deps leave out. cli.py and
    tasks.py dispatch to every command and task, so their imports are not followed (each
    stage lists the packages its own commands run)."""
    root = PACKAGE.parents[1]
    out = {}
    for name, stage in stages.items():
        deps = [root / d for d in stage.get("do", stage).get("deps", []) if d.startswith("src/")]
        listed = {f for d in deps for f in (d.rglob("*.py") if d.is_dir() else [d])}
        missing = set()
        for path in listed:
            if path.name in ("cli.py", "tasks.py"):
                continue
            for module in _imports(path):
                target = _module_file(module)
                if target is not None and target not in listed and target.name != "__init__.py":
                    missing.add(str(target.relative_to(root)))
        out[name] = sorted(missing)
    return out


def test_dvc_stage_code_deps_are_closed_under_imports():
    """A change in any module a stage's code imports makes `dvc status` see that stage."""
    import yaml

    stages = yaml.safe_load((PACKAGE.parents[1] / "dvc.yaml").read_text())["stages"]
    assert _unlisted_code_deps(stages) == {name: [] for name in stages}
    # The check can fail: a stage that lists train.py but not what train.py imports.
    broken = {"cascade": {"deps": ["src/e2etts/train.py"]}}
    assert "src/e2etts/train_log.py" in _unlisted_code_deps(broken)["cascade"]
