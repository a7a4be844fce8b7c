"""Text-to-speech-token language model: a decoder-only transformer (pre-norm, RoPE).

Two sequence formats (cfg.alignment; params.yaml sets `interleaved`, the dataclass default
is `prefix`), each one object in llm/formats.py (batches, losses, generation), kept by the
model as `model.format`; this module has the network's forward passes for both.
`interleaved` re-enters each text symbol in the speech stream before its own tokens
(llm/interleave.py; `_embed_units`, `forward_units`). The `prefix` format:

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
from .formats import sequence_format
from .interleave import SEP, SPEECH, SYMBOL, SYMBOL_CONTEXT, TEXT


@dataclass(frozen=True)
class SamplingConfig:
    """How generate() draws each token. temperature <= 0 is greedy (argmax, no re-drawing).
    Repetition-aware sampling (VALL-E 2 / CosyVoice 2): a token drawn by top-k / top-p that
    already occurs in the last `repetition_window` generated tokens at least
    repetition_window * repetition_threshold times is re-drawn from the full
    (temperature-scaled) distribution, which breaks loops without hurting stability."""

    temperature: float = 1.0
    top_k: int = 25
    top_p: float = 0.8
    repetition_window: int = 10
    repetition_threshold: float = 0.1


@dataclass
class TextToTokenLMConfig:
    text_vocab_size: int = VOCAB_SIZE
    fsq_levels: tuple[int, ...] = (8, 5, 5, 5)
    d_model: int = 256
    n_layers: int = 6
    n_heads: int = 4
    dropout: float = 0.1
    # Dropout on the attention probabilities; None: `dropout` (nn.Transformer).
    attention_dropout: float | None = None
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
        self.transformer = Transformer(d, cfg.n_heads, cfg.n_layers, cfg.dropout, causal=True,
                                       attention_dropout=cfg.attention_dropout)
        self.head = nn.Linear(d, self.codebook_size + 1)
        # The sequence format (llm/formats.py), chosen once: batches, losses, generation.
        self.format = sequence_format(cfg.alignment, self.eos_id)
        self.format.add_modules(self)
        if cfg.guided_attention_weight > 0:
            if not self.format.guided_attention:
                raise ValueError(f"guided_attention_weight > 0: the {cfg.alignment} format has no guided "
                                 "attention (its symbols re-enter the speech stream); set it to 0")
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
        if logits.is_cuda:
            # The same mean over flat positions: CUDA's 2-D NLL kernel has no deterministic
            # implementation (train.deterministic refuses it); the CPU keeps the 2-D call,
            # whose bits the committed checkpoints were trained with.
            ce = F.cross_entropy(logits.float().flatten(0, 1), tgt.flatten(), ignore_index=-100)
        else:
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

    def _pick(self, logits: torch.Tensor, new: list[int], sampling: SamplingConfig,
              generator: torch.Generator | None) -> int:
        """One sampling step over logits (K+1,) given the tokens generated so far."""
        if sampling.temperature <= 0:
            return int(logits.argmax())
        logits = logits / sampling.temperature
        tok = self._sample(self._filter(logits, sampling.top_k, sampling.top_p), generator)
        window = new[-sampling.repetition_window:] if sampling.repetition_window > 0 else []
        if window and window.count(tok) >= sampling.repetition_window * sampling.repetition_threshold:
            tok = self._sample(logits, generator)
        return tok

    # inference_mode rather than no_grad: a cached decoding step is ~100 small operations, and
    # it skips their autograd bookkeeping (view and version tracking); the same bits.
    @torch.inference_mode()
    def generate(
        self,
        text_ids: torch.Tensor,
        prompt_indices: torch.Tensor,
        sampling: SamplingConfig = SamplingConfig(),
        *,
        fsq: FSQ | None = None,
        max_new_tokens: int = 500,
        min_new_tokens: int = 0,
        use_kv_cache: bool = True,
        generator: torch.Generator | None = None,
        n_target_text: int | None = None,
    ) -> torch.Tensor:
        """Sample speech tokens for one item (the format's generation, llm/formats.py).

        text_ids (L,) long: the prompt's text followed by the text to speak.
        prompt_indices (P,) long (P may be 0): the prompt's speech tokens.
        fsq: the quantizer mapping indices to vectors (default: this model's own, same
        levels). <eos> is suppressed for the first min_new_tokens steps (prefix format).
        Generation stops at <eos>, after max_new_tokens, or when the sequence would exceed
        cfg.max_len.

        Interleaved models speak the last n_target_text symbols of text_ids (default: all of
        them) one after another; <eos> is their <end>, so min_new_tokens is not used (every
        symbol gets at least one token) and no symbol may hold more than
        cfg.max_tokens_per_symbol tokens.

        -> new token indices (N,) long, <eos> excluded. Runs in eval mode (no dropout).
        """
        was_training = self.training
        self.eval()
        try:
            return self.format.generate(self, text_ids, prompt_indices, fsq or self.fsq, sampling,
                                        max_new_tokens, min_new_tokens, use_kv_cache, generator, n_target_text)
        finally:
            self.train(was_training)


def load_llm(path: str | Path) -> TextToTokenLM:
    from ..checkpoint import load_model

    model, _ = load_model(path, "llm", TextToTokenLM, TextToTokenLMConfig)
    return model
