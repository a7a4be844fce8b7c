"""Flow-matching decoder: loss masking, overfit, sampling shapes, gradients to tokens."""

import pytest
import torch

from e2etts.flow.model import FlowMatchingConfig, FlowMatchingDecoder

torch.set_num_threads(1)


def _tiny(**kw):
    cfg = FlowMatchingConfig(
        n_mels=16,
        fsq_dim=3,
        d_model=32,
        n_layers=2,
        n_heads=2,
        dropout=0.0,
        token_encoder_layers=1,
    )
    for k, v in kw.items():
        setattr(cfg, k, v)
    return FlowMatchingDecoder(cfg)


def _batch():
    g = torch.Generator().manual_seed(1)
    # Smooth in time and frequency, like speech (white noise cannot be memorized quickly).
    t, f = torch.arange(40.0)[:, None], torch.arange(16.0)[None]
    mel = torch.stack([torch.sin(t / 5 + f / 3), torch.cos(t / 7 - f / 4)]) * 2 - 4.0
    mel_lens = torch.tensor([40, 29])  # item 1: 8 tokens cover 32 frames, only 29 real
    tokens = torch.randn(2, 10, 3, generator=g).tanh()
    token_lens = torch.tensor([10, 8])
    return mel, mel_lens, tokens, token_lens


def _fixed_loss(model, *batch, seed=0):
    return model.loss(*batch, generator=torch.Generator().manual_seed(seed))


def test_loss_ignores_padding_and_gradients_reach_tokens():
    model = _tiny()
    mel, mel_lens, tokens, token_lens = _batch()
    base = _fixed_loss(model, mel, mel_lens, tokens, token_lens)
    mel2, tokens2 = mel.clone(), tokens.clone()
    mel2[1, 29:] = 100.0  # beyond mel_lens
    tokens2[1, 8:] = 0.3  # beyond token_lens
    assert torch.allclose(base, _fixed_loss(model, mel2, mel_lens, tokens2, token_lens))
    # Longer mel than the tokens cover is truncated to 4 * T'.
    long = torch.cat([mel, torch.randn(2, 7, 16)], dim=1)
    assert torch.allclose(base, _fixed_loss(model, long, mel_lens, tokens, token_lens))
    tokens = tokens.clone().requires_grad_(True)
    model.out_proj.weight.data.normal_(0, 0.1)  # zero-init output would block the gradient
    _fixed_loss(model, mel, mel_lens, tokens, token_lens).backward()
    assert tokens.grad.abs().sum() > 0


def test_forward_deterministic():
    vals = []
    for _ in range(2):
        torch.manual_seed(2)
        model = _tiny(dropout=0.1).train()
        vals.append(model.loss(*_batch()))
    assert torch.equal(vals[0], vals[1])


@pytest.mark.parametrize("conv", [{}, {"frame_encoder_layers": 2, "speaker_cond": True}])
def test_overfit_tiny_batch(conv):
    model = _tiny(**conv)
    batch = _batch()
    model.set_normalization(torch.full((16,), -4.0), torch.ones(16))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    start = _fixed_loss(model, *batch, seed=123).item()
    for step in range(200):
        loss = model.loss(*batch, generator=torch.Generator().manual_seed(step))
        opt.zero_grad()
        loss.backward()
        opt.step()
    final = sum(_fixed_loss(model, *batch, seed=1000 + s).item() for s in range(4)) / 4
    assert final < 0.5 * start, (start, final)


@pytest.mark.parametrize("conv", [{}, {"frame_encoder_layers": 1, "estimator_conv_layers": 1}])
def test_sample_shapes_and_finite(conv):
    model = _tiny(**conv)
    model.out_proj.weight.data.normal_(0, 0.1)
    tokens = torch.randn(1, 10, 3).tanh()
    prompt = torch.randn(1, 13, 16) - 4.0
    g = torch.Generator().manual_seed(0)
    out = model.sample(tokens, prompt, n_steps=4, cfg_strength=0.7, generator=g)
    assert out.shape == (1, 40 - 13, 16) and torch.isfinite(out).all()
    out = model.sample(tokens, None, n_steps=2, cfg_strength=0.0)
    assert out.shape == (1, 40, 16) and torch.isfinite(out).all()
    # Same generator seed -> same sample; padded batch sampling gives per-item lengths.
    a = model.sample(tokens, prompt, n_steps=3, generator=torch.Generator().manual_seed(4))
    b = model.sample(tokens, prompt, n_steps=3, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    batch_tokens = torch.randn(2, 10, 3).tanh()
    outs = model.sample_batch(
        batch_tokens,
        torch.tensor([10, 6]),
        torch.randn(2, 13, 16),
        torch.tensor([13, 5]),
        n_steps=2,
    )
    assert [o.shape for o in outs] == [(27, 16), (19, 16)]
    assert model.training  # restored after sampling


def test_prior_is_trained_toward_the_mel_and_reported():
    model = _tiny()
    parts = {}
    batch = _batch()
    total = model.loss(*batch, generator=torch.Generator().manual_seed(0), parts=parts)
    assert set(parts) == {"fm", "prior"}
    assert float(total) == pytest.approx(parts["fm"] + parts["prior"], rel=1e-5)
    # The prior term's gradient reaches prior_proj; with prior_weight 0 it does not exist.
    total.backward()
    assert model.prior_proj.weight.grad.abs().sum() > 0
    off = _tiny(prior_weight=0.0)
    off.load_state_dict(model.state_dict())
    parts_off = {}
    total_off = off.loss(*batch, generator=torch.Generator().manual_seed(0), parts=parts_off)
    assert float(total_off) == pytest.approx(parts_off["fm"], rel=1e-5)


def test_start_t_one_returns_the_prior_estimate():
    """Starting the ODE at t=1 skips the flow: the output is mu (denormalized)."""
    model = _tiny()
    model.eval()
    _, _, tokens, _ = _batch()
    out = model.sample(tokens[:1], None, n_steps=3, cfg_strength=0.0, start_t=1.0,
                       generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        cond = model.encode_tokens(tokens[:1], torch.tensor([10]))
        mu = model.norm.denormalize(model.prior_proj(cond))
    assert out.shape == mu.shape
    assert torch.allclose(out, mu, atol=1e-3)  # sigma_min * noise is all that is left
    halfway = model.sample(tokens[:1], None, n_steps=3, cfg_strength=0.0, start_t=0.5,
                           generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(halfway).all() and not torch.allclose(halfway, mu)


def test_speaker_condition_reaches_the_prior_and_follows_the_prompt():
    torch.manual_seed(0)
    model = _tiny(speaker_cond=True)
    mel, mel_lens, tokens, token_lens = _batch()
    loss = model.loss(mel, mel_lens, tokens, token_lens, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert model.speaker_proj[0].weight.grad.abs().sum() > 0
    # Without a speaker condition the module does not exist (old checkpoints still load).
    assert not hasattr(_tiny(), "speaker_proj")
    stats = FlowMatchingDecoder.reference_stats(mel, mel_lens)
    assert stats.shape == (2, 32) and torch.isfinite(stats).all()
    model.eval()
    out_a = model.sample(tokens[:1], mel[:1, :8], n_steps=2, cfg_strength=0.0, start_t=1.0)
    out_b = model.sample(tokens[:1], mel[:1, :8] + 3.0, n_steps=2, cfg_strength=0.0, start_t=1.0)
    assert not torch.allclose(out_a, out_b)  # mu itself depends on the prompt's voice


def test_frame_encoder_lets_the_prior_change_within_a_token():
    """Without frame-rate layers mu is constant over each token's 4 frames; with them it
    can follow the mel inside a token, and training the prior on a batch shows it."""
    batch = _batch()
    for layers, expect_flat in ((0, True), (2, False)):
        torch.manual_seed(0)
        model = _tiny(frame_encoder_layers=layers)
        model.set_normalization(torch.full((16,), -4.0), torch.ones(16))
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        for step in range(60):
            loss = model.loss(*batch, generator=torch.Generator().manual_seed(step))
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            mu = model.prior_proj(model.encode_tokens(batch[2], batch[3]))  # (B, 4T', n_mels)
        within = (mu[0].reshape(10, 4, -1) - mu[0].reshape(10, 4, -1).mean(1, keepdim=True)).abs().max()
        assert (float(within) < 1e-5) == expect_flat, (layers, float(within))


def test_euler_steps_uniform_and_swayed_grids():
    from e2etts.flow.model import euler_steps

    # sway 0: the uniform grid as the solver always computed it (t = start + i * dt).
    dt = 1.0 / 6
    assert euler_steps(6) == [(i * dt, dt) for i in range(6)]
    assert euler_steps(4, start_t=0.5) == [(0.5 + i * 0.125, 0.125) for i in range(4)]
    # sway -1: t = 1 - cos(pi u / 2); steps short near the noise, long near the data.
    steps = euler_steps(3, sway=-1.0)
    times = [t for t, _ in steps] + [steps[-1][0] + steps[-1][1]]
    assert times == pytest.approx([0.0, 0.1340, 0.5, 1.0], abs=1e-4)
    sizes = [d for _, d in steps]
    assert sizes[0] < sizes[1] < sizes[2]
    # sway +1 bends the other way; every grid spans [start_t, 1] and is monotone.
    for n, start, sway in ((3, 0.0, 1.0), (5, 0.3, -1.0), (2, 0.0, -0.5), (7, 0.2, 0.4)):
        steps = euler_steps(n, start_t=start, sway=sway)
        assert steps[0][0] == start and all(d > 0 for _, d in steps)
        assert steps[-1][0] + steps[-1][1] == pytest.approx(1.0, abs=1e-12)
    assert euler_steps(3, sway=1.0)[0][1] > 1 / 3  # +1: long first step
    for bad in (-1.5, 1.01):
        with pytest.raises(ValueError, match="sway"):
            euler_steps(3, sway=bad)


def test_sway_sets_the_times_the_estimator_is_asked_at():
    from e2etts.flow.model import euler_steps

    model = _tiny()
    model.out_proj.weight.data.normal_(0, 0.1)
    tokens = torch.randn(1, 10, 3).tanh()
    prompt = torch.randn(1, 13, 16) - 4.0
    asked = []
    velocity = model.velocity

    def spy(x, t, *args):
        asked.append(round(float(t[0]), 6))
        return velocity(x, t, *args)

    model.velocity = spy
    outs = {}
    for sway in (0.0, -1.0):
        asked.clear()
        outs[sway] = model.sample(tokens, prompt, n_steps=3, cfg_strength=0.7, sway=sway,
                                  generator=torch.Generator().manual_seed(4))
        assert asked == [round(t, 6) for t, _ in euler_steps(3, sway=sway)]
    default = model.sample(tokens, prompt, n_steps=3, cfg_strength=0.7,
                           generator=torch.Generator().manual_seed(4))
    assert torch.equal(default, outs[0.0])  # sway 0 is the default
    assert not torch.allclose(outs[-1.0], outs[0.0])  # the grid moves the sample
