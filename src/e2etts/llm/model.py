"""Text-to-speech-token language model: a decoder-only transformer (pre-norm, RoPE).

Two sequence formats (cfg.alignment; params.yaml sets `interleaved`, the dataclass default
is `prefix`). `interleaved` re-enters each text symbol in the speech stream before its own
tokens (llm/interleave.py: forward_units, loss_units, and generation that walks every
symbol in order). The `prefix` format:

Sequence per item:  [text ids (L)] <sep> [speech tokens (S)]  -> predicts speech 0..S-1, <eos>.
    position of <sep>      predicts speech token 0
    position of speech j   predicts speech token j+1 (the last one predicts <eos>)
The voice comes from a prompt: at inference the speech part starts with the prompt's tokens.

Speech tokens enter as FSQ code vectors (B, S, d_fsq) through a small MLP, never as an
embedding-table lookup, so straight-through vectors from the tokenizer (joint training) and
expected vectors of Gumbel-softmax samples are differentiable inputs. The output head is
over codebook_size + 1 classes; class K (= codebook_size) is <eos>. <sep> is a learned
vector; <eos> never needs an input embedding (nothing follows it).

Batching: text is *left*-padded internally so that <sep> and the speech part sit at the same
index for every item, and each item gets RoPE positions starting at 0 at its first real
token. Attention is relative, so a padded item sees exactly what it sees unpadded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..fsq import FSQ
from ..nn import Transformer, length_mask
from ..text import VOCAB_SIZE
from .interleave import SEP, SPEECH, SYMBOL, SYMBOL_CONTEXT, TEXT

ALIGNMENTS = ("prefix", "interleaved")


@dataclass
class TextToTokenLMConfig:
    text_vocab_size: int = VOCAB_SIZE
    fsq_levels: tuple[int, ...] = (8, 5, 5, 5)
    d_model: int = 256
    n_layers: int = 6
    n_heads: int = 4
    dropout: float = 0.1
    max_len: int = 1024  # text + 1 + speech tokens (40 s of speech at 25 Hz): generation guard
    text_frontend: str = "chars"  # how text becomes ids (text.encode_text); set from the features
    # Guided attention (Tachibana et al. 2018, DC-TTS): the heads of one layer are pushed,
    # from speech positions, toward text positions near the diagonal (speech progress j/S vs
    # text progress i/L, width sigma). A monotonic-alignment prior for small data; the
    # training loss adds weight * penalty (0 = off); inference is unchanged.
    guided_attention_weight: float = 0.0
    guided_attention_sigma: float = 0.2
    guided_attention_layer: int = 1
    # prefix: [text] <sep> [speech]; interleaved: [text] <sep> [prompt speech] then each
    # target symbol followed by its own speech tokens (ELLA-V-style; llm/interleave.py). The
    # interleaved LLM cannot skip a word: it moves to the next symbol only by emitting <end>.
    alignment: str = "prefix"  # the dataclass default keeps old checkpoints loading as they were
    max_tokens_per_symbol: int = 25  # interleaved inference guard: 1 s on one symbol


class TextToTokenLM(nn.Module):
    def __init__(self, cfg: TextToTokenLMConfig | None = None):
        super().__init__()
        cfg = cfg or TextToTokenLMConfig()
        self.cfg = cfg
        d = cfg.d_model
        self.fsq = FSQ(cfg.fsq_levels)  # no parameters: index <-> vector conversion
        self.codebook_size = self.fsq.codebook_size
        self.eos_id = self.codebook_size
        self.text_emb = nn.Embedding(cfg.text_vocab_size, d)
        self.speech_in = nn.Sequential(nn.Linear(self.fsq.dim, d), nn.GELU(), nn.Linear(d, d))
        self.sep = nn.Parameter(torch.randn(d) * 0.02)
        self.drop = nn.Dropout(cfg.dropout)
        self.transformer = Transformer(d, cfg.n_heads, cfg.n_layers, cfg.dropout, causal=True)
        self.head = nn.Linear(d, self.codebook_size + 1)
        if cfg.alignment not in ALIGNMENTS:
            raise ValueError(f"alignment {cfg.alignment!r} is not one of {', '.join(ALIGNMENTS)}")
        if cfg.alignment == "interleaved":
            # A symbol in the speech stream enters with its neighbours (SYMBOL_CONTEXT), so
            # the next sounds are in view without a search through the text prefix.
            self.symbol_in = nn.Linear(len(SYMBOL_CONTEXT) * d, d)
        if cfg.guided_attention_weight > 0:
            if not 0 <= cfg.guided_attention_layer < cfg.n_layers:
                raise ValueError(
                    f"guided_attention_layer {cfg.guided_attention_layer} outside 0..{cfg.n_layers - 1}"
                )
            self.transformer.blocks[cfg.guided_attention_layer].attn.keep_qk = True

    # ---- teacher forcing -------------------------------------------------------------

    def _embed(
        self,
        text_ids: torch.Tensor,
        text_lens: torch.Tensor,
        speech_vectors: torch.Tensor,
        speech_lens: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> x (B, Lmax+1+S, d), valid (B, Lmax+1+S), positions (B, Lmax+1+S)."""
        B, Lmax = text_ids.shape
        S = speech_vectors.shape[1]
        # Left-pad text: slot p holds text position p - (Lmax - L_b).
        shift = Lmax - text_lens  # (B,)
        slot = torch.arange(Lmax, device=text_ids.device)[None, :]
        src = slot - shift[:, None]
        text_valid = src >= 0
        text = torch.gather(text_ids, 1, src.clamp_min(0)) * text_valid
        t = self.text_emb(text) * text_valid[..., None]
        s = self.speech_in(speech_vectors)
        sep = self.sep.expand(B, 1, -1).to(s.dtype)
        x = torch.cat([t.to(s.dtype), sep, s], dim=1)
        speech_valid = length_mask(speech_lens, S)
        sep_valid = torch.ones(B, 1, dtype=torch.bool, device=x.device)
        valid = torch.cat([text_valid, sep_valid, speech_valid], dim=1)
        positions = torch.arange(Lmax + 1 + S, device=x.device)[None, :] - shift[:, None]
        return x, valid, positions.clamp_min(0)

    def forward(
        self,
        text_ids: torch.Tensor,
        text_lens: torch.Tensor,
        speech_vectors: torch.Tensor,
        speech_lens: torch.Tensor,
    ) -> torch.Tensor:
        """text_ids (B, L) right-padded, text_lens (B,), speech_vectors (B, S, d_fsq),
        speech_lens (B,) -> logits (B, S+1, K+1).

        logits[:, i] predicts speech token i (i < speech_lens) and <eos> at i = speech_lens;
        positions beyond speech_lens are padding.
        """
        x, valid, positions = self._embed(text_ids, text_lens, speech_vectors, speech_lens)
        h, _ = self.transformer(self.drop(x), valid, positions)
        Lmax = text_ids.shape[1]
        return self.head(h[:, Lmax:])  # from <sep> onwards: S + 1 positions

    def guided_attention_penalty(
        self, text_lens: torch.Tensor, speech_lens: torch.Tensor, Lmax: int
    ) -> torch.Tensor:
        """After a forward pass: the mean off-diagonal attention mass of the guided layer.

        Rows are the positions that predict speech token j = 0..S_b (<sep> and the speech
        inputs, <eos> included), progress j / S_b; columns the item's text, progress
        (i + 0.5) / L_b. Attention is renormalized over the text keys, so the penalty asks
        *where* in the text a head looks, not how much; penalty weight
        1 - exp(-(progress difference)^2 / (2 sigma^2)). -> scalar in [0, 1).
        """
        q, k = self.transformer.blocks[self.cfg.guided_attention_layer].attn.last_qk
        S1 = q.shape[2] - Lmax  # S + 1 rows from <sep> on
        scores = q[:, :, Lmax:].float() @ k[:, :, :Lmax].float().transpose(-1, -2) / q.shape[-1] ** 0.5
        slot = torch.arange(Lmax, device=q.device)
        text_pos = slot[None, :] - (Lmax - text_lens)[:, None]  # (B, Lmax); < 0 is padding
        text_valid = text_pos >= 0
        attn = scores.masked_fill(~text_valid[:, None, None, :], float("-inf")).softmax(-1)
        j = torch.arange(S1, device=q.device)[None, :].float()
        row_progress = j / speech_lens[:, None].clamp_min(1).float()  # (B, S+1)
        col_progress = (text_pos.float() + 0.5) / text_lens[:, None].clamp_min(1).float()
        diff = row_progress[:, :, None] - col_progress[:, None, :]  # (B, S+1, Lmax)
        weight = 1 - torch.exp(-(diff**2) / (2 * self.cfg.guided_attention_sigma**2))
        per_row = (attn * weight[:, None]).nan_to_num(0.0).sum(-1)  # (B, H, S+1)
        rows = (j <= speech_lens[:, None]).float()[:, None, :].expand_as(per_row)
        return (per_row * rows).sum() / rows.sum().clamp_min(1.0)

    def targets(self, speech_indices: torch.Tensor, speech_lens: torch.Tensor) -> torch.Tensor:
        """speech_indices (B, S) -> targets (B, S+1): the tokens, <eos> at speech_lens,
        -100 (ignored by cross_entropy) after it."""
        B, S = speech_indices.shape
        tgt = F.pad(speech_indices, (0, 1), value=-100)
        pos = torch.arange(S + 1, device=tgt.device)[None, :]
        tgt = torch.where(pos == speech_lens[:, None], self.eos_id, tgt)
        return torch.where(pos > speech_lens[:, None], -100, tgt)

    def ce_from_logits(
        self, logits: torch.Tensor, speech_indices: torch.Tensor, speech_lens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean cross-entropy over valid speech positions + <eos>, and accuracy (no grad)."""
        return self._ce_and_accuracy(logits, self.targets(speech_indices, speech_lens))

    @staticmethod
    def _ce_and_accuracy(logits: torch.Tensor, tgt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """logits (B, N, C), targets (B, N) with -100 = no target -> (mean cross-entropy,
        accuracy over the positions with a target, no grad)."""
        ce = F.cross_entropy(logits.float().transpose(1, 2), tgt, ignore_index=-100)
        with torch.no_grad():
            keep = tgt != -100
            acc = (logits.argmax(-1) == tgt)[keep].float().mean()
        return ce, acc

    def loss(
        self,
        text_ids: torch.Tensor,
        text_lens: torch.Tensor,
        speech_vectors: torch.Tensor | None,
        speech_lens: torch.Tensor,
        speech_indices: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Next-token loss. speech_vectors (B, S, d_fsq) are the inputs (hard, straight-
        through or soft); None means hard vectors of speech_indices (B, S), the targets.

        -> (cross-entropy, accuracy)."""
        if speech_vectors is None:
            speech_vectors = self.fsq.indices_to_vectors(speech_indices)
        logits = self(text_ids, text_lens, speech_vectors, speech_lens)
        return self.ce_from_logits(logits, speech_indices, speech_lens)

    # ---- interleaved format (llm/interleave.py) -----------------------------------------

    def _embed_units(
        self, text_ids: torch.Tensor, kinds: torch.Tensor, values: torch.Tensor,
        speech_vectors: torch.Tensor | None = None, token_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """text_ids (B, Lmax) right-padded with 0, kinds / values (B, N) -> x (B, N, d).

        speech_vectors (B, T, d_fsq) with token_index (B, N) (which token each SPEECH unit
        holds): differentiable speech inputs (straight-through or soft) instead of the hard
        vectors of the code indices in values."""
        is_text, is_speech, is_symbol = kinds == TEXT, kinds == SPEECH, kinds == SYMBOL
        x = self.text_emb(values * is_text) * is_text[..., None]
        if speech_vectors is None:
            vectors = self.fsq.indices_to_vectors(values * is_speech)
        else:
            index = token_index[..., None].expand(-1, -1, speech_vectors.shape[-1])
            vectors = torch.gather(speech_vectors, 1, index)
        speech = self.speech_in(vectors.to(x.dtype))
        x = x + speech * is_speech[..., None]
        Lmax = text_ids.shape[1]
        offsets = torch.tensor(SYMBOL_CONTEXT, device=kinds.device)
        idx = (values * is_symbol)[..., None] + offsets  # (B, N, C)
        inside = (idx >= 0) & (idx < Lmax)
        rows = text_ids[:, None, :].expand(-1, kinds.shape[1], -1)
        ids = torch.gather(rows, 2, idx.clamp(0, Lmax - 1)) * inside  # out of range -> <pad>
        symbol = self.symbol_in(self.text_emb(ids).flatten(2))
        x = x + symbol * is_symbol[..., None]
        return x + self.sep.to(x.dtype) * (kinds == SEP)[..., None]

    def forward_units(self, batch: dict, speech_vectors: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher forcing on a unit batch (collate_interleaved: right-padded, kind 0 =
        padding) -> logits (B, N, K+1); logits[:, i] predicts the unit after i (a speech
        token or <end>). speech_vectors (B, T, d_fsq): see _embed_units."""
        kinds = batch["kinds"]
        x = self._embed_units(batch["text"], kinds, batch["values"], speech_vectors, batch["token_index"])
        h, _ = self.transformer(self.drop(x), kinds > 0, torch.arange(kinds.shape[1], device=x.device))
        return self.head(h)

    @staticmethod
    def token_logits(logits: torch.Tensor, batch: dict) -> torch.Tensor:
        """Unit logits (B, N, K+1) -> the logits that predict each speech token (B, T, K+1),
        in token order (a token is predicted by the unit just before it)."""
        index = (batch["token_unit"] - 1).clamp_min(0)[..., None].expand(-1, -1, logits.shape[-1])
        return torch.gather(logits, 1, index)

    def ce_units(self, logits: torch.Tensor, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy over every position with a target, and accuracy (no grad)."""
        return self._ce_and_accuracy(logits, batch["targets"])

    def loss_units(self, batch: dict, speech_vectors: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Next-unit loss of the interleaved format -> (cross-entropy, accuracy)."""
        return self.ce_units(self.forward_units(batch, speech_vectors), batch)

    # ---- inference -------------------------------------------------------------------

    @staticmethod
    def _filter(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
        """logits (V,) -> logits with everything outside top-k / the top-p nucleus at -inf."""
        if top_k and top_k > 0:
            kth = torch.topk(logits, min(top_k, logits.numel())).values[-1]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if 0.0 < top_p < 1.0:
            sorted_logits, order = torch.sort(logits, descending=True)
            cum = sorted_logits.softmax(-1).cumsum(-1)
            # Drop a token when the mass before it already reaches top_p (keeps >= 1 token).
            drop_sorted = (cum - sorted_logits.softmax(-1)) >= top_p
            drop = torch.zeros_like(drop_sorted).scatter(0, order, drop_sorted)
            logits = logits.masked_fill(drop, float("-inf"))
        return logits

    @staticmethod
    def _sample(logits: torch.Tensor, generator: torch.Generator | None) -> int:
        probs = logits.float().softmax(-1)
        return int(torch.multinomial(probs, 1, generator=generator))

    def _pick(self, logits, new, temperature, top_k, top_p, repetition_window, repetition_threshold,
              generator) -> int:
        """One sampling step over logits (K+1,) given the tokens generated so far."""
        if temperature <= 0:
            return int(logits.argmax())
        logits = logits / temperature
        tok = self._sample(self._filter(logits, top_k, top_p), generator)
        window = new[-repetition_window:] if repetition_window > 0 else []
        if window and window.count(tok) >= repetition_window * repetition_threshold:
            tok = self._sample(logits, generator)
        return tok

    @torch.no_grad()
    def generate(
        self,
        text_ids: torch.Tensor,
        prompt_indices: torch.Tensor,
        fsq: FSQ | None = None,
        max_new_tokens: int = 500,
        temperature: float = 1.0,
        top_k: int = 25,
        top_p: float = 0.8,
        repetition_window: int = 10,
        repetition_threshold: float = 0.1,
        min_new_tokens: int = 0,
        use_kv_cache: bool = True,
        generator: torch.Generator | None = None,
        n_target_text: int | None = None,
    ) -> torch.Tensor:
        """Sample speech tokens for one item.

        text_ids (L,) long: the prompt's text followed by the text to speak.
        prompt_indices (P,) long (P may be 0): the prompt's speech tokens.
        fsq: the quantizer mapping indices to vectors (default: this model's own, same
        levels). temperature <= 0 means greedy (argmax, no re-sampling).
        Repetition-aware sampling (VALL-E 2 / CosyVoice 2): a token drawn by top-k/top-p that
        already occurs in the last `repetition_window` generated tokens at least
        repetition_window * repetition_threshold times is re-drawn from the full
        (temperature-scaled) distribution, which breaks loops without hurting stability.
        <eos> is suppressed for the first min_new_tokens steps. Generation stops at <eos>,
        after max_new_tokens, or when the sequence would exceed cfg.max_len.

        Interleaved models (cfg.alignment) speak the last n_target_text symbols of text_ids
        (default: all of them) one after another; <eos> is their <end>, so min_new_tokens is
        not used (every symbol gets at least one token) and no symbol may hold more than
        cfg.max_tokens_per_symbol tokens.

        -> new token indices (N,) long, <eos> excluded. Runs in eval mode (no dropout).
        """
        was_training = self.training
        self.eval()
        try:
            if self.cfg.alignment == "interleaved":
                n = text_ids.numel() if n_target_text is None else n_target_text
                if not 0 < n <= text_ids.numel():
                    raise ValueError(f"n_target_text {n} outside 1..{text_ids.numel()}")
                return self._generate_interleaved(
                    text_ids, prompt_indices, n, fsq or self.fsq, max_new_tokens, temperature,
                    top_k, top_p, repetition_window, repetition_threshold, generator, use_kv_cache,
                )
            return self._generate(
                text_ids,
                prompt_indices,
                fsq or self.fsq,
                max_new_tokens,
                temperature,
                top_k,
                top_p,
                repetition_window,
                repetition_threshold,
                min_new_tokens,
                use_kv_cache,
                generator,
            )
        finally:
            self.train(was_training)

    def _generate(
        self,
        text_ids,
        prompt_indices,
        fsq,
        max_new_tokens,
        temperature,
        top_k,
        top_p,
        repetition_window,
        repetition_threshold,
        min_new_tokens,
        use_kv_cache,
        generator,
    ) -> torch.Tensor:
        device = self.head.weight.device
        text_ids = text_ids.to(device).view(1, -1)
        prompt_indices = prompt_indices.to(device).view(1, -1)
        L, P = text_ids.shape[1], prompt_indices.shape[1]
        budget = self.cfg.max_len - (L + 1 + P)
        max_new = max(0, min(max_new_tokens, budget))

        prompt_vec = fsq.indices_to_vectors(prompt_indices).to(self.sep.dtype)
        x, _, positions = self._embed(
            text_ids, torch.tensor([L], device=device), prompt_vec, torch.tensor([P], device=device)
        )
        new: list[int] = []
        cache = None
        seq = x  # full input so far, for the no-cache path
        for step in range(max_new):
            if use_kv_cache:
                if cache is None:
                    h, cache = self.transformer(x, positions=positions[0], use_cache=True)
                else:
                    pos = positions[0, -1:] + step  # continues after the prefill
                    h, cache = self.transformer(x, positions=pos, cache=cache, use_cache=True)
            else:
                h, _ = self.transformer(seq)
            logits = self.head(h[0, -1]).float()
            if step < min_new_tokens:
                logits[self.eos_id] = float("-inf")
            tok = self._pick(logits, new, temperature, top_k, top_p, repetition_window,
                             repetition_threshold, generator)
            if tok == self.eos_id:
                break
            new.append(tok)
            vec = fsq.indices_to_vectors(torch.tensor([[tok]], device=device))
            x = self.speech_in(vec.to(self.sep.dtype))  # (1, 1, d)
            seq = torch.cat([seq, x], dim=1)
        return torch.tensor(new, dtype=torch.long, device=device)

    def _generate_interleaved(
        self, text_ids, prompt_indices, n_target_text, fsq, max_new_tokens, temperature, top_k,
        top_p, repetition_window, repetition_threshold, generator, use_kv_cache=True,
    ) -> torch.Tensor:
        if tuple(fsq.levels) != tuple(self.fsq.levels):
            raise ValueError(f"interleaved LLM: codebook {tuple(fsq.levels)} is not the model's")
        device = self.head.weight.device
        text = text_ids.to(device).view(1, -1)
        prompt = prompt_indices.to(device).view(-1).tolist()
        L = text.shape[1]
        symbol = L - n_target_text
        kinds = [TEXT] * L + [SEP] + [SPEECH] * len(prompt) + [SYMBOL]
        values = text[0].tolist() + [0] + prompt + [symbol]
        x = self._embed_units(text, torch.tensor([kinds], device=device), torch.tensor([values], device=device))
        pos = x.shape[1]
        h, cache = self.transformer(x, positions=torch.arange(pos, device=device), use_cache=True)
        new: list[int] = []
        in_symbol = 0
        while len(new) < max_new_tokens and pos < self.cfg.max_len:
            if in_symbol >= self.cfg.max_tokens_per_symbol:
                tok = self.eos_id
            else:
                logits = self.head(h[0, -1]).float()
                if in_symbol == 0:
                    logits[self.eos_id] = float("-inf")
                tok = self._pick(logits, new, temperature, top_k, top_p, repetition_window,
                                 repetition_threshold, generator)
            if tok == self.eos_id:
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
                x = self._embed_units(text, torch.tensor([[unit[0]]], device=device), torch.tensor([[unit[1]]], device=device))
                h, cache = self.transformer(x, positions=torch.tensor([pos], device=device), cache=cache, use_cache=True)
            else:  # the whole sequence again (the reference the cache must match)
                x = self._embed_units(text, torch.tensor([kinds], device=device), torch.tensor([values], device=device))
                h, _ = self.transformer(x)
            pos += 1
        return torch.tensor(new, dtype=torch.long, device=device)


def load_llm(path: str | Path) -> TextToTokenLM:
    from ..checkpoint import load_model

    model, _ = load_model(path, "llm", TextToTokenLM, TextToTokenLMConfig)
    return model
