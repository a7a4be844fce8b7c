"""SIM judge: cosine similarity of speaker embeddings of 16 kHz audio.

Backends are registered by name (``eval.sim_backend``). The embedded one is resemblyzer's
GE2E encoder, whose weights ship inside the PyPI package. A real-scale backend (e.g. a
WavLM speaker-verification model from a local path) is added with ``register_backend``.

No system in this project is conditioned on resemblyzer embeddings (the voice comes from
the prompt tokens and prompt mel), so the judge is not also a training input (docs/evaluation.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from ..errors import UserError

SAMPLE_RATE = 16000


class SpeakerEncoder:
    """A backend: ``embed(wav)`` maps float32 16 kHz mono samples to a vector."""

    name = "base"

    def embed(self, wav: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


class ResemblyzerEncoder(SpeakerEncoder):
    """resemblyzer VoiceEncoder (GE2E, 256-d), on CPU.

    resemblyzer works at 16 kHz (its ``hparams.sampling_rate``), normalizes the volume to
    -30 dBFS and trims silences longer than ~180 ms with webrtcvad before embedding. Our
    input is already 16 kHz, so ``preprocess_wav`` is told no source rate (no resampling);
    the samples are clipped to [-1, 1] first, since its VAD converts them to int16.
    """

    name = "resemblyzer"

    def __init__(self):
        import warnings

        import torch

        with warnings.catch_warnings():  # resemblyzer imports a deprecated scipy namespace
            warnings.simplefilter("ignore", DeprecationWarning)
            from resemblyzer import VoiceEncoder, hparams, preprocess_wav

        self._preprocess = preprocess_wav

        if hparams.sampling_rate != SAMPLE_RATE:  # pragma: no cover - guards a library change
            raise UserError(
                f"resemblyzer expects {hparams.sampling_rate} Hz; this judge feeds {SAMPLE_RATE} Hz"
            )
        self._encoder = VoiceEncoder(device=torch.device("cpu"), verbose=False)

    def embed(self, wav: np.ndarray) -> np.ndarray:
        wav = np.clip(wav, -1.0, 1.0)
        if wav.size == 0 or float(np.abs(wav).max()) < 1e-6:
            # Digital silence: its volume normalization would divide by zero (NaN).
            trimmed = wav
        else:
            trimmed = self._preprocess(wav, source_sr=None)
        # The VAD can remove almost everything from very short or odd audio (a synthesis
        # failure, a click); fall back to the untrimmed, volume-normalized signal.
        if trimmed.size < SAMPLE_RATE // 4:
            peak = float(np.abs(wav).max()) if wav.size else 0.0
            trimmed = wav / peak * 0.5 if peak > 0 else wav
        if trimmed.size < SAMPLE_RATE // 10:  # embed_utterance needs some frames: pad
            trimmed = np.pad(trimmed, (0, SAMPLE_RATE // 10 - trimmed.size))
        return np.asarray(
            self._encoder.embed_utterance(trimmed.astype(np.float32)), dtype=np.float32
        )


_BACKENDS: dict[str, Callable[[], SpeakerEncoder]] = {"resemblyzer": ResemblyzerEncoder}


def register_backend(name: str, factory: Callable[[], SpeakerEncoder]) -> None:
    """Make ``SIMJudge(backend=name)`` use ``factory()`` as its encoder."""
    _BACKENDS[name] = factory


def available_backends() -> list[str]:
    return sorted(_BACKENDS)


def _as_audio(wav) -> np.ndarray:
    if isinstance(wav, (str, os.PathLike)):
        from ..audio import load_wav

        return load_wav(wav, SAMPLE_RATE).numpy()
    if hasattr(wav, "detach"):
        wav = wav.detach().cpu().numpy()
    wav = np.asarray(wav, dtype=np.float32).reshape(-1)
    return np.nan_to_num(wav, nan=0.0, posinf=0.0, neginf=0.0)


class SIMJudge:
    """Speaker similarity judge; the encoder is loaded once, on CPU."""

    def __init__(self, backend: str = "resemblyzer"):
        if backend not in _BACKENDS:
            raise UserError(
                f"eval.sim_backend={backend!r} is not a known speaker encoder; "
                f"available: {', '.join(available_backends())}"
            )
        self.encoder = _BACKENDS[backend]()
        self.backend = backend
        self.name = getattr(self.encoder, "name", backend)

    def embed(self, wav) -> np.ndarray:
        """wav: 16 kHz mono float samples (array/tensor) or a wav path -> unit vector (dim,)."""
        emb = np.asarray(self.encoder.embed(_as_audio(wav)), dtype=np.float64).reshape(-1)
        norm = float(np.linalg.norm(emb))
        return emb / norm if norm > 0 else emb

    @staticmethod
    def cosine(emb_a: np.ndarray, emb_b: np.ndarray) -> float:
        """Cosine of two unit vectors from ``embed``."""
        return float(np.clip(np.dot(emb_a, emb_b), -1.0, 1.0))

    def similarity(self, wav_a, wav_b) -> float:
        """Cosine similarity of the two recordings' speaker embeddings, in [-1, 1]."""
        return self.cosine(self.embed(wav_a), self.embed(wav_b))
