"""Vocos-style neural vocoder (Siuzdak 2023): log-mel -> ConvNeXt backbone -> iSTFT head.

The head predicts, per mel frame, a log-magnitude and a phase for every bin of an STFT
with n_fft = win = 640 and hop = 160 (the mel hop), so one mel frame = one STFT frame and
no upsampling layers are needed. Trained without a discriminator (CPU budget) on a
multi-resolution STFT loss (spectral convergence + log-magnitude L1) plus an L1 between the
log-mel of the output and the input log-mel.

Frame rule (matches e2etts.audio.log_mel, centered STFT, frames = samples // 160 + 1):
    T mel frames -> (T - 1) * 160 samples, and log_mel of that wav has exactly T frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..audio import MelConfig, log_mel
from ..nn import MelNormalizer, length_mask


@dataclass
class VocosConfig:
    n_mels: int = 80
    dim: int = 256
    intermediate_dim: int = 768
    n_layers: int = 6
    n_fft: int = 640
    hop_length: int = 160  # must equal the mel hop
    mel_loss_weight: float = 1.0
    # (n_fft, hop, win) of the multi-resolution STFT loss
    stft_resolutions: tuple[tuple[int, int, int], ...] = (
        (256, 64, 256),
        (512, 128, 512),
        (1024, 256, 1024),
    )


class ConvNeXtBlock(nn.Module):
    """Depthwise conv (k=7) -> LN -> pointwise MLP -> layer scale, residual. x (B, C, T)."""

    def __init__(self, dim: int, intermediate_dim: int, layer_scale: float):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.pw1 = nn.Linear(dim, intermediate_dim)
        self.pw2 = nn.Linear(intermediate_dim, dim)
        # Small layer scale keeps the deep residual stack near identity at init.
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dwconv(x).transpose(1, 2)
        h = self.pw2(F.gelu(self.pw1(self.norm(h))))
        return x + (self.gamma * h).transpose(1, 2)


def _stft_mag(wav: torch.Tensor, n_fft: int, hop: int, win: int) -> torch.Tensor:
    spec = torch.stft(
        wav,
        n_fft,
        hop,
        win,
        window=torch.hann_window(win, device=wav.device),
        center=True,
        return_complex=True,
    )
    # sqrt(re^2 + im^2 + floor) instead of .abs(): finite gradient at exact zeros.
    return torch.view_as_real(spec).pow(2).sum(-1).clamp_min(1e-10).sqrt()


class VocosVocoder(nn.Module):
    def __init__(self, cfg: VocosConfig | None = None):
        super().__init__()
        cfg = cfg or VocosConfig()
        self.cfg = cfg
        self.norm = MelNormalizer(cfg.n_mels)
        self.embed = nn.Conv1d(cfg.n_mels, cfg.dim, 7, padding=3)
        self.in_norm = nn.LayerNorm(cfg.dim)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(cfg.dim, cfg.intermediate_dim, 1.0 / cfg.n_layers)
            for _ in range(cfg.n_layers)
        )
        self.out_norm = nn.LayerNorm(cfg.dim)
        self.n_bins = cfg.n_fft // 2 + 1
        self.head = nn.Linear(cfg.dim, 2 * self.n_bins)
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-bin log-mel statistics (n_mels,) of the training set (input scaling only)."""
        self.norm.set_normalization(mean, std)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel (B, T, n_mels) log-mel -> wav (B, (T - 1) * hop)."""
        T = mel.shape[1]
        x = self.embed(self.norm.normalize(mel).transpose(1, 2))
        x = self.in_norm(x.transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        h = self.head(self.out_norm(x.transpose(1, 2)))  # (B, T, 2 * bins)
        log_mag, phase = h.float().chunk(2, dim=-1)
        # Clamp: exp of an unbounded output can overflow early in training.
        mag = torch.exp(log_mag.clamp(max=6.0))
        spec = torch.complex(mag * torch.cos(phase), mag * torch.sin(phase)).transpose(1, 2)
        return torch.istft(
            spec,
            self.cfg.n_fft,
            self.cfg.hop_length,
            self.cfg.n_fft,
            window=self.window,
            center=True,
            length=(T - 1) * self.cfg.hop_length,
        )

    def loss(
        self,
        mel: torch.Tensor,
        wav: torch.Tensor,
        mel_lens: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """mel (B, T, n_mels) log-mel of wav (B, samples >= (T - 1) * hop); mel_lens (B,)
        optional for padded batches (samples beyond (len - 1) * hop are masked).

        -> (total, dict(sc, log_mag, mel_l1) detached). total = mean over resolutions of
        (spectral convergence + log-magnitude L1) + mel_loss_weight * mel L1.
        """
        B, T, _ = mel.shape
        hop = self.cfg.hop_length
        n = (T - 1) * hop
        target = wav[:, :n]
        if target.shape[1] < n:
            target = F.pad(target, (0, n - target.shape[1]))
        pred = self(mel)
        if mel_lens is not None:
            smask = length_mask((mel_lens - 1).clamp_min(0) * hop, n).to(pred.dtype)
            pred, target = pred * smask, target * smask
            fmask = length_mask(mel_lens, T)[..., None].to(pred.dtype)
        else:
            fmask = torch.ones(B, T, 1, device=mel.device)

        sc, lm = 0.0, 0.0
        for n_fft, h, w in self.cfg.stft_resolutions:
            P, Y = _stft_mag(pred, n_fft, h, w), _stft_mag(target, n_fft, h, w)
            sc = sc + torch.linalg.norm(Y - P) / torch.linalg.norm(Y).clamp_min(1e-5)
            lm = lm + F.l1_loss(torch.log(P.clamp_min(1e-5)), torch.log(Y.clamp_min(1e-5)))
        k = len(self.cfg.stft_resolutions)
        sc, lm = sc / k, lm / k

        mel_hat = log_mel(pred, MelConfig(n_mels=self.cfg.n_mels, hop_length=hop))
        mel_l1 = ((mel_hat - mel).abs() * fmask).sum() / (fmask.sum() * self.cfg.n_mels)
        total = sc + lm + self.cfg.mel_loss_weight * mel_l1
        return total, {"sc": sc.detach(), "log_mag": lm.detach(), "mel_l1": mel_l1.detach()}


def load_vocoder(path: str | Path) -> VocosVocoder:
    from ..checkpoint import load_model

    model, _ = load_model(path, "vocoder", VocosVocoder, VocosConfig)
    return model
