"""Issue 16's E1 options: NTP code targets, per-module schedules, warm starts, the token
gradient norms in the train log. Each test checks that an option does what it claims, and
that its default is today's E1."""

import csv
import json
import math
from dataclasses import asdict

import pytest
import torch

from e2etts.audio import MelConfig
from e2etts.cli import build_parser, main
from e2etts.errors import UserError
from e2etts.flow.model import FlowMatchingConfig, FlowMatchingDecoder
from e2etts.fsq import FSQ
from e2etts.joint.e1 import (
    JointE1,
    JointE1Config,
    build_task,
    collate_joint,
    exported_config,
    ntp_target_cross_entropy,
    warm_start,
)
from e2etts.run_signature import run_signature
from e2etts.train import TrainConfig, TrainTask, fit, make_optimizer, make_scheduler
from test_joint import LEVELS, TINY, _models

GN_COLUMNS = ("gn_tok_fm", "gn_tok_ntp", "gn_tok_rm", "gn_tok_ctc")


def _batch(B=3, T=48):
    g = torch.Generator().manual_seed(1)
    mel = torch.randn(B, T, 80, generator=g)
    mel_lens = torch.tensor([T, T - 8, T - 16][:B])
    # Text of words (space = id 1 in both front ends' vocabularies) for the interleaved split.
    text = torch.randint(2, 30, (B, 10), generator=g)
    text[:, 4] = 1
    return {"mel": mel, "mel_lens": mel_lens, "text": text, "text_lens": torch.tensor([10, 8, 6][:B]),
            "speaker": torch.tensor([0, 1, -1][:B]), "utt_ids": [f"u{b}" for b in range(B)]}


# ---- NTP code targets ---------------------------------------------------------------------


def test_code_log_probs_are_a_distribution_peaked_at_the_hard_code():
    fsq = FSQ(LEVELS)
    bounded = fsq.bound(torch.randn(2, 7, 3) * 2)
    _, indices = fsq.quantize(bounded)
    log_p = fsq.code_log_probs(bounded, width=0.5)
    assert log_p.shape == (2, 7, fsq.codebook_size)
    assert torch.allclose(log_p.exp().sum(-1), torch.ones(2, 7), atol=1e-5)
    assert torch.equal(log_p.argmax(-1), indices)
    # Narrow: one-hot on the rounded code.
    assert torch.allclose(fsq.code_log_probs(bounded, width=0.01).exp().max(-1).values, torch.ones(2, 7), atol=1e-3)


def test_code_target_cross_entropy_with_one_hot_targets_is_the_hard_cross_entropy():
    g = torch.Generator().manual_seed(0)
    K = 12
    logits = torch.randn(2, 6, K + 1, generator=g)
    indices = torch.randint(0, K, (2, 5), generator=g)
    token_lens = torch.tensor([5, 3])
    targets = torch.full((2, 6), -100)
    for b, n in enumerate(token_lens.tolist()):
        targets[b, :n] = indices[b, :n]
        targets[b, n] = K  # <eos>
    token_pos = torch.arange(5).expand(2, 5)
    one_hot = torch.nn.functional.one_hot(indices, K).float()
    ce, acc = ntp_target_cross_entropy(logits, targets, token_pos, token_lens, one_hot)
    expected = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, ignore_index=-100)
    assert float(ce) == pytest.approx(float(expected), rel=1e-6)
    uniform = torch.full_like(one_hot, 1.0 / K)
    assert float(ntp_target_cross_entropy(logits, targets, token_pos, token_lens, uniform)[0]) != pytest.approx(float(expected))
    assert 0 <= float(acc) <= 1


def _target_path_grad(model, batch):
    """The gradient that the weighted L1 sends into the tokenizer's bounded FSQ values
    through anything but the straight-through code vectors (= NTP's targets), summed |.|."""
    parts = model.losses(batch)
    total = model.weighted(parts)
    if not total.requires_grad:
        return 0.0
    g_bounded, g_vectors = torch.autograd.grad(total, [parts["bounded"], parts["vectors"]], allow_unused=True)
    if g_bounded is None:
        return 0.0
    half_width = torch.tensor([lv // 2 for lv in LEVELS], dtype=torch.float32)
    through_vectors = 0 if g_vectors is None else g_vectors / half_width
    return float((g_bounded - through_vectors).abs().sum())


@pytest.mark.parametrize("target,weight,alignment,reaches", [
    ("hard", 0.1, "prefix", False), ("hard", 0.1, "interleaved", False),
    ("soft", 0.1, "prefix", True), ("soft", 0.1, "interleaved", True),
    ("straight_through", 0.1, "prefix", True), ("straight_through", 0.1, "interleaved", True),
    ("soft", 0.0, "prefix", False)])
def test_ntp_gradient_reaches_the_tokenizer_through_the_targets_only_with_code_targets(target, weight, alignment, reaches):
    """NTP alone (FM, RM, CTC weights 0): the part of its tokenizer gradient that does not
    come through the code vectors is zero with hard targets or weight 0, nonzero otherwise."""
    tok, flow, llm, rm = _models(alignment)
    model = JointE1(tok, flow, llm, rm, JointE1Config(ntp_target=target, ntp_weight=weight, fm_weight=0.0,
                                                      rm_weight=0.0, tokenizer_ctc_weight=0.0))
    grad = _target_path_grad(model, _batch())
    assert (grad > 1e-6) == reaches, grad


def test_straight_through_targets_keep_the_hard_loss_value_and_soft_ones_do_not():
    values = {}
    for target in ("hard", "soft", "straight_through"):
        tok, flow, llm, rm = _models("interleaved")
        model = JointE1(tok, flow, llm, rm, JointE1Config(ntp_target=target)).eval()
        with torch.no_grad():
            values[target] = float(model.losses(_batch())["ntp"])
    assert values["straight_through"] == pytest.approx(values["hard"], rel=1e-5)
    assert values["soft"] != pytest.approx(values["hard"], rel=1e-3)


def test_interleaved_token_positions_predict_their_tokens():
    """ntp_target_cross_entropy's interleaved positions (token_unit - 1) hold each token as
    the hard target: the soft target replaces exactly the hard one."""
    from e2etts.llm.align import uniform_starts
    from e2etts.llm.interleave import interleave_padded

    batch = _batch()
    token_lens = (batch["mel_lens"] + 3) // 4
    tokens = torch.randint(0, 100, (3, 12), generator=torch.Generator().manual_seed(2))
    starts = [torch.from_numpy(uniform_starts(int(t), int(n))) for t, n in zip(token_lens, batch["text_lens"], strict=True)]
    units = interleave_padded(batch["text"], batch["text_lens"], tokens, token_lens, starts, 100, keys=batch["utt_ids"])
    for b, n in enumerate(token_lens.tolist()):
        pos = units["token_unit"][b, :n] - 1
        assert torch.equal(units["targets"][b, pos], tokens[b, :n])


# ---- per-module schedules -----------------------------------------------------------------


GROUPS = {"tokenizer": {"lr": 1e-4, "warmup_steps": 10}, "flow": {"lr": 5e-4}, "llm": {"lr": 3e-4, "warmup_steps": 2},
          "reward": {}}


def _lr_history(opt, cfg) -> list[dict]:
    """[{group name: lr}] at each of cfg.max_steps steps under make_scheduler."""
    sched = make_scheduler(opt, cfg)
    history = []
    for _ in range(cfg.max_steps):
        history.append({g["name"]: g["lr"] for g in opt.param_groups})
        opt.step()
        sched.step()
    return history


def test_param_groups_land_in_the_optimizer_and_each_reaches_its_own_peak():
    model = JointE1(*_models(), JointE1Config())
    cfg = TrainConfig(max_steps=40, lr=7e-4, warmup_steps=5, min_lr_ratio=0.1)
    opt = make_optimizer(model, cfg, GROUPS)
    peak = {"tokenizer": 1e-4, "flow": 5e-4, "llm": 3e-4, "reward": 7e-4}
    warmup = {"tokenizer": 10, "flow": 5, "llm": 2, "reward": 5}
    by_name = {}
    for g in opt.param_groups:
        by_name.setdefault(g["name"], []).extend(g["params"])
    for name, params in by_name.items():
        assert {id(p) for p in params} == {id(p) for p in getattr(model, name).parameters()}, name
    history = _lr_history(opt, cfg)
    for name in peak:
        lrs = [h[name] for h in history]
        assert max(lrs) == pytest.approx(peak[name]), name
        assert lrs[warmup[name] - 1] == pytest.approx(peak[name]), name  # end of its own warm-up
        assert lrs[0] == pytest.approx(peak[name] / warmup[name]), name
        assert lrs[-1] < 0.2 * peak[name], name  # cosine to min_lr_ratio


def test_a_held_group_stays_at_lr_0_then_warms_up_and_decays_to_the_end():
    model = JointE1(*_models(), JointE1Config())
    cfg = TrainConfig(max_steps=30, lr=7e-4, warmup_steps=5, min_lr_ratio=0.1)
    groups = {**GROUPS, "tokenizer": {"lr": 1e-4, "warmup_steps": 4, "hold_steps": 10}}
    opt = make_optimizer(model, cfg, groups)
    tok = [h["tokenizer"] for h in _lr_history(opt, cfg)]
    assert tok[:10] == [0.0] * 10
    assert tok[10] == pytest.approx(1e-4 / 4) and tok[13] == pytest.approx(1e-4)  # its warm-up, after the hold
    assert tok[-1] < 0.2 * 1e-4 and tok[-1] > 0.1 * 1e-4 * 0.99  # cosine to min_lr_ratio by max_steps
    # The other groups keep their schedules (the same factors as without the hold).
    plain = make_scheduler(make_optimizer(model, cfg, GROUPS), cfg)
    held = make_scheduler(make_optimizer(model, cfg, groups), cfg)
    assert [f(7) for f in plain.lr_lambdas][2:] == [f(7) for f in held.lr_lambdas][2:]  # [0:2]: the tokenizer's
    # No hold: the group's state carries no hold_steps key (the optimizer state of other runs is as before).
    assert all("hold_steps" not in g for g in make_optimizer(model, cfg, GROUPS).param_groups)


def test_a_held_tokenizer_does_not_move_while_the_heads_learn(tmp_path, features_dir):
    groups = {"tokenizer": {"lr": 1e-3, "warmup_steps": 1, "hold_steps": 3}}
    params = _params(param_groups=groups, max_steps=5)
    params["joint_e1"]["train"]["ckpt_every"] = 1
    params["joint_e1"]["train"]["keep_last"] = 10
    rows = _train(params, features_dir, tmp_path / "run")
    # A row's lr is the scheduler's after its step, i.e. the next step's: steps 1-3 at 0.
    assert [float(r["lr_tokenizer"]) for r in rows[:3]] == [0.0, 0.0, 1e-3]

    def weights(step):
        return torch.load(tmp_path / "run" / f"step_{step:07d}.pt", weights_only=False)["model"]

    first = weights(1)
    for step, tokenizer_moved in [(3, False), (5, True)]:
        state = weights(step)
        moved = {name: any(not torch.equal(state[k], first[k]) for k in state
                            if k.startswith(name + ".") and state[k].is_floating_point())
                 for name in ("tokenizer", "flow", "llm", "reward")}
        assert moved == {"tokenizer": tokenizer_moved, "flow": True, "llm": True, "reward": True}, (step, moved)


def test_param_groups_must_cover_every_trainable_parameter():
    model = JointE1(*_models(), JointE1Config())
    with pytest.raises(UserError, match="reward"):
        make_optimizer(model, TrainConfig(), {"tokenizer": {}, "flow": {}, "llm": {}})


def test_without_param_groups_the_optimizer_and_signature_are_todays():
    model = JointE1(*_models(), JointE1Config())
    cfg = TrainConfig()
    opt = make_optimizer(model, cfg)
    assert len(opt.param_groups) == 2 and not any("name" in g for g in opt.param_groups)
    task = TrainTask(kind="joint_e1", model=model, dataset=[], lengths=[], collate=None, loss=None,
                     evaluate=None, export=lambda m: {"config": exported_config(m.cfg)})
    grouped = TrainTask(**{**task.__dict__, "param_groups": GROUPS})
    assert run_signature(task, model, cfg, 0) != run_signature(grouped, model, cfg, 0)


# ---- the checkpoint's config --------------------------------------------------------------


def test_default_checkpoint_config_is_the_one_before_the_options():
    before = ["ntp_weight", "fm_weight", "rm_weight", "rm_text_weight", "rm_speaker_weight", "ntp_warmup_steps",
              "tokenizer_ctc_weight", "flow_crop_tokens", "min_code_usage", "init_tokenizer"]
    assert list(exported_config(JointE1Config())) == before
    assert list(exported_config(JointE1Config(token_grad_every=10))) == before  # logging only
    assert exported_config(JointE1Config(ntp_target="soft"))["ntp_target"] == "soft"


# ---- warm starts --------------------------------------------------------------------------


def _save_component(path, module, kind, **extra):
    torch.save({"kind": kind, "model": module.state_dict(), "config": dict(module.cfg.__dict__), **extra}, path)


@pytest.mark.parametrize("name", ["flow", "llm", "reward"])
def test_warm_start_loads_the_checkpoint_weights(tmp_path, name):
    trained = dict(zip(("tokenizer", "flow", "llm", "reward"), _models(seed=1), strict=True))[name]
    fresh = dict(zip(("tokenizer", "flow", "llm", "reward"), _models(seed=2), strict=True))[name]
    path = tmp_path / f"{name}.pt"
    _save_component(path, trained, name)
    assert any(not torch.equal(a, b) for a, b in zip(trained.state_dict().values(), fresh.state_dict().values(), strict=True))
    warm_start(fresh, path, name)
    for (key, a), b in zip(trained.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b), key


def test_warm_start_from_a_wrong_checkpoint_names_the_file(tmp_path):
    _, flow, llm, _ = _models()
    other = FlowMatchingDecoder(FlowMatchingConfig(fsq_dim=3, n_layers=2, token_encoder_layers=1, dropout=0.0, **TINY))
    path = tmp_path / "other_flow.pt"
    _save_component(path, other, "flow")
    with pytest.raises(UserError, match=r"other_flow\.pt.*n_layers"):
        warm_start(flow, path, "flow")
    with pytest.raises(UserError, match=r"other_flow\.pt.*'flow' model, expected 'llm'"):
        warm_start(llm, path, "llm")
    # Same config, other weights (a hand-edited checkpoint): the load itself names the file.
    bad = tmp_path / "bad_flow.pt"
    torch.save({"kind": "flow", "model": {"nope": torch.zeros(1)}, "config": dict(flow.cfg.__dict__)}, bad)
    with pytest.raises(UserError, match=r"bad_flow\.pt"):
        warm_start(flow, bad, "flow")


# ---- through the CLI and the training loop ---------------------------------------------------


def _features(path, n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([40 + 4 * (i % 3) for i in range(n)])
    torch.save({"utt_id": [f"u{i}" for i in range(n)], "speaker": [f"s{i % 2}" for i in range(n)],
                "text": ["ab cd"] * n, "text_ids": [torch.tensor([5, 6, 1, 7, 8]) for _ in range(n)],
                "text_frontend": "chars", "mel": torch.randn(int(lengths.sum()), 80, generator=g).half(),
                "offsets": torch.cumsum(lengths, 0) - lengths, "lengths": lengths,
                "mel_config": asdict(MelConfig())}, path)


def _params(objective=None, param_groups=None, max_steps=4):
    model = dict(n_heads=2, dropout=0.0)
    e1 = {"objective": {"ntp_warmup_steps": 2, "flow_crop_tokens": 5, "min_code_usage": 0.0,
                        "tokenizer_ctc_weight": 1.0, **(objective or {})},
          "train": {"max_steps": max_steps, "batch_size": 2, "lr": 3e-3, "warmup_steps": 1, "log_every": 1,
                    "eval_every": 100, "ckpt_every": 100, "progress": False}}
    if param_groups:
        e1["param_groups"] = param_groups
    return {"seed": 0,
            "tokenizer": {"model": {**model, "d_model": 32, "encoder_layers": 1, "decoder_layers": 1, "fsq_levels": list(LEVELS)},
                          "train": {}},
            "flow": {"model": {**model, "d_model": 32, "n_layers": 1, "token_encoder_layers": 1}, "train": {}},
            "llm": {"model": {**model, "d_model": 32, "n_layers": 1, "alignment": "interleaved"}, "train": {}},
            "reward": {"model": {**model, "d_model": 32, "n_layers": 1}, "train": {}},
            "joint_e1": e1}


@pytest.fixture
def features_dir(tmp_path):
    d = tmp_path / "features"
    d.mkdir()
    _features(d / "train.pt")
    _features(d / "dev.pt", n=4, seed=1)
    return d


def _train(params, features_dir, out_dir, *flags):
    rc = main(["train", "joint_e1", "--params", json.dumps(params), "--features-dir", str(features_dir),
               "--out-dir", str(out_dir), *flags])
    assert rc == 0
    with open(out_dir / "train_log.tsv") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_cli_warm_starts_e1_and_counts_the_files_as_training_inputs(tmp_path, features_dir):
    params = _params()
    # Components of E1's shapes, with weights of their own, saved as the cascade saves them.
    torch.manual_seed(5)
    task = build_task(params, features_dir, None)
    paths = {}
    for name in ("flow", "llm", "reward"):
        module = getattr(task.model, name)
        for p in module.parameters():
            torch.nn.init.normal_(p, std=0.05)
        paths[name] = tmp_path / f"{name}.pt"
        extra = {"speakers": {"s0": 0, "s1": 1}} if name == "reward" else {}
        _save_component(paths[name], module, name, **extra)
    flags = ["--init-flow", str(paths["flow"]), "--init-llm", str(paths["llm"]), "--init-reward", str(paths["reward"])]
    warm = build_task(params, features_dir, None, str(paths["flow"]), str(paths["llm"]), str(paths["reward"]))
    for name in ("flow", "llm", "reward"):
        saved = torch.load(paths[name])["model"]
        for key, value in getattr(warm.model, name).state_dict().items():
            assert torch.equal(value, saved[key]), (name, key)
    from e2etts import tasks

    args = build_parser().parse_args(["train", "joint_e1", "--params", "{}", "--out-dir", "x", *flags])
    assert set(paths.values()) <= set(tasks.get("joint_e1").inputs(tasks.TaskContext.from_args(args, params)))
    rows = _train(params, features_dir, tmp_path / "run", *flags)
    assert len(rows) == 4
    # A reward model of other speakers is refused, naming the file.
    _save_component(paths["reward"], warm.model.reward, "reward", speakers={"x": 0, "y": 1})
    with pytest.raises(UserError, match=r"reward\.pt.*speaker index"):
        build_task(params, features_dir, None, init_reward=str(paths["reward"]))
    # The flags belong to joint_e1.
    assert main(["train", "flow", "--params", "{}", "--tokens-dir", "t", "--out-dir", str(tmp_path / "f"),
                 "--init-flow", str(paths["flow"])]) == 2


def test_train_log_carries_group_lrs_and_token_gradient_norms(tmp_path, features_dir):
    groups = {"tokenizer": {"lr": 1e-4, "warmup_steps": 3}}
    rows = _train(_params({"token_grad_every": 2, "ntp_target": "soft"}, groups), features_dir, tmp_path / "run")
    assert [r["step"] for r in rows] == ["1", "2", "3", "4"]
    assert float(rows[2]["lr_tokenizer"]) == pytest.approx(1e-4)  # step 3: the end of its warm-up
    assert float(rows[0]["lr_flow"]) == pytest.approx(3e-3)  # warm-up 1: at its peak at once
    for r in rows:
        if r["step"] == "3":
            assert all(r[c] == "" for c in GN_COLUMNS)
        else:
            values = [float(r[c]) for c in GN_COLUMNS]
            assert all(math.isfinite(v) and v > 0 for v in values), r


def test_default_train_log_has_no_group_columns_and_gradient_norms_at_step_one(tmp_path, features_dir):
    rows = _train(_params(), features_dir, tmp_path / "run")
    assert not any(c.startswith("lr_") for c in rows[0])
    assert all(math.isfinite(float(rows[0][c])) for c in GN_COLUMNS)
    assert all(rows[1][c] == "" for c in GN_COLUMNS)  # default every 50 steps


def _e1_fit(out_dir, every, **objective):
    """A toy E1 through the real loop (dropout on, so RNG draws matter): 4 steps, each
    logged -> (trained model, train log rows)."""
    model = JointE1(*_models(dropout=0.1), JointE1Config(ntp_warmup_steps=2, flow_crop_tokens=5,
                                                         token_grad_every=every, **objective))
    b = _batch()
    items = [{"mel": b["mel"][i, : int(b["mel_lens"][i])], "text_ids": b["text"][i, : int(b["text_lens"][i])],
              "speaker": f"s{i % 2}", "utt_id": f"u{i}"} for i in range(3)] * 2
    speakers = {"s0": 0, "s1": 1}
    task = TrainTask(kind="joint_e1", model=model, dataset=items, lengths=[len(it["mel"]) for it in items],
                     collate=lambda its: collate_joint(its, speakers), loss=lambda m, x: m(x),
                     evaluate=lambda m: {"dev_loss": 0.0}, export=lambda m: {"model": m.state_dict(), "config": {}})
    cfg = TrainConfig(max_steps=4, batch_size=2, lr=3e-3, warmup_steps=1, log_every=1, eval_every=100,
                      ckpt_every=100, progress=False, device="cpu")
    fit(task, cfg, out_dir, seed=0)
    with open(out_dir / "train_log.tsv") as fh:
        return model, list(csv.DictReader(fh, delimiter="\t"))


@pytest.mark.parametrize("target", ["hard", "soft"])
def test_token_gradient_norms_change_no_weight(tmp_path, target):
    """Measured every step or never: the same parameters bit for bit (dropout drawing from
    the RNG), the same losses; only the gn_tok_* columns differ."""
    off, rows_off = _e1_fit(tmp_path / "off", 0, tokenizer_ctc_weight=1.0, ntp_target=target)
    on, rows_on = _e1_fit(tmp_path / "on", 1, tokenizer_ctc_weight=1.0, ntp_target=target)
    for (name, a), b in zip(off.state_dict().items(), on.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert [r["loss"] for r in rows_on] == [r["loss"] for r in rows_off]
    assert not any(c.startswith("gn_tok") for c in rows_off[0])
    assert all(float(r[c]) > 0 for r in rows_on for c in GN_COLUMNS)


@pytest.mark.parametrize("zero", ["tokenizer_ctc_weight", "ntp_weight", "fm_weight"])
def test_token_gradient_norm_of_an_unweighted_loss_is_zero(zero):
    """A weight-0 loss logs exactly 0; the weighted ones are finite and > 0; the
    measurement leaves every parameter's .grad untouched."""
    weights = {"ntp_warmup_steps": 1, "token_grad_every": 1, "tokenizer_ctc_weight": 1.0, zero: 0.0}
    model = JointE1(*_models(), JointE1Config(**weights))
    model.train()
    _, log = model(_batch())
    assert all(p.grad is None for p in model.parameters())
    column = {"tokenizer_ctc_weight": "gn_tok_ctc", "ntp_weight": "gn_tok_ntp", "fm_weight": "gn_tok_fm"}[zero]
    assert log[column] == 0.0
    assert all(math.isfinite(log[c]) and log[c] > 0 for c in GN_COLUMNS if c != column), log


def test_token_gradient_norm_equals_the_straight_through_gradient_with_hard_targets():
    """With hard targets every loss reaches the tokenizer through the code vectors, so the
    logged norm is ||d(w * term) / d vectors||, the e1-gradnorms branch's measure."""
    model = JointE1(*_models(), JointE1Config(ntp_warmup_steps=1, tokenizer_ctc_weight=1.0))
    parts = model.losses(_batch())
    norms = model.token_grad_norms(parts)
    (g,) = torch.autograd.grad(parts["rm"], parts["vectors"], retain_graph=True)
    assert norms["gn_tok_rm"] == pytest.approx(float(g.norm()), rel=1e-5)


def test_tokenizer_ctc_fade_schedule_and_gradient():
    """The anchor's factor holds 1 up to the fade's start, falls linearly, then stays 0; its
    gradient into the codes scales with it and is 0 once faded (the other losses unchanged)."""
    cfg = JointE1Config(ntp_warmup_steps=1, token_grad_every=1, tokenizer_ctc_weight=1.0,
                        tokenizer_ctc_fade_start=2, tokenizer_ctc_fade_steps=4)
    model = JointE1(*_models(), cfg)
    assert [model.ctc_scale(n) for n in range(1, 9)] == [1.0, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0, 0.0]
    assert JointE1(*_models(), JointE1Config(tokenizer_ctc_weight=1.0)).ctc_scale(10**6) == 1.0
    model.train()
    logs = []
    for _ in range(6):
        _, log = model(_batch())
        logs.append(log)
    assert [log["ctc_scale"] for log in logs] == [1.0, 1.0, 0.75, 0.5, 0.25, 0.0]
    assert logs[0]["gn_tok_ctc"] > 0 and logs[5]["gn_tok_ctc"] == 0.0
    assert logs[5]["gn_tok_rm"] > 0 and logs[5]["gn_tok_fm"] > 0
    # At a fixed batch the factor is exactly the gradient's scale.
    parts = model.losses(_batch())
    full, half = model.token_grad_norms(parts, 1.0, 1.0), model.token_grad_norms(parts, 1.0, 0.5)
    assert half["gn_tok_ctc"] == pytest.approx(0.5 * full["gn_tok_ctc"], rel=1e-6)
    assert half["gn_tok_rm"] == full["gn_tok_rm"]
    # Off by default and kept out of a default checkpoint's config.
    assert "ctc_scale" not in JointE1(*_models(), JointE1Config())(_batch())[1]
    assert exported_config(cfg)["tokenizer_ctc_fade_steps"] == 4


@pytest.mark.parametrize("fade_steps", [0, 4])
def test_held_out_loss_weighs_the_anchor_as_the_fade_leaves_it(features_dir, fade_steps):
    """best.pt is chosen on dev_loss: with the anchor faded out it must not count the anchor
    (whose loss rises once it is off), else an earlier step with the anchor still on wins."""
    params = _params({"tokenizer_ctc_fade_start": 2, "tokenizer_ctc_fade_steps": fade_steps})
    task = build_task(params, features_dir, None)
    with torch.no_grad():  # as the training loop evaluates
        m = task.evaluate(task.model.eval())
    c = task.model.cfg
    paper = c.fm_weight * m["dev_fm"] + c.ntp_weight * m["dev_ntp"] + c.rm_weight * m["dev_rm"]
    anchor = c.tokenizer_ctc_weight * m["dev_tok_ctc"]
    assert anchor > 0
    assert m["dev_loss"] == pytest.approx(paper + (anchor if fade_steps == 0 else 0.0), rel=1e-9)


@pytest.mark.parametrize("objective,groups,message", [
    ({"ntp_target": "fuzzy"}, None, "ntp_target='fuzzy'"),
    ({"token_grad_every": 15}, None, "token_grad_every=15 must be a multiple of joint_e1.train.log_every=10"),
    ({}, {"vocoder": {"lr": 1e-4}}, "unknown module vocoder")])
def test_bad_e1_options_are_refused_naming_the_key(features_dir, objective, groups, message):
    from e2etts.errors import ConfigError

    params = _params(objective, groups)
    params["joint_e1"]["train"]["log_every"] = 10
    with pytest.raises(ConfigError, match=message):
        build_task(params, features_dir, None)
