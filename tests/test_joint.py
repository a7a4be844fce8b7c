"""E2E stages: gradient paths, frozen parts, Gumbel straight-through, losses fall."""

import pytest
import torch

from e2etts.flow.model import FlowMatchingConfig, FlowMatchingDecoder
from e2etts.joint.e1 import JointE1, JointE1Config
from e2etts.joint.e2 import JointE2, JointE2Config, gumbel_straight_through
from e2etts.llm.align import uniform_starts
from e2etts.llm.model import TextToTokenLM, TextToTokenLMConfig
from e2etts.reward.model import RewardModel, RewardModelConfig
from e2etts.tokenizer.model import SpeechTokenizer, SpeechTokenizerConfig

LEVELS = (5, 5, 4)
TINY = dict(d_model=32, n_heads=2)


def _models(alignment="prefix", dropout=0.0, seed=0):
    """Tiny tokenizer, flow, LLM and reward model (also used by test_e1_options)."""
    torch.manual_seed(seed)
    tok = SpeechTokenizer(SpeechTokenizerConfig(encoder_layers=1, decoder_layers=1, fsq_levels=LEVELS, dropout=dropout, **TINY))
    flow = FlowMatchingDecoder(FlowMatchingConfig(fsq_dim=3, n_layers=1, token_encoder_layers=1, dropout=dropout, **TINY))
    llm = TextToTokenLM(TextToTokenLMConfig(fsq_levels=LEVELS, n_layers=1, dropout=dropout, alignment=alignment, **TINY))
    rm = RewardModel(RewardModelConfig(fsq_dim=3, n_layers=1, n_speakers=2, dropout=dropout, **TINY))
    # The flow's output layer starts at zero (a stable ODE start), which also blocks every
    # gradient into its inputs; a trained flow has no such zero, so perturb it here.
    torch.nn.init.normal_(flow.out_proj.weight, std=0.02)
    return tok, flow, llm, rm


def _batch(B=3, T=48):
    g = torch.Generator().manual_seed(1)
    mel = torch.randn(B, T, 80, generator=g)
    mel_lens = torch.tensor([T, T - 8, T - 16][:B])
    text = torch.randint(1, 30, (B, 10), generator=g)
    text_lens = torch.tensor([10, 8, 6][:B])
    tokens = torch.randint(0, 100, (B, T // 4), generator=g)
    token_lens = (mel_lens + 3) // 4
    return {"mel": mel, "mel_lens": mel_lens, "text": text, "text_lens": text_lens,
            "speaker": torch.tensor([0, 1, -1][:B]), "tokens": tokens, "token_lens": token_lens,
            "utt_ids": [f"u{b}" for b in range(B)]}


def _with_llm_batch(batch, fmt):
    """E2's batch: the LLM format's batch of the same items (interleaved: symbols spread
    evenly over the tokens)."""
    starts = [torch.from_numpy(uniform_starts(int(t), int(n)))
              for t, n in zip(batch["token_lens"], batch["text_lens"], strict=True)]
    llm_batch = fmt.from_padded(batch["text"], batch["text_lens"], batch["tokens"], batch["token_lens"],
                                starts, keys=batch["utt_ids"])
    return {**batch, "llm": llm_batch}


def test_gumbel_is_one_hot_forward_and_differentiable_backward():
    logits = torch.randn(2, 5, 7, requires_grad=True)
    y = gumbel_straight_through(logits, tau=0.5, generator=torch.Generator().manual_seed(0))
    assert torch.all((y == 0) | (y == 1)) and torch.all(y.sum(-1) == 1)
    (y * torch.randn(2, 5, 7)).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


@pytest.mark.parametrize("loss_name,crop,alignment", [
    ("fm", 0, "prefix"), ("fm", 5, "prefix"), ("ntp", 0, "prefix"), ("ntp", 0, "interleaved"),
    ("rm", 0, "prefix"), ("tok_ctc", 0, "prefix")])
def test_e1_each_loss_reaches_tokenizer_encoder(loss_name, crop, alignment):
    tok, flow, llm, rm = _models(alignment)
    model = JointE1(tok, flow, llm, rm, JointE1Config(flow_crop_tokens=crop))
    parts = model.losses(_batch())
    parts[loss_name].backward()
    grads = [p.grad for n, p in tok.named_parameters() if n.startswith("encoder.") and p.grad is not None]
    assert grads and sum(float(g.abs().sum()) for g in grads) > 0, loss_name


def test_e1_flow_windows_keep_tokens_and_frames_aligned():
    """Token i of a window sits over mel frames 4i..4i+3 of the same utterance; lengths are
    cut to the window; reference statistics come from the whole utterance."""
    tok, flow, llm, rm = _models()
    model = JointE1(tok, flow, llm, rm, JointE1Config(flow_crop_tokens=5))
    B, T = 3, 48
    mel_lens = torch.tensor([48, 40, 16])
    token_lens = (mel_lens + 3) // 4
    frame = torch.arange(T, dtype=torch.float32)
    mel = (frame[None, :, None] + 100 * torch.arange(B)[:, None, None]).expand(B, T, 80).clone()
    vectors = (4 * torch.arange(T // 4, dtype=torch.float32)[None, :, None]
               + 100 * torch.arange(B)[:, None, None]).expand(B, T // 4, 3).clone()
    mel_w, mel_w_lens, vec_w, tok_w_lens, ref = model._flow_windows(
        mel, mel_lens, vectors, token_lens, torch.Generator().manual_seed(3))
    assert mel_w.shape == (B, 20, 80) and vec_w.shape == (B, 5, 3)
    assert tok_w_lens.tolist() == [5, 5, 4] and mel_w_lens.tolist() == [20, 20, 16]
    for b in range(B):
        for k in range(int(tok_w_lens[b])):
            assert mel_w[b, 4 * k, 0] == vec_w[b, k, 0], (b, k)
    assert torch.allclose(ref, flow.reference_stats(mel, mel_lens))


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_e1_tokenizer_ctc_anchor_trains_the_tokenizer_head_only_when_weighted(weight):
    """tokenizer_ctc_weight 0 is the paper's three losses: the tokenizer's CTC head gets no
    gradient; with a weight it does, and the total grows by weight * tok_ctc."""
    tok, flow, llm, rm = _models()
    model = JointE1(tok, flow, llm, rm, JointE1Config(ntp_warmup_steps=1, tokenizer_ctc_weight=weight))
    torch.manual_seed(0)
    total, log = model(_batch())
    total.backward()
    head_grad = tok.ctc_head.weight.grad
    assert log["tok_ctc"] > 0
    if weight == 0:
        assert head_grad is None or float(head_grad.abs().sum()) == 0
        assert float(total.detach()) == pytest.approx(log["fm"] + 0.1 * log["ntp"] + log["rm"], rel=1e-5)
    else:
        assert float(head_grad.abs().sum()) > 0
        assert float(total.detach()) == pytest.approx(log["fm"] + 0.1 * log["ntp"] + log["rm"] + log["tok_ctc"], rel=1e-5)


@pytest.mark.parametrize("anchor,crop,alignment", [(0.0, 0, "prefix"), (1.0, 5, "prefix"),
                                                   (1.0, 5, "interleaved")])  # paper losses; the default's
def test_e1_loss_falls_on_a_tiny_batch(anchor, crop, alignment):
    tok, flow, llm, rm = _models(alignment)
    model = JointE1(tok, flow, llm, rm, JointE1Config(ntp_warmup_steps=1, tokenizer_ctc_weight=anchor,
                                                      flow_crop_tokens=crop))
    batch = _batch()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g_losses = []
    for _ in range(60):
        torch.manual_seed(0)  # same FM noise every step: a fixed objective to overfit
        loss, _ = model(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        g_losses.append(float(loss.detach()))
    assert g_losses[-1] < 0.7 * g_losses[0], g_losses[::10]


def _e2(fm_weight=1.0, rm_weight=1.0, alignment="prefix"):
    _, flow, llm, rm = _models(alignment)
    return JointE2(llm, flow, rm, JointE2Config(fm_weight=fm_weight, rm_weight=rm_weight))


def _e2_batch(model):
    batch = _batch()
    return _with_llm_batch(batch, model.llm.format)


@pytest.mark.parametrize("alignment", ["prefix", "interleaved"])
def test_e2_fm_and_rm_gradients_reach_llm_and_frozen_weights_stay(alignment):
    model = _e2(alignment=alignment)
    frozen_before = {k: v.clone() for k, v in model.frozen.state_dict().items()}
    batch = _e2_batch(model)
    parts = model.losses(batch)
    for name in ("fm", "rm"):
        model.zero_grad()
        parts = model.losses(batch)
        parts[name].backward()
        grads = [p.grad for p in model.llm.parameters() if p.grad is not None]
        assert grads and sum(float(g.abs().sum()) for g in grads) > 0, name
    assert all(not p.requires_grad for p in model.frozen.parameters())
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        loss, _ = model(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    for k, v in model.frozen.state_dict().items():
        assert torch.equal(v, frozen_before[k]), k
    model.train()
    assert not model.frozen.training  # frozen parts stay in eval mode (no dropout)


@pytest.mark.parametrize("alignment", ["prefix", "interleaved"])
def test_e2_loss_falls_and_tau_anneals(alignment):
    model = _e2(alignment=alignment)
    batch = _e2_batch(model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses, taus = [], []
    for _ in range(40):
        torch.manual_seed(0)
        loss, parts = model(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        taus.append(parts["tau"])
    assert losses[-1] < 0.8 * losses[0], losses[::8]
    assert taus[-1] < taus[0]


def test_e2_fm_only_has_no_reward_term():
    model = _e2(rm_weight=0.0)
    parts = model.losses(_e2_batch(model))
    assert "fm" in parts and "rm" not in parts


def test_gumbel_noise_is_finite_at_extreme_uniforms(monkeypatch):
    # u -> 0 and u -> 1 are where a careless -log(-log(u)) turns into NaN.
    monkeypatch.setattr(torch, "rand", lambda shape, **kw: torch.tensor([0.0, 1e-12, 0.5, 1 - 1e-7, 1.0]).expand(*shape).clone())
    y = gumbel_straight_through(torch.zeros(3, 5), tau=0.5)
    assert torch.isfinite(y).all()
