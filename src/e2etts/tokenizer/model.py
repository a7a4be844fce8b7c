"""Supervised semantic speech tokenizer (S3-style): log-mel -> FSQ tokens at 25 Hz.

mel (B, T, 80) -> per-bin normalization -> conv1d subsampling x4 -> transformer encoder
-> Linear to fsq dim -> FSQ (straight-through) -> Linear -> transformer encoder
-> CTC head over the text vocabulary (blank = 0).

Token length rule (the LLM, flow matching and reward model depend on it):
    token_lens = ceil(mel_lens / 4)
The model right-pads the mel to a multiple of 4 frames internally, so T' = ceil(T / 4).
Flow matching reconstructs 4 * token_lens frames; the last (4 - mel_lens % 4) % 4 of them
lie beyond the real mel and are excluded from its loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..fsq import FSQ
from ..nn import MelNormalizer, Transformer, ctc_greedy_decode, ctc_loss, length_mask
from ..text import VOCAB_SIZE

SUBSAMPLE = 4


def token_lengths(mel_lens: torch.Tensor) -> torch.Tensor:
    """mel frames (B,) -> token count (B,) = ceil(mel_lens / 4)."""
    return torch.div(mel_lens + SUBSAMPLE - 1, SUBSAMPLE, rounding_mode="floor")


@dataclass
class SpeechTokenizerConfig:
    n_mels: int = 80
    d_model: int = 256
    n_heads: int = 4
    encoder_layers: int = 4  # before the quantizer
    decoder_layers: int = 2  # after the quantizer, feeding the recognition head
    fsq_levels: tuple[int, ...] = (8, 5, 5, 5)  # 1000 codes, dim 4
    text_vocab_size: int = VOCAB_SIZE
    dropout: float = 0.1


class SpeechTokenizer(nn.Module):
    def __init__(self, cfg: SpeechTokenizerConfig | None = None):
        super().__init__()
        cfg = cfg or SpeechTokenizerConfig()
        self.cfg = cfg
        d = cfg.d_model
        self.norm = MelNormalizer(cfg.n_mels)
        # Two stride-2 convs (k=3, p=1): T -> ceil(T/2) -> ceil(T/4); on a multiple of 4
        # the output length is exactly T/4, frame i covering mel frames 4i..4i+3 (+ context).
        self.subsample = nn.Sequential(
            nn.Conv1d(cfg.n_mels, d, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv1d(d, d, 3, stride=2, padding=1),
            nn.GELU(),
        )
        self.encoder = Transformer(d, cfg.n_heads, cfg.encoder_layers, cfg.dropout)
        self.fsq = FSQ(cfg.fsq_levels)
        self.pre_q = nn.Linear(d, self.fsq.dim)
        self.post_q = nn.Linear(self.fsq.dim, d)
        self.decoder = Transformer(d, cfg.n_heads, cfg.decoder_layers, cfg.dropout)
        self.ctc_head = nn.Linear(d, cfg.text_vocab_size)

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-bin log-mel statistics (n_mels,) of the training set."""
        self.norm.set_normalization(mean, std)

    def encode(
        self, mel: torch.Tensor, mel_lens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """mel (B, T, n_mels), mel_lens (B,) -> (vectors (B, T', d_fsq) straight-through,
        indices (B, T') long, token_lens (B,)), T' = ceil(T / 4).

        Padded token positions hold arbitrary codes; use token_lens.
        """
        latent, token_lens = self.encode_latent(mel, mel_lens)
        vectors, indices = self.fsq(latent)
        return vectors, indices, token_lens

    def encode_latent(self, mel: torch.Tensor, mel_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """mel (B, T, n_mels), mel_lens (B,) -> (latent (B, T', d_fsq) before FSQ, token_lens
        (B,)): encode without the quantizer, for callers that quantize themselves."""
        B, T, _ = mel.shape
        valid = length_mask(mel_lens, T)
        # Zero padding (in normalized space = the mean) so it does not leak through the convs.
        x = self.norm.normalize(mel) * valid[..., None]
        x = F.pad(x, (0, 0, 0, (-T) % SUBSAMPLE))
        x = self.subsample(x.transpose(1, 2)).transpose(1, 2)  # (B, T', d)
        token_lens = token_lengths(mel_lens)
        tvalid = length_mask(token_lens, x.shape[1])
        x, _ = self.encoder(x, tvalid)
        return self.pre_q(x), token_lens

    def forward(self, mel: torch.Tensor, mel_lens: torch.Tensor) -> dict[str, torch.Tensor]:
        """-> dict(vectors (B, T', d_fsq), indices (B, T'), token_lens (B,),
        ctc_logits (B, T', text_vocab_size))."""
        vectors, indices, token_lens = self.encode(mel, mel_lens)
        return {
            "vectors": vectors,
            "indices": indices,
            "token_lens": token_lens,
            "ctc_logits": self.recognize(vectors, token_lens),
        }

    def recognize(self, vectors: torch.Tensor, token_lens: torch.Tensor) -> torch.Tensor:
        """Code vectors (B, T', d_fsq) -> CTC logits (B, T', text_vocab_size): the
        recognition head alone, so tokens from elsewhere (an LLM) can be read too."""
        h, _ = self.decoder(self.post_q(vectors), length_mask(token_lens, vectors.shape[1]))
        return self.ctc_head(h)

    def ctc_loss(
        self, out: dict[str, torch.Tensor], text_ids: torch.Tensor, text_lens: torch.Tensor
    ) -> torch.Tensor:
        """CTC over characters (blank 0); text_ids (B, L) padded with 0, text_lens (B,)."""
        return ctc_loss(out["ctc_logits"], out["token_lens"], text_ids, text_lens)

    def greedy_ctc_decode(self, out: dict[str, torch.Tensor]) -> list[list[int]]:
        """-> per item, the recognized text ids (blanks and repeats removed)."""
        return ctc_greedy_decode(out["ctc_logits"], out["token_lens"])


def load_tokenizer(path: str | Path) -> SpeechTokenizer:
    from ..checkpoint import load_model

    model, _ = load_model(path, "tokenizer", SpeechTokenizer, SpeechTokenizerConfig)
    return model
