"""The one audio I/O and feature module: wav read/write (soundfile) and log-mel.

Everything downstream assumes mono 16 kHz float32 audio and 80-bin log-mel with a 10 ms hop.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import torch
import torchaudio

from .atomic import atomic_path
from .errors import DataError


@dataclass(frozen=True)
class MelConfig:
    sample_rate: int = 16000
    n_fft: int = 1024
    win_length: int = 640
    hop_length: int = 160
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float = 8000.0
    log_floor: float = 1e-5


def load_wav(path: str | os.PathLike, sample_rate: int = 16000) -> torch.Tensor:
    """Read a wav, downmix to mono and resample.

    Returns: wav (samples,) float32 in [-1, 1]. Raises DataError naming the file and the reason.
    """
    path = str(path)
    if not os.path.exists(path):
        raise DataError(path, "file does not exist (check the path in the manifest or metadata)")
    if os.path.getsize(path) == 0:
        raise DataError(path, "file is empty (0 bytes); re-export or remove it")
    try:
        data, sr = sf.read(path, dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises several types for undecodable input
        raise DataError(path, f"cannot decode audio ({exc}); is it a valid wav/flac?") from None
    if data.shape[0] == 0:
        raise DataError(path, "audio has no samples")
    wav = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1)))
    if sr != sample_rate:
        wav = torchaudio.functional.resample(wav, sr, sample_rate)
    return wav


def save_wav(path: str | os.PathLike, wav: torch.Tensor | np.ndarray, sample_rate: int = 16000) -> None:
    """Write a mono float wav as 16-bit PCM, atomically."""
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().cpu().float().numpy()
    wav = np.clip(np.asarray(wav, dtype=np.float32).reshape(-1), -1.0, 1.0)
    with atomic_path(path, suffix=".wav") as tmp:
        sf.write(str(tmp), wav, sample_rate, subtype="PCM_16", format="WAV")


@functools.lru_cache(maxsize=4)
def _mel_transform(cfg: MelConfig) -> torchaudio.transforms.MelSpectrogram:
    # Built outside inference mode: the cached filterbank is reused by training code
    # (vocoder mel loss), where inference tensors cannot enter autograd.
    with torch.inference_mode(False):
        return _build_mel_transform(cfg)


def _build_mel_transform(cfg: MelConfig) -> torchaudio.transforms.MelSpectrogram:
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=cfg.sample_rate,
        n_fft=cfg.n_fft,
        win_length=cfg.win_length,
        hop_length=cfg.hop_length,
        f_min=cfg.f_min,
        f_max=cfg.f_max,
        n_mels=cfg.n_mels,
        power=1.0,
        center=True,
        norm="slaney",
        mel_scale="slaney",
    )


def log_mel(wav: torch.Tensor, cfg: MelConfig = MelConfig()) -> torch.Tensor:
    """wav: (samples,) or (batch, samples) -> log-mel (frames, n_mels) or (batch, frames, n_mels).

    frames = samples // hop_length + 1 (centered STFT).
    """
    mel = _mel_transform(cfg).to(wav.device)(wav.float())
    return torch.log(torch.clamp(mel, min=cfg.log_floor)).transpose(-1, -2).contiguous()
