"""Reward model: shapes, padding, differentiability in its input, overfit."""

import torch

from e2etts.fsq import FSQ
from e2etts.reward.model import RewardModel, RewardModelConfig

torch.set_num_threads(1)

FSQ_TINY = FSQ((4, 4, 3))


def _tiny(**kw):
    cfg = RewardModelConfig(
        fsq_dim=3,
        d_model=32,
        n_layers=2,
        n_heads=2,
        text_vocab_size=12,
        n_speakers=3,
        dropout=0.0,
    )
    for k, v in kw.items():
        setattr(cfg, k, v)
    return RewardModel(cfg)


def _batch():
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(0, FSQ_TINY.codebook_size, (2, 12), generator=g)
    lens = torch.tensor([12, 9])
    text = torch.tensor([[3, 4, 4, 5], [6, 7, 0, 0]])
    text_lens = torch.tensor([4, 2])
    speakers = torch.tensor([2, 0])
    return FSQ_TINY.indices_to_vectors(idx), lens, text, text_lens, speakers


def test_shapes_and_padding():
    model = _tiny().eval()
    vec, lens, *_ = _batch()
    out = model(vec, lens)
    assert out["ctc_logits"].shape == (2, 12, 12)
    assert out["speaker_logits"].shape == (2, 3)
    one = model(vec[1:, :9], lens[1:])
    assert torch.allclose(out["ctc_logits"][1, :9], one["ctc_logits"][0], atol=1e-5)
    assert torch.allclose(out["speaker_logits"][1], one["speaker_logits"][0], atol=1e-5)


def test_gradient_reaches_soft_token_distribution():
    model = _tiny()
    _, lens, text, text_lens, spk = _batch()
    logits = torch.randn(2, 12, FSQ_TINY.codebook_size, requires_grad=True)
    # Straight-through Gumbel-softmax sample -> expected code vectors, as in E2E stage 3.
    y = torch.nn.functional.gumbel_softmax(logits, tau=1.0, hard=True)
    vec = FSQ_TINY.probs_to_vectors(y)
    total, parts = model.loss(model(vec, lens), lens, text, text_lens, spk)
    total.backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    assert set(parts) == {"ctc", "speaker_ce", "speaker_acc"}


def test_unknown_speakers_are_ignored():
    model = _tiny()
    vec, lens, text, text_lens, _ = _batch()
    out = model(vec, lens)
    total, parts = model.loss(out, lens, text, text_lens, torch.tensor([-1, -1]))
    assert torch.isfinite(total) and parts["speaker_ce"] == 0
    total.backward()


def test_forward_deterministic():
    outs = []
    for _ in range(2):
        torch.manual_seed(9)
        model = _tiny(dropout=0.1).train()
        vec, lens, *_ = _batch()
        outs.append(model(vec, lens)["ctc_logits"])
    assert torch.equal(outs[0], outs[1])


def test_overfit_and_decode():
    model = _tiny()
    vec, lens, text, text_lens, spk = _batch()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    start = None
    for _ in range(100):
        total, parts = model.loss(model(vec, lens), lens, text, text_lens, spk)
        start = start if start is not None else total.item()
        opt.zero_grad()
        total.backward()
        opt.step()
    model.eval()
    out = model(vec, lens)
    total, parts = model.loss(out, lens, text, text_lens, spk)
    assert total.item() < 0.5 * start and parts["speaker_acc"] == 1.0
    assert model.greedy_ctc_decode(out, lens) == [[3, 4, 4, 5], [6, 7]]
