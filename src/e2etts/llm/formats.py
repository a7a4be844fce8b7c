"""The LLM's sequence formats: one object per format, chosen once from `llm.model.alignment`.

A format knows how its training items become a batch (collate, or from padded tensors in
joint training), what the model predicts there (logits, targets, the logits that predict each
speech token), its loss and how a held-out loss is weighted, how much of the context a
prompt takes, and how to generate. The network itself (embeddings, transformer, head) lives
in llm/model.py; nothing else asks which format a model has.

- PrefixFormat (`prefix`, the paper's): [text] <sep> [speech]; a batch is
  {text (B, L), text_lens (B,), tokens (B, S), token_lens (B,)}.
- InterleavedFormat (`interleaved`, ELLA-V-style, llm/interleave.py): every text symbol
  re-enters the speech stream before its own tokens; a batch is the unit batch of
  collate_interleaved (kinds, values, targets, text, token_index, token_unit: (B, N) / (B, T)).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..batching import pad
from ..errors import UserError
from .interleave import (
    SEP,
    SPEECH,
    SYMBOL,
    SYMBOL_CONTEXT,
    TEXT,
    collate_interleaved,
    interleave_padded,
)

if TYPE_CHECKING:
    from ..fsq import FSQ
    from .model import SamplingConfig, TextToTokenLM


class SequenceFormat:
    """What every format shares; the subclasses hold what differs."""

    name: str
    aligned: bool  # needs each item's text-to-token alignment (llm/align.py)
    guided_attention: bool  # takes the guided-attention prior (llm.model.guided_attention_*)

    def __init__(self, end_id: int):
        self.end_id = end_id  # the <eos> / <end> class

    def loss(self, model: TextToTokenLM, batch: dict, speech_vectors: torch.Tensor | None = None):
        """Next-token (next-unit) loss -> (cross-entropy, accuracy)."""
        return self.ce(model, self.logits(model, batch, speech_vectors), batch)

    def training_loss(self, model: TextToTokenLM, batch: dict) -> tuple[torch.Tensor, dict]:
        """Cascade LLM training -> (loss, log): the cross-entropy."""
        ce, acc = self.loss(model, batch)
        return ce, {"ce": float(ce.detach()), "acc": float(acc)}


class PrefixFormat(SequenceFormat):
    name = "prefix"
    aligned = False
    guided_attention = True  # one text block for the prior to look at

    def add_modules(self, model: TextToTokenLM) -> None:
        """Parameters only this format uses (none)."""

    # ---- batches ---------------------------------------------------------------------

    def collate(self, items: list[dict], held_out: bool = False) -> dict:
        """Items with text_ids (L,) and tokens (S,) -> a padded batch."""
        return self.from_padded(*pad([it["text_ids"] for it in items]), *pad([it["tokens"] for it in items]))

    def from_padded(self, text: torch.Tensor, text_lens: torch.Tensor, tokens: torch.Tensor,
                    token_lens: torch.Tensor, starts: list | None = None, keys: list[str] | None = None) -> dict:
        """Padded tensors (text (B, L), tokens (B, S)) -> a batch (starts, keys unused)."""
        return {"text": text, "text_lens": text_lens, "tokens": tokens, "token_lens": token_lens}

    def prepare(self, train, dev, tokenizer, missing_tokenizer: str):
        """Training and dev sets as this format reads them -> (train, dev, extra units per item)."""
        return train, dev, [0] * len(train)

    # ---- teacher forcing ---------------------------------------------------------------

    def logits(self, model: TextToTokenLM, batch: dict, speech_vectors: torch.Tensor | None = None) -> torch.Tensor:
        """-> (B, S+1, K+1). speech_vectors (B, S, d_fsq): differentiable inputs instead of
        the hard vectors of batch["tokens"]."""
        if speech_vectors is None:
            speech_vectors = model.fsq.indices_to_vectors(batch["tokens"])
        return model(batch["text"], batch["text_lens"], speech_vectors, batch["token_lens"])

    def targets(self, model: TextToTokenLM, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (targets (B, S+1), -100 = none; the position whose target is each token (B, S))."""
        tokens = batch["tokens"]
        positions = torch.arange(tokens.shape[1], device=tokens.device).expand_as(tokens)
        return model.targets(tokens, batch["token_lens"]), positions

    def ce(self, model: TextToTokenLM, logits: torch.Tensor, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (mean cross-entropy over the tokens and <eos>, accuracy)."""
        return model.ce_from_logits(logits, batch["tokens"], batch["token_lens"])

    def training_loss(self, model: TextToTokenLM, batch: dict) -> tuple[torch.Tensor, dict]:
        """The cross-entropy, plus the guided-attention penalty when weighted."""
        ce, log = super().training_loss(model, batch)
        weight = model.cfg.guided_attention_weight
        if weight <= 0:
            return ce, log
        penalty = model.guided_attention_penalty(batch["text_lens"], batch["token_lens"], batch["text"].shape[1])
        log["guided_attn"] = float(penalty.detach())
        return ce + weight * penalty, log

    def token_logits(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        """-> the logits that predict each speech token (B, S, K+1)."""
        return logits[:, : batch["tokens"].shape[1]]

    def n_predicted(self, batch: dict) -> int:
        """The held-out loss's weight of this batch (its speech tokens)."""
        return int(batch["token_lens"].sum())

    # ---- inference -------------------------------------------------------------------

    def context_used(self, n_text: int, n_prompt: int, n_target: int) -> int:
        """Positions taken before the first new token: [text] <sep> [prompt speech]."""
        return n_text + 1 + n_prompt

    def generate(self, model: TextToTokenLM, text_ids: torch.Tensor, prompt_indices: torch.Tensor,
                 fsq: FSQ, sampling: SamplingConfig, max_new_tokens: int, min_new_tokens: int,
                 use_kv_cache: bool, generator: torch.Generator | None, n_target_text: int | None) -> torch.Tensor:
        """text_ids (L,), prompt_indices (P,) -> new tokens (N,); <eos> held off for the
        first min_new_tokens steps."""
        device = model.head.weight.device
        text_ids = text_ids.to(device).view(1, -1)
        prompt_indices = prompt_indices.to(device).view(1, -1)
        L, P = text_ids.shape[1], prompt_indices.shape[1]
        budget = model.cfg.max_len - self.context_used(L, P, 0)
        max_new = max(0, min(max_new_tokens, budget))

        prompt_vec = fsq.indices_to_vectors(prompt_indices).to(model.sep.dtype)
        x, _, positions = model._embed(
            text_ids, torch.tensor([L], device=device), prompt_vec, torch.tensor([P], device=device)
        )
        new: list[int] = []
        cache = None
        seq = x  # full input so far, for the no-cache path
        for step in range(max_new):
            if use_kv_cache:
                if cache is None:
                    h, cache = model.transformer(x, positions=positions[0], use_cache=True)
                else:
                    pos = positions[0, -1:] + step  # continues after the prefill
                    h, cache = model.transformer(x, positions=pos, cache=cache, use_cache=True)
            else:
                h, _ = model.transformer(seq)
            logits = model.head(h[0, -1]).float()
            if step < min_new_tokens:
                logits[model.eos_id] = float("-inf")
            tok = model._pick(logits, new, sampling, generator)
            if tok == model.eos_id:
                break
            new.append(tok)
            vec = fsq.indices_to_vectors(torch.tensor([[tok]], device=device))
            x = model.speech_in(vec.to(model.sep.dtype))  # (1, 1, d)
            seq = torch.cat([seq, x], dim=1)
        return torch.tensor(new, dtype=torch.long, device=device)


class InterleavedFormat(SequenceFormat):
    name = "interleaved"
    aligned = True  # symbols are placed by a CTC alignment
    guided_attention = False  # each symbol re-entering the speech stream is the alignment

    def add_modules(self, model: TextToTokenLM) -> None:
        # A symbol in the speech stream enters with its neighbours (SYMBOL_CONTEXT), so the
        # next sounds are in view without a search through the text prefix.
        model.symbol_in = torch.nn.Linear(len(SYMBOL_CONTEXT) * model.cfg.d_model, model.cfg.d_model)

    def collate(self, items: list[dict], held_out: bool = False) -> dict:
        """Items with text_ids, tokens and starts (AlignedSet) -> a unit batch; training split
        points from the global RNG (so a resumed run draws the same), held-out ones fixed."""
        return collate_interleaved(items, self.end_id, held_out=held_out)

    def from_padded(self, text, text_lens, tokens, token_lens, starts=None, keys=None) -> dict:
        """starts: each item's symbol segment starts (llm/align.py); keys: utterance ids for
        fixed (held-out) split points, None for random ones."""
        if starts is None:
            raise ValueError("the interleaved format needs each item's symbol starts")
        return interleave_padded(text, text_lens, tokens, token_lens, starts, self.end_id, keys=keys)

    def prepare(self, train, dev, tokenizer, missing_tokenizer: str):
        if tokenizer is None:
            raise UserError(missing_tokenizer)
        from .align import align_set

        train, dev = align_set(train, tokenizer), align_set(dev, tokenizer)
        # Each symbol also enters the speech stream once: one more unit per symbol.
        return train, dev, [len(starts) for starts in train.starts]

    def logits(self, model, batch, speech_vectors=None) -> torch.Tensor:
        """-> (B, N, K+1): logits[:, i] predicts the unit after i."""
        return model.forward_units(batch, speech_vectors)

    def targets(self, model, batch) -> tuple[torch.Tensor, torch.Tensor]:
        return batch["targets"], batch["token_unit"] - 1

    def ce(self, model, logits, batch) -> tuple[torch.Tensor, torch.Tensor]:
        return model.ce_units(logits, batch)

    def token_logits(self, logits, batch) -> torch.Tensor:
        """Unit logits (B, N, K+1) -> the logits that predict each speech token (B, T, K+1),
        in token order (a token is predicted by the unit just before it)."""
        index = (batch["token_unit"] - 1).clamp_min(0)[..., None].expand(-1, -1, logits.shape[-1])
        return torch.gather(logits, 1, index)

    def n_predicted(self, batch: dict) -> int:
        return int((batch["targets"] != -100).sum())

    def context_used(self, n_text: int, n_prompt: int, n_target: int) -> int:
        """... then one SYMBOL unit per target symbol."""
        return n_text + 1 + n_prompt + n_target

    def generate(self, model, text_ids, prompt_indices, fsq, sampling, max_new_tokens, min_new_tokens,
                 use_kv_cache, generator, n_target_text) -> torch.Tensor:
        """Speaks the last n_target_text symbols of text_ids (default all) one after another;
        <eos> is each symbol's <end>, held off until the symbol has a token (so
        min_new_tokens is not used), and forced after cfg.max_tokens_per_symbol tokens."""
        n = text_ids.numel() if n_target_text is None else n_target_text
        if not 0 < n <= text_ids.numel():
            raise ValueError(f"n_target_text {n} outside 1..{text_ids.numel()}")
        if tuple(fsq.levels) != tuple(model.fsq.levels):
            raise ValueError(f"interleaved LLM: codebook {tuple(fsq.levels)} is not the model's")
        device = model.head.weight.device
        text = text_ids.to(device).view(1, -1)
        prompt = prompt_indices.to(device).view(-1).tolist()
        L = text.shape[1]
        symbol = L - n
        kinds = [TEXT] * L + [SEP] + [SPEECH] * len(prompt) + [SYMBOL]
        values = text[0].tolist() + [0] + prompt + [symbol]
        x = model._embed_units(text, torch.tensor([kinds], device=device), torch.tensor([values], device=device))
        pos = x.shape[1]
        h, cache = model.transformer(x, positions=torch.arange(pos, device=device), use_cache=True)
        new: list[int] = []
        unit_inputs: dict[tuple[int, int], torch.Tensor] = {}
        in_symbol = 0
        while len(new) < max_new_tokens and pos < model.cfg.max_len:
            if in_symbol >= model.cfg.max_tokens_per_symbol:
                tok = model.eos_id
            else:
                logits = model.head(h[0, -1]).float()
                if in_symbol == 0:
                    logits[model.eos_id] = float("-inf")
                tok = model._pick(logits, new, sampling, generator)
            if tok == model.eos_id:
                symbol += 1
                if symbol >= L:
                    break
                unit, in_symbol = (SYMBOL, symbol), 0
            else:
                new.append(tok)
                unit, in_symbol = (SPEECH, tok), in_symbol + 1
            kinds.append(unit[0])
            values.append(unit[1])
            if use_kv_cache:
                # A unit's input vector depends only on (kind, value) and the text: computed
                # once per generation (the same call, so the same bits as computing it again).
                if unit not in unit_inputs:
                    unit_inputs[unit] = model._embed_units(
                        text, torch.tensor([[unit[0]]], device=device), torch.tensor([[unit[1]]], device=device))
                x = unit_inputs[unit]
                h, cache = model.transformer(x, positions=torch.tensor([pos], device=device), cache=cache, use_cache=True)
            else:  # the whole sequence again (the reference the cache must match)
                x = model._embed_units(text, torch.tensor([kinds], device=device), torch.tensor([values], device=device))
                h, _ = model.transformer(x)
            pos += 1
        return torch.tensor(new, dtype=torch.long, device=device)


FORMATS = {f.name: f for f in (PrefixFormat, InterleavedFormat)}


def sequence_format(alignment: str, end_id: int) -> SequenceFormat:
    """`llm.model.alignment` -> its format object (end_id: the <eos>/<end> class)."""
    if alignment not in FORMATS:
        raise ValueError(f"alignment {alignment!r} is not one of {', '.join(FORMATS)}")
    return FORMATS[alignment](end_id)
