"""Interleaved LLM format (llm.model.alignment: interleaved): CTC forced alignment of text
symbols to tokens, the unit sequence, learning, and generation that walks every symbol."""

import numpy as np
import pytest
import torch

from e2etts.llm.align import ctc_viterbi_starts, uniform_starts
from e2etts.llm.interleave import (
    IGNORE,
    SPEECH,
    SYMBOL,
    TEXT,
    build_units,
    collate_interleaved,
    split_point,
    word_starts,
)
from e2etts.llm.model import SamplingConfig, TextToTokenLM, TextToTokenLMConfig

GREEDY = SamplingConfig(temperature=0.0)

torch.set_num_threads(1)
SPACE = 1  # the space symbol's id in the shared vocabulary (word boundary)


def _log_probs(path: list[int], vocab: int = 6) -> np.ndarray:
    """Frames that each put almost all mass on one class (0 = blank)."""
    lp = np.full((len(path), vocab), np.log(1e-4))
    lp[np.arange(len(path)), path] = np.log(1 - 1e-4 * (vocab - 1))
    return lp


def test_viterbi_starts_follow_the_spikes_and_tile_the_tokens():
    # blank blank a a a blank b b -> a's segment starts at 0 (leading blanks join it), b's at 6.
    starts = ctc_viterbi_starts(_log_probs([0, 0, 2, 2, 2, 0, 3, 3]), np.array([2, 3]))
    assert starts.tolist() == [0, 6]
    # A repeated label needs a blank between its two frames: 3 frames hold "a a", 2 do not.
    assert ctc_viterbi_starts(_log_probs([2, 0, 2]), np.array([2, 2])).tolist() == [0, 2]
    assert ctc_viterbi_starts(_log_probs([2, 2]), np.array([2, 2])) is None
    assert uniform_starts(10, 4).tolist() == [0, 2, 5, 7]


def _reference_viterbi_starts(log_probs: np.ndarray, labels: np.ndarray) -> np.ndarray | None:
    """The CTC Viterbi written out (the project's own before torchaudio's forced_align):
    best path through blank-interleaved labels, then the first frame of each label."""
    T, L = log_probs.shape[0], len(labels)
    S = 2 * L + 1
    ext = np.zeros(S, dtype=np.int64)
    ext[1::2] = labels
    can_skip = np.zeros(S, dtype=bool)
    can_skip[3::2] = labels[1:] != labels[:-1]
    emit, neg = log_probs[:, ext], -1e30
    score = np.full(S, neg)
    score[0], score[1] = emit[0, 0], emit[0, 1]
    back = np.zeros((T, S), dtype=np.int8)
    for t in range(1, T):
        cand = np.stack([score, np.concatenate([[neg], score[:-1]]),
                         np.where(can_skip, np.concatenate([[neg, neg], score[:-2]]), neg)])
        back[t] = cand.argmax(0)
        score = cand.max(0) + emit[t]
    s = S - 1 if score[S - 1] >= score[S - 2] else S - 2
    if score[s] <= neg / 2:
        return None
    starts = np.full(L, -1)
    for t in range(T - 1, -1, -1):
        if s % 2 == 1:
            starts[s // 2] = t  # walking back: the last write is the label's first frame
        s -= int(back[t, s])
    starts[0] = 0
    return starts


def test_forced_alignment_equals_the_written_out_viterbi_on_random_lattices():
    rng = np.random.default_rng(0)
    n_none = 0
    for _ in range(200):
        T, V = int(rng.integers(2, 40)), int(rng.integers(3, 8))
        labels = rng.integers(1, V, size=int(rng.integers(1, 12)))  # small V: many repeats
        lp = torch.randn(T, V, generator=torch.Generator().manual_seed(int(rng.integers(1 << 30)))).mul(3).log_softmax(-1).numpy()
        want, got = _reference_viterbi_starts(lp, labels), ctc_viterbi_starts(lp, labels)
        n_none += want is None
        assert (got is None) == (want is None), (T, labels.tolist())
        if want is not None:
            assert got.tolist() == want.tolist(), (T, labels.tolist())
    assert 20 < n_none < 180  # both kinds of lattice were tried


def test_units_hold_every_token_once_and_end_each_symbol():
    text = torch.tensor([3, 4, SPACE, 5, 6])
    tokens = torch.arange(20, 31)  # 11 tokens
    starts = torch.tensor([0, 2, 4, 5, 8])
    kinds, values, targets = build_units(text, tokens, starts, k=3, end_id=99)
    L, T, k, b = 5, 11, 3, 5
    assert len(kinds) == L + 1 + T + (L - k)
    assert (kinds[:L] == TEXT).all() and values[:L].tolist() == text.tolist()
    speech = values[kinds == SPEECH]
    assert speech.tolist() == tokens.tolist()  # prompt part then every segment, in order
    assert values[kinds == SYMBOL].tolist() == [3, 4]  # symbols k..L-1 re-enter by index
    assert (targets == 99).sum() == L - k  # one <end> per spoken symbol
    # Prompt tokens predict their successor; the last prompt token predicts nothing.
    prompt_targets = targets[L : L + 1 + b].tolist()
    assert prompt_targets == [20, 21, 22, 23, 24, IGNORE]
    # After symbol 3 come its tokens 25..27, then <end>; symbol 4's tokens 28..30, <end>.
    assert targets[L + 1 + b :].tolist() == [25, 26, 27, 99, 28, 29, 30, 99]


def test_split_points_are_word_starts_in_the_first_half():
    text = torch.tensor([3, 4, SPACE, 5, SPACE, 6, 7, SPACE, 8, 9, 10, 11])
    assert word_starts(text) == [0, 3, 5, 8]
    g = torch.Generator().manual_seed(0)
    assert {split_point(text, g) for _ in range(50)} == {0, 3, 5}
    assert split_point(text, key="utt1") == split_point(text, key="utt1")


def _tiny(**kw):
    cfg = TextToTokenLMConfig(text_vocab_size=12, fsq_levels=(4, 4), d_model=32, n_layers=2,
                              n_heads=2, dropout=0.0, max_len=128, alignment="interleaved")
    for key, value in kw.items():
        setattr(cfg, key, value)
    return TextToTokenLM(cfg)


def _items():
    return [
        {"utt_id": "a", "text_ids": torch.tensor([3, 4, SPACE, 5, 6, SPACE, 7]),
         "tokens": torch.tensor([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), "starts": torch.tensor([0, 1, 3, 4, 6, 7, 8])},
        {"utt_id": "b", "text_ids": torch.tensor([8, SPACE, 9, 10]),
         "tokens": torch.tensor([11, 12, 13, 14, 15, 0]), "starts": torch.tensor([0, 2, 3, 5])},
    ]


def test_interleaved_lm_learns_and_generation_speaks_each_symbol_in_order():
    torch.manual_seed(0)
    model = _tiny()
    items = _items()
    batch = collate_interleaved(items, model.eos_id, held_out=True)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        ce, acc = model.loss_units(batch)
        first = first if first is not None else ce.item()
        opt.zero_grad()
        ce.backward()
        opt.step()
    ce, acc = model.loss_units(batch)
    assert ce.item() < 0.1 * first and acc.item() == 1.0
    # Greedy generation from the held-out split point reproduces the rest of each item,
    # through the KV-cached path (units fed one at a time).
    for it in items:
        k = int(split_point(it["text_ids"], key=it["utt_id"]))
        b = int(it["starts"][k])
        out = model.generate(it["text_ids"], it["tokens"][:b], GREEDY, max_new_tokens=50,
                             n_target_text=len(it["text_ids"]) - k)
        assert out.tolist() == it["tokens"][b:].tolist()


def test_generation_gives_each_symbol_at_least_one_and_at_most_the_guard():
    model = _tiny(max_tokens_per_symbol=3).eval()
    text, prompt = torch.tensor([3, 4, SPACE, 5]), torch.tensor([1, 2])
    with torch.no_grad():
        model.head.bias[model.eos_id] = 1e4  # <end> wins whenever it is allowed
    assert len(model.generate(text, prompt, max_new_tokens=50, n_target_text=3)) == 3
    with torch.no_grad():
        model.head.bias[model.eos_id] = -1e4  # <end> never chosen: the guard moves on
    assert len(model.generate(text, prompt, max_new_tokens=50, n_target_text=3)) == 9
    assert len(model.generate(text, prompt, max_new_tokens=5, n_target_text=3)) == 5
    with pytest.raises(ValueError, match="n_target_text"):
        model.generate(text, prompt, n_target_text=9)


def test_unknown_alignment_is_refused():
    with pytest.raises(ValueError, match="alignment"):
        _tiny(alignment="diagonal")


def test_token_logits_are_the_positions_that_predict_each_token():
    items = _items()
    batch = collate_interleaved(items, end_id=16, held_out=True)
    pred = (batch["token_unit"] - 1).clamp_min(0)
    for b, it in enumerate(items):
        n = len(it["tokens"])
        assert batch["targets"][b].gather(0, pred[b, :n]).tolist() == it["tokens"].tolist()
        assert batch["values"][b].gather(0, batch["token_unit"][b, :n]).tolist() == it["tokens"].tolist()
    model = _tiny().eval()
    logits = model.forward_units(batch)
    picked = model.format.token_logits(logits, batch)
    assert picked.shape == (2, 10, model.codebook_size + 1)
    assert torch.equal(picked[0, 3], logits[0, int(batch["token_unit"][0, 3]) - 1])


def test_interleaved_kv_cache_matches_full_recompute():
    model = _tiny().eval()
    text, prompt = torch.tensor([3, 4, SPACE, 5, 6]), torch.tensor([1, 2, 3])
    for seed in range(3):
        a = model.generate(text, prompt, max_new_tokens=30, n_target_text=4, use_kv_cache=True,
                           generator=torch.Generator().manual_seed(seed))
        b = model.generate(text, prompt, max_new_tokens=30, n_target_text=4, use_kv_cache=False,
                           generator=torch.Generator().manual_seed(seed))
        assert a.tolist() == b.tolist() and len(a) >= 4


def test_align_set_reads_tokens_and_text_without_building_items(tmp_path):
    """align_set aligns from the set's tokens and text alone: an item of a TokenizedSet copies
    its whole mel to float32 (1.4 GB over the default train split, kept by E2's job), so the
    alignment must not build items; it gives what align_tokens gives for the same inputs."""
    from types import SimpleNamespace

    from e2etts.atomic import torch_save
    from e2etts.llm.align import align_set, align_tokens
    from e2etts.tokenizer.model import SpeechTokenizer, SpeechTokenizerConfig

    cfg = SpeechTokenizerConfig(d_model=32, n_heads=2, encoder_layers=1, decoder_layers=1, fsq_levels=(5, 5, 4))
    tokenizer = SpeechTokenizer(cfg).eval()
    path = tmp_path / "tok.pt"
    torch_save(path, {"kind": "tokenizer", "model": tokenizer.state_dict(), "config": cfg.__dict__, "step": 0})
    g = torch.Generator().manual_seed(0)
    tokens = [torch.randint(0, 100, (n,), generator=g) for n in (30, 12, 25)]
    text = [torch.randint(1, 20, (n,), generator=g) for n in (8, 5, 9)]

    class NoItems(SimpleNamespace):
        def __len__(self):
            return len(self.tokens)

        def __getitem__(self, i):
            raise AssertionError("align_set built an item")

    data = NoItems(tokens=tokens, features=SimpleNamespace(text_ids=text), fsq_levels=(5, 5, 4))
    aligned = align_set(data, path)
    want, _ = align_tokens(tokenizer, tokens, text)
    assert [a.tolist() for a in aligned.starts] == [w.tolist() for w in want]
