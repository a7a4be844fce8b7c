"""Training seeds, the compute-matched control and E1 designs (issue 16), as the workflow
builds them: dry runs of the DAG (no training), so they are cheap."""

import json
import re

import pytest
import yaml

from workflow_utils import REPO, copy_repo, merged_params, run

REPO_ABLATION = REPO / "config/ablation_e1.yaml"

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


def test_one_seed_is_trained_and_scored_alone(two_seeds):
    """`make claim-seed SEED=7` (the rule scores_s7): every seeded row of seed 7 is trained,
    synthesized and scored; nothing of seed 1234, no seed-free topline, no summary."""
    out = _dry_run(two_seeds, "scores_s7")
    jobs = _jobs(out)
    assert jobs["train_tokenizer"] == 1 and jobs["train_joint_e2"] == 2 and jobs["train_matched_llm"] == 1
    assert jobs["score_seeded"] == 7 and "score" not in jobs and "summarize" not in jobs
    assert "s1234/" not in out and "results/metrics/systems/s7/e2e_full.tsv" in out
    # the seed's token statistics too: `make claim-summary` reads them and may not build them
    # (a committed file of an earlier recipe was once summarized as the new seed's)
    assert jobs["token_stats"] == 2 and "results/metrics/tokens/s7/tokens_e2e_tok.json" in out


def test_claim_seed_retrains_a_seed_whose_scores_are_committed(tmp_path):
    """`make claim-seed` in a fresh clone, where the seed's per-item scores and token
    statistics are committed but nothing Snakemake recorded is: the scores are not taken as
    up to date (they may come from an earlier recipe); the seed is trained, synthesized and
    scored again. The command is the Makefile's own, run dry."""
    repo = copy_repo(tmp_path / "repo")
    seeded = ("cascade", "cascade_matched", "e2e_tok", "e2e_fm", "e2e_full", "resynth_cascade", "resynth_e2e_tok")
    present = [f"results/metrics/systems/s2345/{n}.{ext}" for n in seeded for ext in ("json", "tsv")]
    present += [f"results/metrics/tokens/s2345/tokens_{t}.json" for t in ("cascade", "e2e_tok")]
    for path in present:  # as committed (whatever their content)
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        if not (repo / path).exists():
            (repo / path).write_text("{}")
    printed = run(["make", "-n", "claim-seed", "SEED=2345"], repo).stdout
    snakemake = next(line for line in printed.splitlines() if line.startswith("snakemake "))
    out = run([*snakemake.split(), "-n"], repo).stdout
    jobs = _jobs(out)
    assert jobs["train_tokenizer"] == 1 and jobs["train_joint_e2"] == 2 and jobs["train_matched_llm"] == 1
    assert jobs["score_seeded"] == 7 and jobs["token_stats"] == 2
    # without the forced jobs, the committed files would hide the whole seed
    words = snakemake.split()
    start = words.index("--forcerun")
    end = next(j for j in range(start + 1, len(words)) if words[j].startswith("--"))
    plain = words[:start] + words[end:]
    assert "Nothing to be done" in run([*plain, "-n"], repo).stdout


def test_claim_summary_from_scored_rows_retrains_nothing(two_seeds, tmp_path):
    """`make claim-summary`: with every row's metrics and per-item scores present (as
    committed) and no checkpoint, only the summarize rule runs, over both seeds' rows."""
    repo = copy_repo(tmp_path / "repo")
    (repo / "params.yaml").write_text((two_seeds / "params.yaml").read_text())
    rows = [f"results/metrics/systems/{n}" for n in ("gt", "gt_vocoded")]
    rows += [f"results/metrics/systems/s{s}/{n}" for s in (1234, 7) for n in
             ("cascade", "cascade_matched", "e2e_tok", "e2e_fm", "e2e_full", "resynth_cascade", "resynth_e2e_tok")]
    present = [f"{r}.{ext}" for r in rows for ext in ("json", "tsv")]
    present += [f"results/metrics/tokens/s{s}/tokens_{t}.json" for s in (1234, 7) for t in ("cascade", "e2e_tok")]
    for path in present:
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text("{}")
    summary_only = ["snakemake", "-n", "-p", "--cores", "1", "results/metrics/summary.json",
                    "--allowed-rules", "summarize", "--forcerun", "summarize"]  # as the Makefile:
    printed = run(["make", "-n", "claim-summary"], repo).stdout.splitlines()
    at = next(i for i, line in enumerate(printed) if line.startswith("snakemake "))
    assert all(word in printed[at].split() for word in summary_only[5:])
    # the claim's record is kept beside the default run's summary.json, written whole
    assert any("claim_summary.json.tmp" in line and line.rstrip().endswith("results/metrics/claim_summary.json")
               for line in printed[at + 1:])
    out = run(summary_only, repo).stdout
    jobs = _jobs(out)
    assert jobs["summarize"] == 1 and jobs["total"] == 1
    summarize = next(c for c in _commands(out) if c.startswith("e2etts summarize"))
    assert summarize.count("results/metrics/systems/s7/") == 7 and summarize.count("results/metrics/systems/s1234/") == 7
    # A row not yet scored is an error naming it, not a seed trained behind the user's back
    # (without --allowed-rules the same call would train seed 7 again).
    (repo / "results/metrics/systems/s7/e2e_full.json").unlink()
    retrain = _jobs(run(["snakemake", "-n", "--cores", "1", "results/metrics/summary.json"], repo).stdout)
    assert retrain["train_joint_e2"] >= 1
    with pytest.raises(AssertionError, match="s7/e2e_full.json"):
        run(summary_only, repo)


def test_dvc_has_one_stage_per_seed(two_seeds):
    run(["git", "init", "-q"], two_seeds)
    out = run(["dvc", "stage", "list"], two_seeds).stdout
    for seed in (1234, 7):
        assert f"cascade@{seed}" in out and f"e2e@{seed}" in out


def test_e1_designs_are_built_by_the_same_rules(tmp_path):
    """config/ablation_e1.yaml: each design trains its own E1 with its overrides (and warm
    starts), a flow on its tokens, and is resynthesized on the dev list beside the cascade
    and the default E1; nothing touches the test list."""
    repo = copy_repo(tmp_path / "repo")
    groups = {"tokenizer": {"lr": 1.0e-4, "warmup_steps": 100}}
    extra = {"e1_designs": {"designs": {"warm": {"objective": {"ntp_weight": 0.5}, "param_groups": groups,
                                                 "warm_start": ["flow", "llm"]}}}}
    (repo / "params.yaml").write_text(yaml.safe_dump(merged_params(REPO_ABLATION, extra)))
    out = _dry_run(repo, "e1_designs")
    jobs = _jobs(out)
    # E1: the default (e2e_tok) and rm, rm_fm, warm; flows: those four and the cascade's
    assert jobs["train_joint_e1"] == 4 and jobs["train_flow"] == 5
    assert jobs["design_resynth"] == 5 and jobs["score_design"] == 5  # + cascade, e2e_tok
    assert "synthesize_system" not in jobs and "results/eval/items.tsv" not in out
    e1 = {c.split("--out-dir ")[1].split()[0]: c for c in _commands(out) if c.startswith("e2etts train joint_e1")}
    cfg = {k: json.loads(re.search(r"--params '(.*?)'", c).group(1))["joint_e1"]["objective"] for k, c in e1.items()}
    assert cfg["results/checkpoints/s1234/e1_rm/joint_e1"]["fm_weight"] == 0.0
    assert cfg["results/checkpoints/s1234/e1_rm_fm/joint_e1"]["ntp_weight"] == 0.0
    assert cfg["results/checkpoints/s1234/e1_rm_fm/joint_e1"]["fm_weight"] == 1.0
    assert cfg["results/checkpoints/s1234/e1_warm/joint_e1"]["ntp_weight"] == 0.5
    warm = e1["results/checkpoints/s1234/e1_warm/joint_e1"]
    assert json.loads(re.search(r"--params '(.*?)'", warm).group(1))["joint_e1"]["param_groups"] == groups
    assert "--init-flow results/checkpoints/s1234/cascade/flow/final.pt" in warm
    assert "--init-llm results/checkpoints/s1234/cascade/llm/final.pt" in warm
    assert "--init-flow" not in e1["results/checkpoints/s1234/e1_rm/joint_e1"]
    flows = [c for c in _commands(out) if c.startswith("e2etts train flow") and "e1_rm_fm" in c]
    assert flows and "--init results/checkpoints/s1234/e1_rm_fm/init/flow.pt --train-section stage2_flow" in flows[0]
