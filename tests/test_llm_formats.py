"""The LLM's sequence formats (llm/formats.py): one object per format, chosen once from the
config; the rest of the code never asks which format a model has."""

import re
from pathlib import Path

import pytest
import torch

from e2etts.llm.formats import InterleavedFormat, PrefixFormat, sequence_format
from e2etts.llm.model import SamplingConfig, TextToTokenLM, TextToTokenLMConfig
from e2etts.llm.train import LLMTraining, evaluate_llm
from test_models_llm_interleaved import _items

SRC = Path(__file__).resolve().parents[1] / "src" / "e2etts"


def _tiny(alignment, **kw):
    cfg = TextToTokenLMConfig(text_vocab_size=12, fsq_levels=(4, 4), d_model=32, n_layers=2, n_heads=2,
                              dropout=0.0, max_len=128, alignment=alignment, **kw)
    torch.manual_seed(0)
    return TextToTokenLM(cfg)


def test_the_format_is_chosen_once_from_the_config():
    assert isinstance(_tiny("prefix").format, PrefixFormat)
    assert isinstance(_tiny("interleaved").format, InterleavedFormat)
    assert _tiny("interleaved").format.end_id == 16  # <eos> = codebook size
    with pytest.raises(ValueError, match="alignment 'diagonal' is not one of prefix, interleaved"):
        sequence_format("diagonal", 16)
    # Only the interleaved format has the symbol-context projection.
    assert not hasattr(_tiny("prefix"), "symbol_in") and hasattr(_tiny("interleaved"), "symbol_in")


@pytest.mark.parametrize("alignment", ["prefix", "interleaved"])
def test_each_format_collates_learns_and_generates_its_training_items(alignment):
    """collate -> training loss falls on two items; held-out loss through evaluate_llm; token
    logits line up with the targets they predict; greedy generation from the whole text
    speaks one token per step at least (interleaved: every symbol)."""
    model = _tiny(alignment)
    fmt, items = model.format, _items()
    batch = fmt.collate(items, held_out=True)
    logits = fmt.logits(model, batch)
    targets, token_pos = fmt.targets(model, batch)
    per_token = fmt.token_logits(logits, batch)
    assert per_token.shape == (2, 10, model.codebook_size + 1)
    for b, it in enumerate(items):  # the position of each token holds it as the target
        n = len(it["tokens"])
        assert targets[b].gather(0, token_pos[b, :n]).tolist() == it["tokens"].tolist()
        assert torch.equal(per_token[b, :n], logits[b].index_select(0, token_pos[b, :n]))
    wrapper = LLMTraining(model)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    with torch.no_grad():
        first = evaluate_llm(model, items)["dev_loss"]
    for _ in range(80):
        loss, log = wrapper(fmt.collate(items))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert set(log) == {"ce", "acc"}
    with torch.no_grad():
        assert evaluate_llm(model, items)["dev_loss"] < 0.3 * first
    out = model.generate(items[0]["text_ids"], torch.zeros(0, dtype=torch.long), SamplingConfig(temperature=0.0),
                         max_new_tokens=40)
    assert len(out) >= (len(items[0]["text_ids"]) if alignment == "interleaved" else 1)


def test_from_padded_equals_collate_and_interleaved_needs_the_alignment():
    items = _items()
    for alignment in ("prefix", "interleaved"):
        fmt = _tiny(alignment).format
        text = torch.nn.utils.rnn.pad_sequence([it["text_ids"] for it in items], batch_first=True)
        tokens = torch.nn.utils.rnn.pad_sequence([it["tokens"] for it in items], batch_first=True)
        a = fmt.collate(items, held_out=True)
        b = fmt.from_padded(text, torch.tensor([7, 4]), tokens, torch.tensor([10, 6]),
                            [it["starts"] for it in items], keys=[it["utt_id"] for it in items])
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="symbol starts"):
        fmt.from_padded(text, torch.tensor([7, 4]), tokens, torch.tensor([10, 6]))


def test_context_used_counts_the_interleaved_symbol_units():
    assert _tiny("prefix").format.context_used(20, 30, 12) == 51
    assert _tiny("interleaved").format.context_used(20, 30, 12) == 63


def test_guided_attention_is_refused_where_the_format_has_none():
    """It used to be accepted and silently ignored under the interleaved format."""
    model = _tiny("prefix", guided_attention_weight=1.0)
    batch = model.format.collate(_items())
    assert "guided_attn" in LLMTraining(model)(batch)[1]
    with pytest.raises(ValueError, match="guided_attention_weight > 0: the interleaved format"):
        _tiny("interleaved", guided_attention_weight=1.0)


def test_nothing_outside_the_format_asks_which_format_a_model_has():
    """No `.alignment ==` comparisons or batch-key sniffing ("kinds" in batch) outside
    llm/formats.py; plan.py works from params before any model exists."""
    asks = re.compile(r"alignment\s*[!=]=|\"kinds\"\s+in\s|\"units\"\s+in\s")
    found = [f"{p.relative_to(SRC)}:{n}" for p in sorted(SRC.rglob("*.py")) if p.name != "formats.py"
             and p.name != "plan.py" for n, line in enumerate(p.read_text().splitlines(), 1) if asks.search(line)]
    assert found == []
