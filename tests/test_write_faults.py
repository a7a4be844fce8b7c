"""Probes of issue 21 beyond its list: a full disk while a checkpoint is written, and a
checkpoint written by another version of the code."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from e2etts import cli
from e2etts.checkpoint import LAST, load_state, save_state
from e2etts.errors import UserError


def _state(n: int) -> dict:
    torch.manual_seed(n)
    return {"step": n, "model": {"w": torch.randn(64, 64)}}


def test_full_disk_while_checkpointing_keeps_the_last_checkpoint(tmp_path):
    """The child process may write at most half of a checkpoint (RLIMIT_FSIZE: write()
    fails with EFBIG as on a full disk with ENOSPC): save_state raises a UserError naming
    last.pt, the previous last.pt keeps its bytes and loads, and no temporary file stays."""
    save_state(tmp_path, _state(1), keep_last=0)
    before = (tmp_path / LAST).read_bytes()
    child = textwrap.dedent(f"""
        import resource, signal, sys, torch
        from e2etts.checkpoint import save_state
        from e2etts.errors import UserError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG from write() instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, ({len(before) // 2}, {len(before) // 2}))
        torch.manual_seed(2)
        try:
            save_state(__import__("pathlib").Path({str(tmp_path)!r}), {{"step": 2, "model": {{"w": torch.randn(64, 64)}}}}, 0)
        except UserError as exc:
            print(exc)
            sys.exit(2)
    """)
    run = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True)
    assert run.returncode == 2, run.stderr
    assert f"{tmp_path / LAST}: not written (File too large)" in run.stdout
    assert "previous file is intact" in run.stdout and "Traceback" not in run.stderr
    assert (tmp_path / LAST).read_bytes() == before
    assert load_state(tmp_path)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [LAST]


def test_full_disk_is_an_error_from_the_cli(tmp_path, monkeypatch, capsys):
    """ENOSPC raised inside an atomic write reaches the user as rc 2 and one line."""
    import errno

    from e2etts import atomic

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.Path, "write_text", full)
    out = tmp_path / "digest.json"
    params = Path(__file__).resolve().parents[1] / "params.yaml"
    code = cli.main(["corpus-digest", "--params", str(params), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and f"{out}: not written (No space left on device)" in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("change", ["new_config_key", "missing_weight"])
def test_checkpoint_from_another_version_of_the_code_is_named(tmp_path, change):
    """A component saved by code with another config field or another set of weights is a
    UserError naming the file and what differs, not a TypeError/RuntimeError traceback."""
    from e2etts.checkpoint import load_model
    from e2etts.flow.model import FlowMatchingConfig, FlowMatchingDecoder

    cfg = FlowMatchingConfig(fsq_dim=3, d_model=32, n_layers=1, n_heads=2, token_encoder_layers=1)
    model = FlowMatchingDecoder(cfg)
    ckpt = {"kind": "flow", "config": dict(vars(cfg)), "model": model.state_dict()}
    if change == "new_config_key":
        ckpt["config"]["a_field_from_a_newer_version"] = 1
    else:
        ckpt["model"].pop(next(iter(ckpt["model"])))
    path = tmp_path / "flow.pt"
    torch.save(ckpt, path)
    with pytest.raises(UserError, match=str(path)) as info:
        load_model(path, "flow", FlowMatchingDecoder, FlowMatchingConfig)
    assert ("a_field_from_a_newer_version" if change == "new_config_key" else "Missing key") in str(info.value)
