"""Atomic outputs: nothing half-written on failure; finished files have normal permissions."""

import os

import pytest

from e2etts.atomic import atomic_path, write_text


def test_failure_leaves_previous_file_and_no_temp(tmp_path):
    target = tmp_path / "out.txt"
    write_text(target, "good")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_permissions_follow_umask(tmp_path):
    umask = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644


def test_torch_save_bytes_do_not_depend_on_loaded_pieces(tmp_path):
    """A resumed training state mixes pieces read back by torch.load with fresh ones; equal
    values must still give equal bytes (issue 21: last.pt after a resume differed from an
    uninterrupted run's in pickle back-references only). Failed before the fix in
    torch_save: the loaded "step" key is another str object than the literal "step"."""
    import collections

    import torch

    from e2etts.atomic import torch_save

    def state(optimizer_state):
        model = collections.OrderedDict(w=torch.arange(4.0))
        model._metadata = {"": {"version": 1}}
        return {"model": model, "optimizer": optimizer_state, "step": 3, "best": {"step": 2}}

    torch_save(tmp_path / "fresh.pt", state({"state": {0: {"step": torch.tensor(3.0)}}, "betas": (0.9, 0.99)}))
    loaded = torch.load(tmp_path / "fresh.pt", weights_only=False)
    torch_save(tmp_path / "resaved.pt", loaded)  # plain load + save (held before the fix too)
    torch_save(tmp_path / "resumed.pt", state(loaded["optimizer"]))  # loaded piece in a fresh state
    fresh = (tmp_path / "fresh.pt").read_bytes()
    assert (tmp_path / "resaved.pt").read_bytes() == fresh
    assert (tmp_path / "resumed.pt").read_bytes() == fresh
    assert torch.load(tmp_path / "resumed.pt", weights_only=False)["model"]._metadata == {"": {"version": 1}}
