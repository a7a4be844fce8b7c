"""The shared training loop: learning, resume equality, determinism, guards."""

import csv

import pytest
import torch
from torch import nn

from e2etts import checkpoint
from e2etts.batching import make_batches
from e2etts.errors import UserError
from e2etts.train import TrainConfig, TrainingDiverged, TrainTask, fit
from toy_tasks import crash_at, regression_task


def _toy_task(n=64, poison_step=None):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 8, generator=g)
    w = torch.randn(8, 1, generator=g)
    y = x @ w
    data = [(x[i], y[i]) for i in range(n)]
    torch.manual_seed(0)  # tasks build their models after seeding, as the real ones do
    model = nn.Sequential(nn.Linear(8, 16), nn.Dropout(0.1), nn.GELU(), nn.Linear(16, 1))
    calls = {"n": 0}

    def loss(m, batch):
        xb, yb = batch
        calls["n"] += 1
        out = m(xb)
        value = nn.functional.mse_loss(out, yb)
        if poison_step is not None and calls["n"] >= poison_step:
            value = value * float("nan")
        return value, {"mse": float(value.detach())}

    def evaluate(m):
        return {"dev_loss": float(nn.functional.mse_loss(m(x[:16]), y[:16]))}

    return TrainTask(
        kind="toy",
        model=model,
        dataset=data,
        lengths=[1 + i % 5 for i in range(n)],
        collate=lambda items: (torch.stack([a for a, _ in items]), torch.stack([b for _, b in items])),
        loss=loss,
        evaluate=evaluate,
        export=lambda m: {"model": m.state_dict(), "config": {}},
    )


def _cfg(**kw):
    base = dict(max_steps=40, batch_size=8, lr=3e-2, warmup_steps=5, eval_every=10,
                ckpt_every=10, log_every=5, keep_last=2, progress=False)
    base.update(kw)
    return TrainConfig(**base)


def _rows(path):
    with open(path) as fh:
        # Wall-clock columns differ between runs; everything else must not.
        return [{k: v for k, v in r.items() if k not in ("wall_s", "train_min")}
                for r in csv.DictReader(fh, delimiter="\t")]


def test_batches_are_deterministic_and_cover_items():
    a = make_batches(list(range(100)), 8, seed=3, epoch=0)
    assert a == make_batches(list(range(100)), 8, seed=3, epoch=0)
    assert a != make_batches(list(range(100)), 8, seed=3, epoch=1)
    assert len({i for b in a for i in b}) == 96  # the ragged tail batch is dropped


def test_loss_falls_and_final_checkpoint_written(tmp_path):
    result = fit(_toy_task(), _cfg(), tmp_path, seed=0)
    rows = _rows(tmp_path / "train_log.tsv")
    assert float(rows[-1]["loss"]) < 0.3 * float(rows[0]["loss"])
    final = checkpoint.load_model_file(tmp_path / "final.pt", expected_kind="toy")
    assert final["step"] == result["step"]
    assert len(list(tmp_path.glob("step_*.pt"))) == 2  # keep_last rotation


def test_resume_after_crash_matches(tmp_path, monkeypatch):
    fit(_toy_task(), _cfg(), tmp_path / "full", seed=0)
    # Crash: the loss function raises at its 27th call (after the step-20 checkpoint).
    with pytest.raises(KeyboardInterrupt):
        fit(crash_at(_toy_task(), 27), _cfg(), tmp_path / "crash", seed=0)
    assert not (tmp_path / "crash" / "final.pt").exists()
    assert torch.load(tmp_path / "crash" / "last.pt", weights_only=False)["step"] == 20
    fit(_toy_task(), _cfg(), tmp_path / "crash", seed=0)
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "crash" / "last.pt", weights_only=False)
    assert a["step"] == b["step"] == 40
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k])
    # Byte-identical, not only equal (issue 21: the checkpoint directory's DVC hash changed
    # after a resume; pickle back-references differed). Failed before atomic._canonical.
    assert (tmp_path / "full" / "last.pt").read_bytes() == (tmp_path / "crash" / "last.pt").read_bytes()
    assert _rows(tmp_path / "full" / "train_log.tsv") == _rows(tmp_path / "crash" / "train_log.tsv")
    assert _rows(tmp_path / "full" / "dev_log.tsv") == _rows(tmp_path / "crash" / "dev_log.tsv")


def test_train_state_is_the_checkpoint_dict(tmp_path):
    """last.pt is TrainState.to_dict(): its fields, in order; read back and written again,
    the same keys, the same value objects and the same bytes."""
    import dataclasses

    from e2etts.atomic import torch_save

    fit(_toy_task(), _cfg(max_steps=10), tmp_path, seed=0)
    saved = torch.load(tmp_path / "last.pt", weights_only=False)
    assert list(saved) == [f.name for f in dataclasses.fields(checkpoint.TrainState)]
    again = checkpoint.TrainState.from_dict(saved).to_dict()
    assert list(again) == list(saved)
    assert all(again[k] is saved[k] for k in saved)
    torch_save(tmp_path / "again.pt", again)
    assert (tmp_path / "again.pt").read_bytes() == (tmp_path / "last.pt").read_bytes()
    # A checkpoint from before the memorization guard (no history) starts it empty.
    old = {k: v for k, v in saved.items() if k != "history"}
    assert checkpoint.TrainState.from_dict(old).history == {
        "train_means": [], "dev_values": [], "loss_sum": 0.0, "loss_count": 0}


def test_same_seed_same_numbers(tmp_path):
    fit(_toy_task(), _cfg(), tmp_path / "a", seed=5)
    fit(_toy_task(), _cfg(), tmp_path / "b", seed=5)
    assert _rows(tmp_path / "a" / "train_log.tsv") == _rows(tmp_path / "b" / "train_log.tsv")


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    with pytest.raises(TrainingDiverged, match="lower train.lr|Lower train.lr"):
        fit(_toy_task(poison_step=15), _cfg(), tmp_path, seed=0)
    state = torch.load(tmp_path / "last.pt", weights_only=False)
    assert state["step"] == 10
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    assert not (tmp_path / "final.pt").exists()


def test_batch_size_must_split_across_ranks(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(UserError, match="divisible"):
        fit(_toy_task(), _cfg(batch_size=8), tmp_path, seed=0)


def test_detect_memorization_fires_only_on_the_pattern():
    from e2etts.train import detect_memorization

    falling = [3.0, 2.5, 2.0, 1.5, 1.0, 0.5]
    # Held-out best at evaluation 2, three evaluations ago, while training loss halves.
    memorizing = [3.0, 2.8, 2.7, 2.75, 2.9, 3.1]
    assert "memorizing" in detect_memorization(falling, memorizing, span=3)
    assert detect_memorization(falling, memorizing, span=4) is None  # not waited long enough
    assert detect_memorization(falling, [3.0, 2.8, 2.6, 2.5, 2.4, 2.3], span=3) is None
    flat_train = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]  # both stalled: a plateau, not memorizing
    assert detect_memorization(flat_train, memorizing, span=3) is None
    assert detect_memorization(falling, memorizing, span=0) is None


def test_memorization_guard_stops_a_model_that_memorizes(tmp_path):
    """A wide model on 8 noisy-label items memorizes them; held-out loss rises -> stop."""
    g = torch.Generator().manual_seed(2)
    x, dev_x = torch.randn(8, 16, generator=g), torch.randn(64, 16, generator=g)
    y, dev_y = torch.randn(8, 1, generator=g), torch.randn(64, 1, generator=g)  # pure noise
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 256), nn.GELU(), nn.Linear(256, 1))
    task = regression_task(model, x, y, dev_x, dev_y)
    cfg = _cfg(max_steps=400, batch_size=8, lr=1e-2, eval_every=10, memorization_span=3)
    result = fit(task, cfg, tmp_path, seed=0)
    dev = _rows(tmp_path / "dev_log.tsv")
    assert int(dev[-1]["step"]) < 400  # stopped early
    assert result["step"] == int(min(dev, key=lambda r: float(r["dev_loss"]))["step"])
    assert float(dev[-1]["train_loss"]) < float(dev[0]["train_loss"])


def test_snapshots_on_schedule_outside_the_clock_and_rng(tmp_path):
    """snapshot_every: the weights at step 0, every N steps and the end, exported like
    final.pt into the checkpoint directory, listed with the training minutes in the log
    directory; training itself is the same bits with or without them."""
    from e2etts.evaluate.curves import snapshot_rows

    plain = tmp_path / "plain"
    fit(_toy_task(), _cfg(), plain, seed=0)
    snapped, logs = tmp_path / "snapped", tmp_path / "logs"
    fit(_toy_task(), _cfg(snapshot_every=20), snapped, seed=0, log_dir=logs)
    rows = snapshot_rows(snapped, logs)
    assert [r["step"] for r in rows] == [0, 20, 40]
    assert rows[0]["train_min"] < 0.01  # nothing trained yet
    minutes = [r["train_min"] for r in rows]
    assert minutes == sorted(minutes)
    last = torch.load(rows[-1]["path"], weights_only=False)
    final = torch.load(snapped / "final.pt", weights_only=False)
    assert last["step"] == 40 and last["kind"] == final["kind"]
    trained = torch.load(plain / "last.pt", weights_only=False)  # saved at the end, step 40
    assert trained["step"] == 40
    assert all(torch.equal(last["model"][k], v) for k, v in trained["model"].items())
    first = torch.load(rows[0]["path"], weights_only=False)["model"]
    assert not all(torch.equal(first[k], v) for k, v in last["model"].items())  # it trained
    # Same seed -> the same training numbers and checkpoints with or without snapshots.
    assert _rows(plain / "train_log.tsv") == _rows(logs / "train_log.tsv")
    assert _rows(plain / "dev_log.tsv") == _rows(logs / "dev_log.tsv")
    assert (plain / "final.pt").read_bytes() == (snapped / "final.pt").read_bytes()
    resumable = torch.load(snapped / "last.pt", weights_only=False)  # its settings differ, its state not
    assert resumable["signature"] == trained["signature"]
    # A fresh run in the same directory starts its curve again (another run's points go).
    (snapped / "snapshots" / "step_0000020.pt").rename(snapped / "snapshots" / "step_0000030.pt")
    for name in ("last.pt", "final.pt"):
        (snapped / name).unlink()
    fit(_toy_task(), _cfg(snapshot_every=40), snapped, seed=0, log_dir=logs)
    assert [r["step"] for r in snapshot_rows(snapped, logs)] == [0, 40]
    assert sorted(p.name for p in (snapped / "snapshots").iterdir()) == ["step_0000000.pt", "step_0000040.pt"]


def test_snapshot_log_errors_name_the_file(tmp_path):
    from e2etts.errors import UserError
    from e2etts.evaluate.curves import snapshot_rows

    with pytest.raises(UserError, match="snapshot_log.tsv: no snapshot log"):
        snapshot_rows(tmp_path, tmp_path)
    (tmp_path / "snapshot_log.tsv").write_text("step\ttrain_min\tsnapshot\n0\t0\tsnapshots/step_0000000.pt\n")
    with pytest.raises(UserError, match="step 0's snapshot .* is missing"):
        snapshot_rows(tmp_path, tmp_path)
    (tmp_path / "snapshot_log.tsv").write_text("step\ttrain_min\tsnapshot\n20\t0.1\tx.pt\n")
    with pytest.raises(UserError, match=r"do not rise from step 0"):
        snapshot_rows(tmp_path, tmp_path)


def test_checkpoint_of_other_settings_is_not_resumed(tmp_path, capsys):
    """Changing a params section re-runs the rule in the same directory: the old run's
    last.pt must not be resumed (it would mix two configurations)."""
    fit(_toy_task(), _cfg(max_steps=20), tmp_path / "run", seed=0)
    fit(_toy_task(), _cfg(max_steps=20, lr=1e-2), tmp_path / "run", seed=0)
    assert "starting toy afresh" in capsys.readouterr().out
    fit(_toy_task(), _cfg(max_steps=20, lr=1e-2), tmp_path / "fresh", seed=0)
    assert _rows(tmp_path / "run" / "train_log.tsv") == _rows(tmp_path / "fresh" / "train_log.tsv")
    a = torch.load(tmp_path / "run" / "final.pt", weights_only=False)
    b = torch.load(tmp_path / "fresh" / "final.pt", weights_only=False)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k])
    # The same settings still resume: a finished run is not redone.
    capsys.readouterr()
    fit(_toy_task(), _cfg(max_steps=20, lr=1e-2), tmp_path / "fresh", seed=0)
    assert "resumed toy" in capsys.readouterr().out


def test_deterministic_switch_turns_on_deterministic_algorithms(tmp_path):
    before = torch.are_deterministic_algorithms_enabled()
    try:
        fit(_toy_task(), _cfg(max_steps=5, deterministic=True), tmp_path, seed=0)
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(before)


def test_checkpoint_of_other_input_files_is_not_resumed(tmp_path, capsys):
    """Same settings, new inputs (e.g. E2 re-run on a retrained stage-2 LLM): the finished
    old run must not be resumed; the same inputs again resume it."""
    from e2etts.run_signature import input_digest

    init = tmp_path / "init.pt"
    init.write_bytes(b"old weights")
    old = input_digest([init])
    fit(_toy_task(), _cfg(max_steps=20), tmp_path / "run", seed=0, inputs=old)
    capsys.readouterr()
    init.write_bytes(b"new weights")
    new = input_digest([init])
    assert new != old
    fit(_toy_task(), _cfg(max_steps=20), tmp_path / "run", seed=0, inputs=new)
    assert "starting toy afresh" in capsys.readouterr().out
    fit(_toy_task(), _cfg(max_steps=20), tmp_path / "run", seed=0, inputs=new)
    out = capsys.readouterr().out
    assert "afresh" not in out and "resumed toy" in out
    with pytest.raises(UserError, match="missing.pt"):
        input_digest([tmp_path / "missing.pt"])
