"""Vocoders: frame/sample length rules, Griffin-Lim round trip, Vocos overfit."""

import math

import torch

from e2etts.audio import log_mel
from e2etts.vocoder.griffinlim import griffin_lim
from e2etts.vocoder.vocos import VocosConfig, VocosVocoder

torch.set_num_threads(1)


def _wav(n=4000):
    t = torch.arange(n) / 16000
    f = 200 + 600 * t / t[-1]  # a rising tone with a harmonic and a little noise
    phase = 2 * math.pi * torch.cumsum(f, 0) / 16000
    g = torch.Generator().manual_seed(0)
    return 0.3 * torch.sin(phase) + 0.1 * torch.sin(2 * phase) + 0.01 * torch.randn(n, generator=g)


def _tiny(**kw):
    cfg = VocosConfig(dim=32, intermediate_dim=64, n_layers=2)
    for k, v in kw.items():
        setattr(cfg, k, v)
    return VocosVocoder(cfg)


def test_vocos_lengths_match_log_mel():
    model = _tiny()
    for T in (5, 17, 40):  # log_mel needs > 512 samples (reflect padding)
        wav = model(torch.randn(2, T, 80) - 5)
        assert wav.shape == (2, (T - 1) * 160)
        assert log_mel(wav).shape == (2, T, 80)


def test_griffin_lim_round_trip():
    wav = _wav()
    mel = log_mel(wav)
    out = griffin_lim(mel, n_iter=16)
    assert out.shape == ((mel.shape[0] - 1) * 160,)
    err = (log_mel(out) - mel).abs().mean()
    assert err < 0.5, err  # ~0.1 measured; noise of the same loudness gives ~2


def test_vocos_forward_deterministic():
    outs = []
    for _ in range(2):
        torch.manual_seed(4)
        outs.append(_tiny()(torch.randn(1, 12, 80) - 5))
    assert torch.equal(outs[0], outs[1])


def test_vocos_overfit_and_masked_loss():
    model = _tiny()
    wav = _wav()[None]
    mel = log_mel(wav)
    model.set_normalization(mel[0].mean(0), mel[0].std(0))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    start, _ = model.loss(mel, wav)
    for _ in range(60):
        loss, parts = model.loss(mel, wav)
        opt.zero_grad()
        loss.backward()
        opt.step()
    final, parts = model.loss(mel, wav)
    assert final.item() < 0.5 * start.item(), (start.item(), final.item(), parts)
    # Padded batch: frames beyond mel_lens do not change the loss of a full item.
    pad_mel = torch.cat([mel, torch.full((1, 5, 80), -11.5)], dim=1)
    pad_wav = torch.cat([wav, torch.zeros(1, 5 * 160)], dim=1)
    masked, _ = model.loss(pad_mel, pad_wav, torch.tensor([mel.shape[1]]))
    assert torch.isfinite(masked)


def test_mel_transform_first_built_in_inference_mode_still_trains():
    # Regression: the cached mel filterbank was created as an inference tensor when the
    # first log_mel call happened under torch.inference_mode(), breaking later training.
    from e2etts import audio

    audio._mel_transform.cache_clear()
    with torch.inference_mode():
        audio.log_mel(torch.randn(1600))
    wav = torch.randn(1, 1600, requires_grad=True)
    audio.log_mel(wav).sum().backward()
    assert wav.grad is not None


def test_griffin_lim_is_deterministic_across_rng_states_and_leaves_the_rng_alone():
    """Same mel -> same wav whatever the caller's RNG state (two pipeline runs synthesized
    different audio from identical checkpoints before), and the global stream is untouched."""
    from e2etts.vocoder.griffinlim import griffin_lim

    mel = torch.randn(40, 80, generator=torch.Generator().manual_seed(3)) - 5.0
    torch.manual_seed(1)
    a = griffin_lim(mel, n_iter=4)
    expected_next = torch.rand(3)
    torch.manual_seed(1)
    torch.rand(7)  # a different global state
    b = griffin_lim(mel, n_iter=4)
    assert torch.equal(a, b)
    torch.manual_seed(1)
    griffin_lim(mel, n_iter=4)
    assert torch.equal(torch.rand(3), expected_next)
