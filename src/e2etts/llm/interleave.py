"""The interleaved LLM sequence (`llm.model.alignment: interleaved`), ELLA-V-style.

One item is a sequence of units, each with a kind and a value:

    [text symbols 0..L-1] <sep> [prompt speech tokens] s_k [tokens of s_k] <end>? s_k+1 ...

- TEXT: the whole text (prompt text + text to speak at inference), value = symbol id;
- SEP: the boundary, value 0;
- SPEECH: a speech token, value = code index; those before the first SYMBOL are the prompt;
- SYMBOL: text symbol j re-entered in the speech stream, value = j (its index in the text).

Targets (what each position predicts): the next speech token of the current symbol, or
<end> (class K, the LLM's <eos> class) after its last token. The next SYMBOL unit is never
predicted: the caller inserts it after <end>, so the LLM walks the text in order and cannot
skip a word; <end> after the last symbol ends the utterance. Prompt tokens are predicted
like the prefix LLM's, except the last one (the first symbol follows it by construction).

Training splits each utterance at a word start k (symbols before k and their tokens play
the prompt), as inference has a prompt utterance followed by the text to speak. Symbol
segments come from llm/align.py.
"""

from __future__ import annotations

import zlib

import torch

from ..batching import pad
from ..text import CHAR_TO_ID

PAD_KIND, TEXT, SEP, SPEECH, SYMBOL = 0, 1, 2, 3, 4
SYMBOL_CONTEXT = (-1, 0, 1, 2)  # a SYMBOL unit embeds its text neighbours at these offsets
IGNORE = -100
WORD_BOUNDARY = CHAR_TO_ID[" "]  # the space symbol of both front ends


def word_starts(text_ids: torch.Tensor) -> list[int]:
    """Indices of symbols that begin a word (0 and every symbol after a space)."""
    ids = text_ids.tolist()
    return [j for j in range(len(ids)) if j == 0 or ids[j - 1] == WORD_BOUNDARY and ids[j] != WORD_BOUNDARY]


def split_point(text_ids: torch.Tensor, generator: torch.Generator | None = None, key: str | None = None) -> int:
    """A word start in the first half of the text: drawn from `generator` (training), or
    fixed by the crc32 of `key` (held-out items, so the dev loss is reproducible)."""
    half = [j for j in word_starts(text_ids) if j <= len(text_ids) // 2] or [0]
    if key is not None:
        return half[zlib.crc32(key.encode()) % len(half)]
    return half[int(torch.randint(len(half), (1,), generator=generator))]


def build_units(
    text_ids: torch.Tensor, tokens: torch.Tensor, starts: torch.Tensor, k: int, end_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One item -> (kinds (N,), values (N,), targets (N,)), N = L + 1 + T + (L - k).

    text_ids (L,), tokens (T,), starts (L,) segment starts (llm/align.py), k the first
    symbol after the prompt part.
    """
    L, T = len(text_ids), len(tokens)
    bounds = torch.cat([starts, torch.tensor([T])]).tolist()
    b = bounds[k]
    kinds = [TEXT] * L + [SEP] + [SPEECH] * b
    values = text_ids.tolist() + [0] + tokens[:b].tolist()
    targets = [IGNORE] * L + [int(tokens[0]) if b > 0 else IGNORE]
    targets += tokens[1:b].tolist() + ([IGNORE] if b > 0 else [])
    for j in range(k, L):
        seg = tokens[bounds[j] : bounds[j + 1]].tolist()
        kinds += [SYMBOL] + [SPEECH] * len(seg)
        values += [j] + seg
        targets += seg + [end_id]
    return torch.tensor(kinds), torch.tensor(values), torch.tensor(targets)


def collate_interleaved(items: list[dict], end_id: int, generator: torch.Generator | None = None,
                        held_out: bool = False) -> dict:
    """Items with text_ids, tokens and starts -> padded unit batch (right padding, kind 0).

    held_out: split points fixed per utterance (split_point with key=utt_id).
    """
    rows = []
    for it in items:
        k = split_point(it["text_ids"], key=it["utt_id"] if held_out else None, generator=generator)
        rows.append(build_units(it["text_ids"], it["tokens"], it["starts"], k, end_id))
    kinds, _ = pad([r[0] for r in rows], PAD_KIND)
    values, _ = pad([r[1] for r in rows], 0)
    targets, _ = pad([r[2] for r in rows], IGNORE)
    text, _ = pad([it["text_ids"] for it in items])
    # Speech units appear in token order, so the t-th SPEECH unit holds token t.
    is_speech = kinds == SPEECH
    token_index = (is_speech.cumsum(1) - 1).clamp_min(0) * is_speech
    token_unit, _ = pad([torch.nonzero(r[0] == SPEECH).view(-1) for r in rows], 0)
    return {"kinds": kinds, "values": values, "targets": targets, "text": text,
            "token_index": token_index, "token_unit": token_unit}


def interleave_padded(text: torch.Tensor, text_lens: torch.Tensor, tokens: torch.Tensor,
                      token_lens: torch.Tensor, starts: list[torch.Tensor], end_id: int,
                      keys: list[str] | None = None, generator: torch.Generator | None = None) -> dict:
    """collate_interleaved over padded batch tensors (text (B, L), tokens (B, T)); keys:
    utterance ids for fixed held-out split points, None for random ones."""
    items = [{"utt_id": keys[b] if keys else "", "text_ids": text[b, : int(text_lens[b])],
              "tokens": tokens[b, : int(token_lens[b])], "starts": starts[b]} for b in range(len(text))]
    units = collate_interleaved(items, end_id, generator, held_out=keys is not None)
    return {k: v.to(text.device) for k, v in units.items()}
