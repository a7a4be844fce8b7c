"""SIM judge: cosine similarity of speaker embeddings (16 kHz), loaded once per process.

The embedded judge is resemblyzer's GE2E encoder (weights ship in the PyPI package). No
system here is conditioned on resemblyzer embeddings (voices come from prompt tokens and
prompt mel), so the judge is independent of the systems' inputs.
"""

from __future__ import annotations

import numpy as np


class SIMJudge:
    def __init__(self, backend: str = "resemblyzer"):
        if backend != "resemblyzer":
            from ..errors import UserError

            raise UserError(f"eval.sim_backend={backend!r} is not available (resemblyzer)")
        from resemblyzer import VoiceEncoder

        self.name = "resemblyzer"
        self.encoder = VoiceEncoder(device="cpu", verbose=False)

    def embed(self, wav: np.ndarray) -> np.ndarray:
        """wav: float 16 kHz mono -> unit-norm embedding (256,)."""
        from resemblyzer import preprocess_wav

        wav = np.asarray(wav, dtype=np.float32)
        processed = preprocess_wav(wav, source_sr=16000)
        if processed.size < 1600:  # VAD trimmed nearly everything: embed the raw signal
            processed = wav
        emb = self.encoder.embed_utterance(processed)
        return emb / max(np.linalg.norm(emb), 1e-8)

    def similarity(self, wav_a: np.ndarray, wav_b: np.ndarray) -> float:
        return float(np.dot(self.embed(wav_a), self.embed(wav_b)))
