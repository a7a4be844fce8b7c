"""Training seeds and the compute-matched control (issue 16), as the workflow builds them:
dry runs of the DAG (no training), so they are cheap."""

import json
import re

import pytest
import yaml

from workflow_utils import copy_repo, merged_params, run

pytestmark = pytest.mark.slow


def _dry_run(repo, *extra):
    return run(["snakemake", "-n", "-p", "--forceall", "--cores", "1", *extra], repo).stdout


def _commands(out: str) -> list[str]:
    """The shell commands a dry run prints (`-p`)."""
    return [line.removeprefix("Shell command: ").strip() for line in out.splitlines() if line.startswith("Shell command: ")]


def _jobs(out: str) -> dict[str, int]:
    stats = out[out.index("Job stats:"):].splitlines()[3:]
    return {line.split()[0]: int(line.split()[1]) for line in stats if len(line.split()) == 2 and line.split()[1].isdigit()}


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    repo = copy_repo(tmp_path_factory.mktemp("seeds") / "repo")
    (repo / "params.yaml").write_text(yaml.safe_dump(merged_params({"seeds": [1234, 7]})))
    return repo


def test_every_system_is_trained_scored_per_seed(two_seeds):
    out = _dry_run(two_seeds)
    jobs = _jobs(out)
    # Per seed: a tokenizer, the cascade and E2E LLMs and flows, the control, E1, E2 x2.
    assert jobs["train_tokenizer"] == 2 and jobs["train_joint_e1"] == 2 and jobs["train_matched_llm"] == 2
    assert jobs["train_llm"] == 4 and jobs["train_joint_e2"] == 4
    # Five systems and two resynthesis toplines per seed; gt and gt_vocoded once.
    assert jobs["synthesize_system"] == 10 and jobs["topline_resynth"] == 4
    assert jobs["score_seeded"] == 14 and jobs["score"] == 2
    for seed in (1234, 7):
        assert f"--seed {seed}" in out and f"results/checkpoints/s{seed}/e2e_full/llm" in out
        assert f'"seed": {seed}' in out  # the training seed reaches the model's params
    # One summary over all seeds.
    assert jobs["summarize"] == 1
    summarize = next(c for c in _commands(out) if c.startswith("e2etts summarize"))
    assert summarize.count("results/metrics/systems/s7/") == 7 and "results/metrics/systems/gt.json" in summarize


def test_the_control_gets_the_e2e_chains_extra_llm_updates(two_seeds):
    """cascade_matched: the cascade LLM continued for joint_e1 + stage2_llm + joint_e2_full
    - llm steps, with the cascade's tokenizer and flow; the count follows the schedules."""
    params = yaml.safe_load((two_seeds / "params.yaml").read_text())
    expected = sum(params[s]["train"]["max_steps"] for s in ("joint_e1", "stage2_llm", "joint_e2_full"))
    expected -= params["llm"]["train"]["max_steps"]
    out = _dry_run(two_seeds, "results/checkpoints/s7/cascade_matched/system.json")
    cmd = next(c for c in _commands(out) if c.startswith("e2etts train llm") and "cascade_matched" in c)
    cfg = json.loads(re.search(r"--params '(.*?)'", cmd).group(1))
    assert cfg["cascade_matched"]["train"]["max_steps"] == expected == 900
    assert cfg["cascade_matched"]["train"]["lr"] == params["cascade_matched"]["train"]["lr"]
    assert "--init results/checkpoints/s7/cascade/llm/final.pt" in cmd and "--train-section cascade_matched" in cmd
    # its tokens are the cascade's, so the cascade tokenizer's CTC head aligns them
    assert "--tokens-dir data/tokens/s7/cascade" in cmd and "--tokenizer results/checkpoints/s7/cascade/tokenizer/final.pt" in cmd
    assemble = next(c for c in _commands(out) if "assemble-system" in c)
    assert "--tokenizer results/checkpoints/s7/cascade/tokenizer/final.pt" in assemble
    assert "--flow results/checkpoints/s7/cascade/flow/final.pt" in assemble
    assert "--llm results/checkpoints/s7/cascade_matched/llm/final.pt" in assemble
    # A longer E2E schedule gives the control more updates.
    longer = merged_params({"seeds": [7], "joint_e2_full": {"train": {"max_steps": 1000}}})
    (two_seeds / "params.yaml").write_text(yaml.safe_dump(longer))
    try:
        out = _dry_run(two_seeds, "results/checkpoints/s7/cascade_matched/llm/final.pt")
        assert '"max_steps": 1000' in out
    finally:
        (two_seeds / "params.yaml").write_text(yaml.safe_dump(params))


def test_no_control_without_extra_e2e_updates(tmp_path):
    """An E2E chain with no more LLM updates than the cascade leaves nothing to match: the
    workflow stops naming the reason rather than training a zero-step control."""
    repo = copy_repo(tmp_path / "repo")
    (repo / "params.yaml").write_text(yaml.safe_dump(merged_params({"llm": {"train": {"max_steps": 5000}}})))
    with pytest.raises(AssertionError, match="nothing to match"):
        _dry_run(repo)


def test_dvc_has_one_stage_per_seed(two_seeds):
    run(["git", "init", "-q"], two_seeds)
    out = run(["dvc", "stage", "list"], two_seeds).stdout
    for seed in (1234, 7):
        assert f"cascade@{seed}" in out and f"e2e@{seed}" in out
