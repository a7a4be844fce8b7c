"""Speed levers (issue 18) do what they claim: the ones meant to change no result give the
same bits as the code they replaced; the ones that change what is computed are off by
default and, when set, change exactly that."""

import os

import pytest
import torch

from e2etts.flow.model import FlowMatchingConfig, FlowMatchingDecoder
from e2etts.llm.model import SamplingConfig, TextToTokenLM, TextToTokenLMConfig
from e2etts.nn import Attention, LayerKV, RotaryEmbedding, Transformer, apply_rotary
from e2etts.synthesis import SynthesisConfig, System
from e2etts.tokenizer.model import SpeechTokenizer, SpeechTokenizerConfig


def test_queries_and_keys_rotated_together_give_the_bits_of_rotating_each():
    torch.manual_seed(0)
    attn = Attention(32, 4, dropout=0.0).eval()
    x = torch.randn(2, 7, 32)
    cos, sin = RotaryEmbedding(8).cos_sin(torch.arange(7))
    attn.keep_qk = True
    attn(x, cos, sin, None)
    q, k, _ = attn.qkv(x).view(2, 7, 3, 4, 8).permute(2, 0, 3, 1, 4)
    assert torch.equal(attn.last_qk[0], apply_rotary(q, cos, sin))
    assert torch.equal(attn.last_qk[1], apply_rotary(k, cos, sin))


def test_one_cached_query_without_a_mask_matches_the_full_causal_pass():
    """Decoding one position after a cache needs no mask (it may see every key); the result
    equals the last row of the whole causal sequence."""
    torch.manual_seed(0)
    model = Transformer(32, 4, 2, causal=True).eval()
    x = torch.randn(1, 9, 32)
    full, _ = model(x)
    _, cache = model(x[:, :8], use_cache=True)
    last, _ = model(x[:, 8:], positions=torch.tensor([8]), cache=cache, use_cache=True)
    torch.testing.assert_close(last[0, 0], full[0, 8], rtol=0, atol=1e-6)


class ConcatenatedKV(LayerKV):
    """The cache as it was before the growing buffers: the past concatenated at every step."""

    def append(self, k, v):
        if self.k is not None:
            k, v = torch.cat([self.k, k], dim=2), torch.cat([self.v, v], dim=2)
        self.k, self.v, self.length = k, v, k.shape[2]
        return k, v


def test_the_growing_cache_decodes_the_bits_of_concatenation():
    """A prompt of 5 positions, then 150 one-position steps: the buffers start at 64 and grow
    twice (to 130 and 262), every step's output is the bits of concatenating the past, and
    the buffers hold exactly the keys and values the concatenation holds."""
    torch.manual_seed(0)
    model = Transformer(32, 4, 2, causal=True).eval()
    x = torch.randn(1, 155, 32)
    with torch.inference_mode():
        grown, cache = model(x[:, :5], use_cache=True)
        concat, ref = model(x[:, :5], cache=[ConcatenatedKV() for _ in range(2)], use_cache=True)
        assert torch.equal(grown, concat)
        capacities = {cache[0].k.shape[2]}
        for t in range(5, 155):
            pos = torch.tensor([t])
            grown, cache = model(x[:, t:t + 1], positions=pos, cache=cache, use_cache=True)
            concat, ref = model(x[:, t:t + 1], positions=pos, cache=ref, use_cache=True)
            assert torch.equal(grown, concat), t
            capacities.add(cache[0].k.shape[2])
    assert sorted(capacities) == [64, 130, 262]
    for layer, want in zip(cache, ref, strict=True):
        assert layer.length == want.length == 155
        assert torch.equal(layer.k[:, :, :155], want.k) and torch.equal(layer.v[:, :, :155], want.v)


def test_all_valid_keys_drop_the_mask_and_keep_every_bit(monkeypatch):
    """A non-causal pass whose keys are all real (one synthesized item; a flow batch of full
    crops) runs without a mask; the output and every gradient are the bits of the explicit
    all-True mask it used to build. One padded key still gets a mask."""
    from e2etts import nn as nn_mod

    valid = torch.ones(2, 11, dtype=torch.bool)
    assert nn_mod.build_attn_mask(valid, False, 11, 11, torch.device("cpu")) is None
    padded = valid.clone()
    padded[1, 10] = False
    assert nn_mod.build_attn_mask(padded, False, 11, 11, torch.device("cpu")) is not None
    assert nn_mod.build_attn_mask(valid, True, 11, 11, torch.device("cpu")) is not None

    def explicit(valid, causal, T_q, T_k, device):  # the mask as built before the lever
        k_pos = torch.arange(T_k)[None, :]
        q_pos = torch.arange(T_k - T_q, T_k)[:, None]
        return (valid[:, None, None, :]) | (k_pos == q_pos)[None, None]

    def run():
        torch.manual_seed(0)
        model = Transformer(64, 4, 2)
        x = torch.randn(2, 11, 64, requires_grad=True)
        y, _ = model(x, valid)
        y.square().sum().backward()
        return [y.detach(), x.grad] + [p.grad for p in model.parameters()]

    new = run()
    monkeypatch.setattr(nn_mod, "build_attn_mask", explicit)
    old = run()
    assert all(torch.equal(a, b) for a, b in zip(new, old, strict=True))


def test_attention_dropout_is_its_own_setting():
    cfg = dict(d_model=32, n_layers=1, n_heads=2, fsq_levels=(5, 5, 4), dropout=0.3)
    default = TextToTokenLM(TextToTokenLMConfig(**cfg))
    assert default.transformer.blocks[0].attn.dropout == 0.3  # None: the model's dropout
    fused = TextToTokenLM(TextToTokenLMConfig(**cfg, attention_dropout=0.0))
    assert fused.transformer.blocks[0].attn.dropout == 0.0
    assert fused.transformer.blocks[0].drop.p == 0.3  # the residual branches keep theirs
    flow = FlowMatchingDecoder(FlowMatchingConfig(fsq_dim=3, d_model=32, n_layers=1, n_heads=2,
                                                  token_encoder_layers=1, dropout=0.3, attention_dropout=0.0))
    assert {b.attn.dropout for t in (flow.token_encoder, flow.estimator) for b in t.blocks} == {0.0}
    # Only attention dropout on: training outputs are random, eval outputs are not.
    only_attn = Transformer(32, 4, 1, dropout=0.0, attention_dropout=0.5).train()
    x = torch.randn(1, 6, 32)
    torch.manual_seed(1)
    a, _ = only_attn(x)
    torch.manual_seed(2)
    b, _ = only_attn(x)
    assert not torch.equal(a, b)
    only_attn.eval()
    assert torch.equal(only_attn(x)[0], only_attn(x)[0])


def _tiny_system(flow_prompt_seconds):
    torch.manual_seed(0)
    tok = SpeechTokenizer(SpeechTokenizerConfig(d_model=32, n_heads=2, encoder_layers=1, decoder_layers=1,
                                                fsq_levels=(5, 5, 4)))
    flow = FlowMatchingDecoder(FlowMatchingConfig(fsq_dim=3, d_model=32, n_layers=1, n_heads=2,
                                                  token_encoder_layers=1))
    cfg = SynthesisConfig(n_steps=2, flow_prompt_seconds=flow_prompt_seconds)
    return System.from_modules("tiny", tok, None, flow, None, cfg)


def test_flow_prompt_seconds_keeps_only_the_prompts_last_part_in_the_canvas():
    prompt_mel = torch.randn(80, 80)  # 0.8 s: 20 tokens
    tokens = torch.randint(0, 100, (32,))  # 20 prompt tokens + 12 new
    shapes = {}
    for seconds in (None, 0.4, 5.0):
        system = _tiny_system(seconds)
        seen = {}

        def sample(vectors, mel, seen=seen, **kw):
            seen["vectors"], seen["mel"] = vectors, mel
            return torch.zeros(1, 4 * vectors.shape[1] - mel.shape[1], 80)

        system.flow.sample = sample
        out = system.decode(prompt_mel, tokens, None)
        assert out.shape == (48, 80)  # the new speech's frames, whatever the canvas
        shapes[seconds] = (seen["vectors"].shape[1], seen["mel"].shape[1])
        if seconds == 0.4:  # the last 10 tokens and their 40 frames
            assert torch.equal(seen["mel"][0], prompt_mel[40:])
            want = system.tokenizer.fsq.indices_to_vectors(tokens[10:])
            assert torch.equal(seen["vectors"][0], want)
    assert shapes == {None: (32, 80), 0.4: (22, 40), 5.0: (32, 80)}


def test_a_setting_left_at_none_keeps_the_run_signature_of_the_code_before_it():
    """An LLM run interrupted before attention_dropout existed still resumes after it; a
    run that sets it is a different run."""
    from dataclasses import asdict

    from e2etts.run_signature import run_signature
    from e2etts.train import TrainConfig, TrainTask

    cfg = TextToTokenLMConfig(d_model=32, n_layers=1, n_heads=2, fsq_levels=(5, 5, 4))
    model = TextToTokenLM(cfg)

    def task(config):
        return TrainTask(kind="llm", model=model, dataset=[], lengths=[], collate=None, loss=None,
                         evaluate=None, export=lambda m: {"config": config})

    today = asdict(cfg)
    before = {k: v for k, v in today.items() if k != "attention_dropout"}
    train = TrainConfig()
    assert run_signature(task(today), model, train, 0) == run_signature(task(before), model, train, 0)
    assert run_signature(task({**today, "attention_dropout": 0.0}), model, train, 0) != \
        run_signature(task(before), model, train, 0)


def test_training_jobs_reexecute_under_tcmalloc_where_it_is_installed(tmp_path, monkeypatch):
    """`e2etts train <task>` re-executes itself once with tcmalloc preloaded for the default
    pipeline's training tasks, and so do synthesis, scoring and the learning-curve probes;
    no other command does (nor the vocoder's training), nor one whose caller set LD_PRELOAD,
    nor the re-executed process itself."""
    from e2etts import allocator

    e2 = ["train", "joint_e2", "--section", "joint_e2_full"]
    assert allocator.allocator_env(e2, {}, dirs=[tmp_path]) == {}  # not installed: glibc, as before
    (tmp_path / allocator.LIBRARY).write_bytes(b"")
    env = allocator.allocator_env(["-v", *e2], {"PATH": "/bin"}, dirs=[tmp_path / "missing", tmp_path])
    assert env == {"LD_PRELOAD": str(tmp_path / allocator.LIBRARY), allocator.MARKER: allocator.LIBRARY}
    for task in ("tokenizer", "reward", "llm", "flow", "joint_e1"):
        assert allocator.allocator_env(["train", task, "--params", "{}"], {}, dirs=[tmp_path]) == env
    for argv in (["score", "--items", "x"], ["synthesize", "--system", "s"], ["topline", "resynth"],
                 ["learning-curve", "llm"]):
        assert allocator.allocator_env(argv, {}, dirs=[tmp_path]) == env
    for argv in (["train", "vocoder"], ["extract-tokens"], ["prepare-corpus"], ["train"], []):
        assert allocator.allocator_env(argv, {}, dirs=[tmp_path]) == {}
    assert allocator.allocator_env(e2, {"LD_PRELOAD": ""}, dirs=[tmp_path]) == {}
    assert allocator.allocator_env(e2, {allocator.MARKER: allocator.LIBRARY}, dirs=[tmp_path]) == {}

    calls = []
    monkeypatch.setattr(allocator, "find_library", lambda dirs=(): tmp_path / allocator.LIBRARY)
    monkeypatch.setattr(allocator.os, "execve", lambda *a: calls.append(a))
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    monkeypatch.delenv(allocator.MARKER, raising=False)
    allocator.reexec_with_allocator(["summarize", "--out", "x"])
    assert calls == []
    allocator.reexec_with_allocator(e2)
    (exe, args, environ), = calls
    assert args[1:] == ["-m", "e2etts.cli", *e2]
    assert environ["LD_PRELOAD"] == str(tmp_path / allocator.LIBRARY) and environ["PATH"] == os.environ["PATH"]


def test_the_bench_reexecutes_under_tcmalloc_like_the_training_jobs(tmp_path, monkeypatch):
    """`python -m e2etts.bench` times training steps under the allocator the jobs use; the
    user's LD_PRELOAD (empty: glibc) wins, and the re-executed process does not loop."""
    from e2etts import allocator

    calls = []
    monkeypatch.setattr(allocator, "find_library", lambda dirs=(): tmp_path / allocator.LIBRARY)
    monkeypatch.setattr(allocator.os, "execve", lambda *a: calls.append(a))
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    monkeypatch.delenv(allocator.MARKER, raising=False)
    allocator.reexec_bench(["--threads", "1"])
    (exe, args, environ), = calls
    assert args[1:] == ["-m", "e2etts.bench", "--threads", "1"]
    assert environ["LD_PRELOAD"] == str(tmp_path / allocator.LIBRARY)
    for env in ({"LD_PRELOAD": ""}, {allocator.MARKER: allocator.LIBRARY}):
        assert allocator.preload_env(env, dirs=[tmp_path]) == {}


def test_torch_runs_under_the_installed_tcmalloc():
    """The library set-up installs loads under torch and computes the same numbers."""
    import subprocess
    import sys

    from e2etts.allocator import find_library

    library = find_library()
    if library is None:
        pytest.skip("libtcmalloc-minimal4 is not installed (scripts/setup.sh installs it)")
    code = "import torch; torch.manual_seed(0); a = torch.randn(300, 300); print(float((a @ a).sum()))"
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    tc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                        env={**os.environ, "LD_PRELOAD": str(library)})
    assert tc.stdout == plain.stdout


def test_the_systems_sway_reaches_the_flow():
    system = _tiny_system(None)
    system.cfg.sway = -0.75
    seen = {}

    def sample(vectors, mel, **kw):
        seen.update(kw)
        return torch.zeros(1, 4 * vectors.shape[1] - mel.shape[1], 80)

    system.flow.sample = sample
    system.decode(torch.randn(8, 80), torch.randint(0, 100, (6,)), None)
    assert seen["sway"] == -0.75 and seen["n_steps"] == 2


def test_decoding_under_inference_mode_gives_the_bits_of_no_grad():
    """generate and System.synthesize run under torch.inference_mode (less bookkeeping per
    small operation): the tokens and the flow's mel equal the no_grad computation's; the
    tokens come back as inference tensors (no autograd may use them; no caller does)."""
    torch.manual_seed(0)
    llm = TextToTokenLM(TextToTokenLMConfig(d_model=32, n_layers=2, n_heads=2, fsq_levels=(5, 5, 4),
                                            alignment="interleaved")).eval()
    text, prompt = torch.tensor([3, 4, 1, 5, 6]), torch.tensor([1, 2, 3])
    for seed in range(3):
        new = llm.generate(text, prompt, max_new_tokens=30, n_target_text=4,
                           generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            ref = llm.format.generate(llm, text, prompt, llm.fsq, SamplingConfig(), 30, 0, True,
                                      torch.Generator().manual_seed(seed), 4)
        assert new.tolist() == ref.tolist() and len(new) >= 4
        assert new.is_inference() and not ref.is_inference()
    system = _tiny_system(None)
    prompt_mel, tokens = torch.randn(40, 80), torch.randint(0, 100, (16,))
    with torch.inference_mode():
        fast = system.decode(prompt_mel, tokens, torch.Generator().manual_seed(0))
    with torch.no_grad():
        slow = system.decode(prompt_mel, tokens, torch.Generator().manual_seed(0))
    assert torch.equal(fast, slow)
