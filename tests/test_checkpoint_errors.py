"""Missing, mismatched and foreign checkpoints give one actionable error (issue 7)."""

import json

import pytest
import torch

from e2etts.atomic import torch_save
from e2etts.checkpoint import load_model, load_model_file
from e2etts.errors import UserError
from e2etts.flow.model import FlowMatchingConfig, FlowMatchingDecoder
from e2etts.llm.model import TextToTokenLM, TextToTokenLMConfig
from e2etts.synthesis import System
from e2etts.tokenizer.model import SpeechTokenizer, SpeechTokenizerConfig


def _save(path, kind, model, cfg):
    torch_save(path, {"kind": kind, "model": model.state_dict(), "config": cfg.__dict__, "step": 0})
    return path


def test_wrong_kind_and_unreadable_files(tmp_path):
    cfg = FlowMatchingConfig(d_model=32, n_layers=1, n_heads=2, token_encoder_layers=1)
    flow = _save(tmp_path / "flow.pt", "flow", FlowMatchingDecoder(cfg), cfg)
    with pytest.raises(UserError, match="holds a 'flow' model, expected 'llm'"):
        load_model_file(flow, expected_kind="llm")
    with pytest.raises(UserError, match="checkpoint not found"):
        load_model_file(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read checkpoint"):
        load_model_file(tmp_path / "junk.pt")
    # A training state (last.pt, step_<N>.pt) has the weights but not the model's config.
    torch_save(tmp_path / "step_0000100.pt", {"kind": "flow", "model": FlowMatchingDecoder(cfg).state_dict(),
                                              "optimizer": {}, "step": 100})
    with pytest.raises(UserError, match=r"step_0000100.pt: a training state .*pass the run's final.pt"):
        load_model(tmp_path / "step_0000100.pt", "flow", FlowMatchingDecoder, FlowMatchingConfig)


def test_weights_of_another_shape_are_refused_with_the_fix(tmp_path):
    cfg = FlowMatchingConfig(d_model=32, n_layers=1, n_heads=2, token_encoder_layers=1)
    state = FlowMatchingDecoder(cfg).state_dict()
    state.pop("prior_proj.weight")  # e.g. a flow saved before the prior existed
    torch_save(tmp_path / "old.pt", {"kind": "flow", "model": state, "config": cfg.__dict__})
    with pytest.raises(UserError, match=r"does not fit the current flow model.*re-train it"):
        load_model(tmp_path / "old.pt", "flow", FlowMatchingDecoder, FlowMatchingConfig)
    torch_save(tmp_path / "odd.pt", {"kind": "flow", "model": state, "config": {"n_wings": 2}})
    with pytest.raises(UserError, match="does not fit"):
        load_model(tmp_path / "odd.pt", "flow", FlowMatchingDecoder, FlowMatchingConfig)


def test_system_with_llm_of_another_codebook_is_refused(tmp_path):
    tok_cfg = SpeechTokenizerConfig(d_model=32, n_heads=2, encoder_layers=1, decoder_layers=1,
                                    fsq_levels=(4, 4, 4, 4, 4))
    llm_cfg = TextToTokenLMConfig(d_model=32, n_layers=1, n_heads=2, fsq_levels=(5, 5, 4))
    flow_cfg = FlowMatchingConfig(fsq_dim=5, d_model=32, n_layers=1, n_heads=2, token_encoder_layers=1)
    spec = {
        "name": "mixed",
        "tokenizer": str(_save(tmp_path / "tok.pt", "tokenizer", SpeechTokenizer(tok_cfg), tok_cfg)),
        "llm": str(_save(tmp_path / "llm.pt", "llm", TextToTokenLM(llm_cfg), llm_cfg)),
        "flow": str(_save(tmp_path / "flow.pt", "flow", FlowMatchingDecoder(flow_cfg), flow_cfg)),
        "vocoder": {"type": "griffinlim", "iters": 2},
        "synthesis": {},
    }
    (tmp_path / "system.json").write_text(json.dumps(spec))
    with pytest.raises(UserError, match=r"LLM codebook \(5, 5, 4\) does not match"):
        System(tmp_path)


def test_out_of_memory_names_the_batch_size(tmp_path):
    from torch import nn

    from e2etts.train import TrainConfig, TrainTask, fit

    def loss(m, batch):
        raise torch.OutOfMemoryError("CUDA out of memory")

    task = TrainTask(
        kind="toy", model=nn.Linear(2, 1), dataset=[torch.zeros(2)] * 8, lengths=[1] * 8,
        collate=torch.stack, loss=loss, evaluate=lambda m: {"dev_loss": 0.0},
        export=lambda m: {"model": m.state_dict(), "config": {}},
    )
    with pytest.raises(UserError, match=r"out of memory on a batch of 4 .*lower train.batch_size \(now 4\)"):
        fit(task, TrainConfig(max_steps=2, batch_size=4, progress=False), tmp_path, seed=0)
