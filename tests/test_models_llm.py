"""Text-to-token LM: alignment of logits, padding invariance, KV cache, sampling guards."""

import pytest
import torch

from e2etts.llm.model import SamplingConfig, TextToTokenLM, TextToTokenLMConfig

GREEDY = SamplingConfig(temperature=0.0)

torch.set_num_threads(1)


def _tiny(**kw):
    cfg = TextToTokenLMConfig(
        text_vocab_size=12,
        fsq_levels=(4, 4),
        d_model=32,
        n_layers=2,
        n_heads=2,
        dropout=0.0,
        max_len=128,
    )
    for k, v in kw.items():
        setattr(cfg, k, v)
    return TextToTokenLM(cfg)


def _batch(model):
    text = torch.tensor([[3, 4, 5, 6, 7], [8, 9, 0, 0, 0]])
    text_lens = torch.tensor([5, 2])
    idx = torch.tensor([[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 0, 0]])
    speech_lens = torch.tensor([6, 4])
    return text, text_lens, model.fsq.indices_to_vectors(idx), speech_lens, idx


def test_logit_shape_and_targets():
    model = _tiny().eval()
    text, tl, vec, sl, idx = _batch(model)
    logits = model(text, tl, vec, sl)
    assert logits.shape == (2, 7, 17)  # S + 1 positions, K + 1 classes
    tgt = model.targets(idx, sl)
    assert tgt[0].tolist() == [1, 2, 3, 4, 5, 6, 16]
    assert tgt[1].tolist() == [7, 8, 9, 10, 16, -100, -100]


def test_padded_batch_equals_single_items():
    model = _tiny().eval()
    text, tl, vec, sl, _ = _batch(model)
    logits = model(text, tl, vec, sl)
    for b in range(2):
        L, S = int(tl[b]), int(sl[b])
        one = model(text[b : b + 1, :L], tl[b : b + 1], vec[b : b + 1, :S], sl[b : b + 1])
        assert torch.allclose(logits[b, : S + 1], one[0], atol=1e-5)


def test_causal_future_does_not_leak():
    model = _tiny().eval()
    text, tl, vec, sl, _ = _batch(model)
    a = model(text[:1], tl[:1], vec[:1], sl[:1])
    vec2 = vec.clone()
    vec2[0, 4:] = -vec2[0, 4:]
    b = model(text[:1], tl[:1], vec2[:1], sl[:1])
    assert torch.allclose(a[0, :5], b[0, :5], atol=1e-6)  # positions <= 4 read tokens < 4
    assert not torch.allclose(a[0, 5:], b[0, 5:])


def test_gradient_reaches_speech_vectors():
    model = _tiny()
    text, tl, vec, sl, idx = _batch(model)
    vec = vec.clone().requires_grad_(True)
    ce, acc = model.loss(text, tl, vec, sl, idx)
    ce.backward()
    assert vec.grad.abs().sum() > 0 and 0.0 <= float(acc) <= 1.0


def test_forward_deterministic():
    outs = []
    for _ in range(2):
        torch.manual_seed(5)
        model = _tiny(dropout=0.1).train()
        text, tl, vec, sl, _ = _batch(model)
        outs.append(model(text, tl, vec, sl))
    assert torch.equal(outs[0], outs[1])


def test_overfit_tiny_batch():
    model = _tiny()
    text, tl, vec, sl, idx = _batch(model)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    start = None
    for _ in range(80):
        ce, acc = model.loss(text, tl, None, sl, idx)
        start = start if start is not None else ce.item()
        opt.zero_grad()
        ce.backward()
        opt.step()
    ce, acc = model.loss(text, tl, None, sl, idx)
    assert ce.item() < 0.5 * start and acc.item() == 1.0
    # Greedy generation reproduces item 0 (the prompt is its first two tokens) and stops.
    model.eval()
    out = model.generate(text[0], idx[0, :2], GREEDY, max_new_tokens=20)
    assert out.tolist() == [3, 4, 5, 6]


def test_kv_cache_matches_full_recompute():
    model = _tiny().eval()
    with torch.no_grad():
        model.head.bias[model.eos_id] = -1e4  # run to the length limit
    text, prompt = torch.tensor([3, 4, 5]), torch.tensor([1, 2, 3])
    a = model.generate(text, prompt, GREEDY, max_new_tokens=25, use_kv_cache=True)
    b = model.generate(text, prompt, GREEDY, max_new_tokens=25, use_kv_cache=False)
    assert a.tolist() == b.tolist() and len(a) == 25
    # Sampling with the same generator seed is reproducible.
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    s1 = model.generate(text, prompt, max_new_tokens=15, generator=g1)
    s2 = model.generate(text, prompt, max_new_tokens=15, generator=g2, use_kv_cache=False)
    assert s1.tolist() == s2.tolist()


def test_empty_prompt():
    model = _tiny().eval()
    out = model.generate(torch.tensor([3, 4]), torch.zeros(0, dtype=torch.long), max_new_tokens=5)
    assert out.dtype == torch.long and len(out) <= 5


def test_eos_and_min_new_tokens():
    model = _tiny().eval()
    with torch.no_grad():
        model.head.bias[model.eos_id] = 1e4  # eos always wins once allowed
    text, prompt = torch.tensor([3, 4, 5]), torch.tensor([1])
    assert len(model.generate(text, prompt, max_new_tokens=10)) == 0
    assert len(model.generate(text, prompt, max_new_tokens=10, min_new_tokens=4)) == 4
    assert (
        len(model.generate(text, prompt, GREEDY, max_new_tokens=10, min_new_tokens=3)) == 3
    )


def test_max_length_guard():
    model = _tiny(max_len=20).eval()
    with torch.no_grad():
        model.head.bias[model.eos_id] = -1e4
    text, prompt = torch.tensor([3, 4, 5]), torch.tensor([1, 2])
    assert len(model.generate(text, prompt, max_new_tokens=7)) == 7
    # 3 text + sep + 2 prompt = 6: at most 14 new tokens fit in max_len 20.
    assert len(model.generate(text, prompt, max_new_tokens=100)) == 14


@pytest.mark.parametrize("window,expect_all_same", [(0, True), (10, False)])
def test_repetition_aware_sampling(window, expect_all_same):
    model = _tiny().eval()
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
        model.head.bias[model.eos_id] = -1e4
        model.head.bias[7] = 3.0  # ~ 57% of the mass: top_k=1 always picks it
    g = torch.Generator().manual_seed(0)
    out = model.generate(
        torch.tensor([3]),
        torch.tensor([1]),
        SamplingConfig(top_k=1, repetition_window=window, repetition_threshold=0.1),
        max_new_tokens=30,
        generator=g,
    )
    assert len(out) == 30
    assert (set(out.tolist()) == {7}) == expect_all_same


def _penalty_after_training(weight: float, steps: int = 60) -> tuple[float, float]:
    """Train a tiny LM on a fixed batch with CE (+ weight * guided attention) ->
    (penalty at start, penalty at the end) of the guided layer."""
    from e2etts.llm.train import LLMTraining

    torch.manual_seed(0)
    model = _tiny(guided_attention_weight=max(weight, 1e-9), guided_attention_layer=1)
    model.cfg.guided_attention_weight = weight  # 0: CE only, the layer still keeps q/k
    text, tl, vec, sl, idx = _batch(model)
    batch = {"text": text, "text_lens": tl, "tokens": idx, "token_lens": sl}
    wrapper = LLMTraining(model)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def penalty() -> float:
        with torch.no_grad():
            model.loss(text, tl, None, sl, idx)
            return float(model.guided_attention_penalty(tl, sl, text.shape[1]))

    start = penalty()
    first_ce = None
    for _ in range(steps):
        loss, log = wrapper(batch)
        first_ce = log["ce"] if first_ce is None else first_ce
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert ("guided_attn" in log) == (weight > 0)
    assert log["ce"] < 0.5 * first_ce, (first_ce, log["ce"])  # it still learns the tokens
    return start, penalty()


def test_guided_attention_pulls_the_layer_toward_the_diagonal():
    start, guided = _penalty_after_training(1.0)
    _, unguided = _penalty_after_training(0.0)
    assert 0.0 < start < 1.0
    assert guided < 0.5 * start and guided < 0.5 * unguided, (start, guided, unguided)


def test_guided_attention_penalty_ranks_diagonal_below_reversed_and_checks_the_layer():
    model = _tiny(guided_attention_weight=1.0, guided_attention_layer=1)
    text = torch.randint(1, 12, (1, 10))
    tl, sl = torch.tensor([10]), torch.tensor([30])
    idx = torch.randint(0, 16, (1, 30))
    model.loss(text, tl, None, sl, idx)
    q, k = model.transformer.blocks[1].attn.last_qk
    Lmax = text.shape[1]

    def penalty(reverse: bool) -> float:
        # Hand-made queries/keys: each speech row reads one text slot, one-hot.
        q2, k2 = torch.zeros_like(q), torch.zeros_like(k)
        for i in range(10):
            k2[0, :, i, i] = 1.0
        for j in range(31):
            i = min(9, int(j / 30 * 10))
            q2[0, :, Lmax + j, 9 - i if reverse else i] = 50.0
        model.transformer.blocks[1].attn.last_qk = (q2, k2)
        return float(model.guided_attention_penalty(tl, sl, Lmax))

    assert penalty(reverse=False) < 0.1 < 0.6 < penalty(reverse=True)
    with pytest.raises(ValueError, match="guided_attention_layer"):
        _tiny(guided_attention_weight=1.0, guided_attention_layer=2)
