"""The resource planner (e2etts plan) and its dry run (e2etts plan-check, docs/scale.md)."""

import time

import pytest
import torch
import yaml

from e2etts import plan
from e2etts.cli import build_parser, main
from e2etts.config import REPO_ROOT, load_params
from e2etts.dryrun import UNITS, check_plan, disagreements, format_check
from e2etts.errors import ConfigError
from e2etts.joint.e1 import build_models
from test_data_readers import _tone

SCALE = REPO_ROOT / "config" / "scale" / "libritts_gpu.yaml"
PARAMS = REPO_ROOT / "params.yaml"

# Reduced width for this 2-core machine; everything else (bf16, schedules, objectives,
# interleaved LLM, whole-utterance flow) is the scale configuration's.
REDUCED = {
    "data": {"text_frontend": "chars"},  # no flite call in a memory test
    "tokenizer": {"model": {"d_model": 128, "n_heads": 2, "encoder_layers": 2, "decoder_layers": 1}},
    "llm": {"model": {"d_model": 128, "n_layers": 2, "n_heads": 2}},
    "flow": {"model": {"d_model": 128, "n_layers": 2, "n_heads": 2, "token_encoder_layers": 1}},
    "reward": {"model": {"d_model": 128, "n_layers": 2, "n_heads": 2}},
}


@pytest.fixture(scope="module")
def scale_params():
    return load_params(PARAMS, [SCALE])


def test_scale_sizes_are_the_papers(scale_params):
    """Counted from the model classes: tokenizer, LLM, reward 0.6B and flow 0.5B, within 2 %."""
    models = plan.build_meta_models(scale_params, plan.LIBRITTS_TRAIN["speakers"], "phones")
    counts = {name: plan.count_params(m) for name, m in models.items()}
    targets = {"tokenizer": 0.6e9, "llm": 0.6e9, "flow": 0.5e9, "reward": 0.6e9}
    for name, target in targets.items():
        assert abs(counts[name] - target) < 0.02 * target, (name, counts[name])


def test_meta_counts_equal_real_modules(tmp_path):
    """The meta-device count is the count of the modules training builds."""
    params = load_params(PARAMS, [_write(tmp_path / "reduced.yaml", REDUCED)])
    meta = plan.build_meta_models(params, 3, "chars")
    tokenizer, flow, llm, reward = build_models(params, 3, (torch.zeros(80), torch.ones(80)), "chars")
    real = {"tokenizer": tokenizer, "llm": llm, "flow": flow, "reward": reward}
    for name, m in meta.items():
        assert plan.count_params(m) == sum(p.numel() for p in real[name].parameters()), name


def test_every_parameter_has_a_rate(scale_params):
    models = plan.build_meta_models(scale_params, 10, "phones")
    for name, model in models.items():
        by_rate = plan.matmul_params(name, model)
        assert sum(by_rate.values()) == plan.count_params(model)
    # adaLN modulation reads one vector per utterance, not one per frame.
    assert plan.rate_of("flow", "estimator.blocks.3.ada.1.weight") == "utt"
    with pytest.raises(ConfigError, match="tokenizer.new_head"):
        plan.rate_of("tokenizer", "new_head.weight")


def test_plan_flops_follow_6_n_t(scale_params):
    """The LLM's dense FLOPs per step are 6 x matmul parameters x units x batch."""
    a = plan.Assumptions()
    p = plan.make_plan(scale_params, a, {})
    llm = next(s for s in p["stages"] if s["stage"] == "cascade LLM")
    lengths = plan.Lengths.of_seconds(a.mean_seconds, a.text_per_second, "interleaved", 0, False)
    n = p["components"]["llm"]["matmul_params"]
    assert llm["flops_dense"] == 6 * n * lengths.units * llm["global_batch"]
    assert llm["device_hours"] == pytest.approx(
        llm["flops_per_step"] * llm["steps"] / (a.mfu * 989e12) / 3600)


def test_plan_cli(capsys, tmp_path):
    profile = REPO_ROOT / "workflow" / "profiles" / "slurm_scale"
    assert main(["plan", "--params", str(PARAMS), "--configfile", str(SCALE),
                 "--profile", str(profile), "--json", str(tmp_path / "plan.json")]) == 0
    out = capsys.readouterr().out
    assert "| cascade LLM | train_llm |" in out and "(8) |" in out  # nproc 8 from the profile
    assert "## Assumptions" in out and "989 TFLOP/s" in out and "MFU" in out
    bad = tmp_path / "bad_profile"
    _write(bad / "config.yaml", {"set-resources": {"train_llm": {"nproc": 0}}})
    assert main(["plan", "--params", str(PARAMS), "--profile", str(bad)]) == 2
    assert "set-resources.train_llm.nproc" in capsys.readouterr().err


def test_cli_choices_are_the_plans():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    card = next(a for a in sub.choices["plan"]._actions if a.dest == "card")
    assert sorted(card.choices) == sorted(plan.CARDS)
    units = next(a for a in sub.choices["plan-check"]._actions if a.dest == "units")
    assert tuple(units.choices) == UNITS


def test_dry_run_memory_matches_the_plan(tmp_path):
    """One measured step per component and stage (reduced width, bf16, batch 1, 4 s of audio
    in the LibriTTS layout) against the plan's figures for the same shapes: fails when the
    static, activation or peak memory differ by more than 25 %."""
    corpus = tmp_path / "LibriTTS"
    for i, spk in enumerate(("19", "26")):
        stem = f"{spk}_198_{i:06d}_000001"
        wav = corpus / "train-clean-100" / spk / "198" / f"{stem}.wav"
        _tone(wav, seconds=1.5, sr=24000)  # tiled to 4 s by the dry run
        wav.with_name(stem + ".normalized.txt").write_text("A speaker reads a line of the test corpus.\n")
    params = load_params(PARAMS, [SCALE, _write(tmp_path / "reduced.yaml", REDUCED)])
    start = time.perf_counter()
    results = check_plan(params, corpus, list(UNITS), 1, 4.0)
    elapsed = time.perf_counter() - start
    print(format_check(results), f"\n{elapsed:.0f} s")
    assert [r["precision"] for r in results] == ["bf16"] * 6
    assert all(r["measured"]["activations"] > 1e6 for r in results)  # above page noise
    assert not disagreements(results, 0.25)


def test_disagreements_name_the_unit_and_figure():
    r = {"unit": "llm", "measured": {"static": 10e6, "activations": 13e6, "peak": 23e6},
         "estimated": {"static": 10e6, "activations": 10e6, "peak": 20e6}}
    assert disagreements([r], 0.25) == [
        "llm: activations measured 13.0 MB, planned 10.0 MB (off by more than 25%)"]
    assert disagreements([r], 0.35) == []


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.slow
def test_scale_configuration_runs_every_training_rule_on_8_processes(tmp_path):
    """The scale configuration and profile pass the Snakefile's schema and give every
    training rule `torchrun --nproc_per_node 8` (snakemake -n: nothing runs)."""
    from workflow_utils import REPO, run

    corpus = _write(tmp_path / "corpus.yaml", {"data": {"corpus_path": str(tmp_path)}})
    out = run(["snakemake", "-n", "-p", "--forceall", "--profile", "workflow/profiles/slurm_scale",
               "--configfile", str(SCALE), str(corpus)], REPO).stdout
    for rule in ("tokenizer", "llm", "flow", "joint_e1", "reward", "joint_e2"):
        assert f"torchrun --standalone --nproc_per_node 8 -m e2etts.cli train {rule} " in out, rule
    assert "--train-section cascade_matched" in out
