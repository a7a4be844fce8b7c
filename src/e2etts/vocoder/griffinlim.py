"""Griffin-Lim vocoder: the training-free baseline, inverse of `e2etts.audio.log_mel`.

log-mel -> exp -> mel magnitude (power 1, slaney norm and scale, as in audio.log_mel) ->
least-squares inverse mel filterbank (non-negative) -> linear magnitude -> Griffin-Lim phase
reconstruction with the same STFT (n_fft 1024, window 640, hop 160, centered).
Frame rule: T frames -> (T - 1) * hop samples, whose log_mel has exactly T frames again.
"""

from __future__ import annotations

import functools

import torch
import torchaudio

from ..audio import MelConfig

DEFAULT_MEL = MelConfig()  # frozen, so safe as a default argument


@functools.lru_cache(maxsize=4)
def _inverse_mel(cfg: MelConfig) -> torchaudio.transforms.InverseMelScale:
    return torchaudio.transforms.InverseMelScale(
        n_stft=cfg.n_fft // 2 + 1,
        n_mels=cfg.n_mels,
        sample_rate=cfg.sample_rate,
        f_min=cfg.f_min,
        f_max=cfg.f_max,
        norm="slaney",
        mel_scale="slaney",
    )


PHASE_SEED = 0


@torch.no_grad()
def griffin_lim(
    log_mel: torch.Tensor, mel_cfg: MelConfig = DEFAULT_MEL, n_iter: int = 32
) -> torch.Tensor:
    """log_mel (T, n_mels) -> wav (samples,) float32, samples = (T - 1) * hop_length.

    The random phase initialization is drawn from a fixed seed in a forked RNG, so the
    same mel gives the same wav in any process, and the caller's RNG stream is untouched.
    (It drew from the global RNG before: two runs of the pipeline synthesized different
    audio from identical checkpoints.)
    """
    T = log_mel.shape[0]
    mel = torch.exp(log_mel.float()).T  # (n_mels, T), magnitude (power 1)
    spec = _inverse_mel(mel_cfg).to(mel.device)(mel)  # (n_fft/2+1, T), relu'd least squares
    gl = torchaudio.transforms.GriffinLim(
        n_fft=mel_cfg.n_fft,
        n_iter=n_iter,
        win_length=mel_cfg.win_length,
        hop_length=mel_cfg.hop_length,
        power=1.0,
        length=max(T - 1, 0) * mel_cfg.hop_length,
    ).to(mel.device)
    cuda = [mel.device.index or 0] if mel.is_cuda else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(PHASE_SEED)
        return gl(spec)
