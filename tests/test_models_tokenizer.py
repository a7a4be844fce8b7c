"""FSQ and the speech tokenizer: quantization, length rule, padding, CTC overfit."""

import torch
import torch.nn.functional as F

from e2etts.fsq import FSQ
from e2etts.tokenizer.model import SpeechTokenizer, SpeechTokenizerConfig, token_lengths

torch.set_num_threads(1)


def _tiny(**kw):
    cfg = SpeechTokenizerConfig(
        n_mels=20,
        d_model=32,
        n_heads=2,
        encoder_layers=1,
        decoder_layers=1,
        fsq_levels=(5, 5, 5),
        dropout=0.0,
    )
    for k, v in kw.items():
        setattr(cfg, k, v)
    return SpeechTokenizer(cfg)


def test_fsq_codebook_and_round_trip():
    fsq = FSQ((2, 3, 4, 5))  # odd and even levels
    assert fsq.codebook_size == 120 and fsq.dim == 4
    cb = fsq.codebook()
    assert cb.shape == (120, 4)
    assert torch.unique(cb, dim=0).shape[0] == 120
    assert cb.min() >= -1 and cb.max() <= 1
    assert torch.equal(fsq.vectors_to_indices(cb), torch.arange(120))
    # Large random inputs reach every level of every channel (even levels included).
    v, idx = fsq(torch.randn(1, 5000, 4) * 4)
    for c, L in enumerate(fsq.levels):
        assert torch.unique(v[..., c]).numel() == L
    assert torch.equal(fsq.indices_to_vectors(idx), v)
    assert torch.equal(fsq.vectors_to_indices(v), idx)
    assert idx.min() >= 0 and idx.max() < 120


def test_fsq_zero_maps_to_grid_centre():
    fsq = FSQ((8, 5))
    v, _ = fsq(torch.zeros(1, 1, 2))
    assert torch.allclose(v, torch.zeros(1, 1, 2))


def test_fsq_straight_through_gradient():
    fsq = FSQ((8, 5, 5, 5))
    z = torch.randn(2, 7, 4, requires_grad=True)
    v, _ = fsq(z)
    (v * torch.randn_like(v)).sum().backward()
    assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_fsq_probs_to_vectors():
    fsq = FSQ((8, 5, 5, 5))
    idx = torch.randint(0, fsq.codebook_size, (2, 9))
    onehot = F.one_hot(idx, fsq.codebook_size).float()
    assert torch.allclose(fsq.probs_to_vectors(onehot), fsq.indices_to_vectors(idx))
    logits = torch.randn(2, 9, fsq.codebook_size, requires_grad=True)
    soft = fsq.probs_to_vectors(logits.softmax(-1))
    assert soft.shape == (2, 9, 4)
    soft.sum().backward()
    assert logits.grad.abs().sum() > 0


def test_token_length_rule_and_shapes():
    assert token_lengths(torch.tensor([1, 4, 5, 13, 16])).tolist() == [1, 1, 2, 4, 4]
    model = _tiny().eval()
    mel = torch.randn(3, 13, 20)
    out = model(mel, torch.tensor([13, 9, 4]))
    assert out["vectors"].shape == (3, 4, 3)
    assert out["indices"].shape == (3, 4) and out["indices"].dtype == torch.long
    assert out["token_lens"].tolist() == [4, 3, 1]
    assert out["ctc_logits"].shape == (3, 4, model.cfg.text_vocab_size)
    vec, idx, tl = model.encode(mel, torch.tensor([13, 9, 4]))
    assert torch.equal(vec, out["vectors"]) and torch.equal(tl, out["token_lens"])


def test_padding_does_not_change_valid_outputs():
    model = _tiny().eval()
    a, b = torch.randn(13, 20), torch.randn(22, 20)
    batch = torch.zeros(2, 22, 20)
    batch[0, :13], batch[1] = a, b
    out = model(batch, torch.tensor([13, 22]))
    single = model(a[None], torch.tensor([13]))
    n = int(single["token_lens"][0])
    assert torch.allclose(out["ctc_logits"][0, :n], single["ctc_logits"][0], atol=1e-5)
    assert torch.equal(out["indices"][0, :n], single["indices"][0])


def test_forward_deterministic():
    outs = []
    for _ in range(2):
        torch.manual_seed(3)
        model = _tiny(dropout=0.1).train()
        mel = torch.randn(2, 30, 20)
        outs.append(model(mel, torch.tensor([30, 21]))["ctc_logits"])
    assert torch.equal(outs[0], outs[1])


def test_ctc_overfit_and_greedy_decode():
    torch.manual_seed(0)
    model = _tiny()
    mel = torch.randn(2, 64, 20)
    mel_lens = torch.tensor([64, 52])
    text = torch.tensor([[8, 5, 12, 12, 15], [2, 25, 5, 0, 0]])  # "hello", "bye"
    text_lens = torch.tensor([5, 3])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    start = None
    for _ in range(300):  # the shared vocabulary (characters + phones) has 97 symbols
        loss = model.ctc_loss(model(mel, mel_lens), text, text_lens)
        start = start if start is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    out = model(mel, mel_lens)
    final = model.ctc_loss(out, text, text_lens).item()
    assert final < 0.5 * start, (start, final)
    assert model.greedy_ctc_decode(out) == [[8, 5, 12, 12, 15], [2, 25, 5]]
