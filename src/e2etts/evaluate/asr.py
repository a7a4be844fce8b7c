"""WER judge: Whisper through faster-whisper (CTranslate2), loaded once per judge object.

The judge is named by ``eval.asr_model``: a Whisper model shipped inside PyPI packages
(``judge_models.PACKAGED``: ``base``, the default, and ``tiny.en``, the cheap judge of the
learning-curve probes), so nothing is downloaded at run time. ``eval.asr_model_dir`` points
at any other local faster-whisper/CT2 model directory instead (Seed-TTS-Eval uses
Whisper-large-v3). docs/judges.md has the measured choice.

Decoding is deterministic: language "en", greedy (beam 1 by default), temperature 0 with
no fallback, no VAD, no conditioning on previous text, no timestamps. ``batch_size`` > 1
decodes clips in batches (CTranslate2 runs a batch of encoder outputs at once), each clip
getting what faster-whisper's ``WhisperModel.transcribe`` gives it alone (same features,
prompt, suppressed tokens, no-speech rule; a test checks the texts are equal). On the 2-core
CPU it was not faster (docs/judges.md), so the default is 1; it is there for GPUs.

Repetition loops: on babble Whisper sometimes repeats a phrase until its 224-token limit
("the case of the case of ..."), which adds ~220 insertions for one short clip and swamps
a 200-item corpus WER. ``max_tokens_per_second`` caps the decoded length by the clip's
duration (at least ``MIN_TOKEN_CAP`` tokens): real speech in the embedded corpus
transcribes at <= 9.2 Whisper tokens per second (gt and gt_vocoded test lists, session 4),
so a cap of 12 never cuts a real transcript; it bounds what a loop can add. In a batch the
decoder runs to the largest cap, and a clip that decodes past its own cap (a loop, rare)
is decoded again alone, so every clip's text is what its own cap gives.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import numpy as np

from ..errors import UserError
from .judge_models import PACKAGED, packaged_model_dir
from .normalize import NORMALIZER, normalize_for_wer

SAMPLE_RATE = 16000
MIN_TOKEN_CAP = 8  # a 0.3 s clip may still hold a word or two
DEFAULT_MODEL = "base"
# faster-whisper's transcribe() defaults that decide a clip's text (kept equal here so the
# batched path gives the same transcript as the per-clip one).
NO_SPEECH_THRESHOLD = 0.6
LOG_PROB_THRESHOLD = -1.0
MAX_CLIP_S = 30.0  # Whisper's window; a longer clip is decoded alone, window by window


def _as_audio(audio) -> np.ndarray:
    """A wav path (any rate; resampled) or a 16 kHz array/tensor -> float32 (samples,)."""
    if isinstance(audio, (str, os.PathLike)):
        from ..audio import load_wav

        return load_wav(audio, SAMPLE_RATE).numpy()
    if hasattr(audio, "detach"):  # torch tensor
        audio = audio.detach().cpu().numpy()
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    return np.nan_to_num(audio, nan=0.0, posinf=0.0, neginf=0.0)


def resolve_model_dir(model: str | None, model_dir: str | os.PathLike | None) -> tuple[Path, str]:
    """-> (CT2 directory, label): ``model_dir`` when given (checked), else the packaged ``model``."""
    if model_dir:
        path = Path(model_dir).expanduser()
        if not (path / "model.bin").is_file():
            raise UserError(
                f"{path}: not a CTranslate2 Whisper directory (no model.bin); fix "
                "eval.asr_model_dir in params.yaml, or set it to null for the packaged judge "
                f"named by eval.asr_model ({', '.join(sorted(PACKAGED))})"
            )
        return path, path.name
    name = model or DEFAULT_MODEL
    return packaged_model_dir(name), name


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
        model: str | None = DEFAULT_MODEL,
        batch_size: int = 1,
    ):
        if max_tokens_per_second is not None and not max_tokens_per_second > 0:
            raise UserError(
                f"eval.asr_max_tokens_per_second must be positive or null, got {max_tokens_per_second!r}"
            )
        if int(batch_size) < 1:
            raise UserError(f"eval.asr_batch_size must be at least 1, got {batch_size!r}")
        self.max_tokens_per_second = max_tokens_per_second
        self.batch_size = int(batch_size)
        path, label = resolve_model_dir(model, model_dir)
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
        self.normalizer = NORMALIZER
        size = (path / "model.bin").stat().st_size
        # A packaged judge is named by its pinned model file, not by where this checkout
        # installed it: the cached transcripts (tracked in git) then serve every clone, and a
        # clone elsewhere adds no second copy of them. A local directory is named by its path.
        # The batch size is not in the key: batched and per-clip decoding give the same text.
        model_id = path.resolve() if model_dir else f"packaged {label} {PACKAGED[label].sha256[:12]}".rstrip()
        self.cache_key = f"{self.name}|{model_id}|{size}"
        self._decoder = None

    @classmethod
    def from_params(cls, ev: dict, cpu_threads: int = 1, model: str | None = None,
                    beam_size: int | None = None) -> WERJudge:
        """The judge an ``eval`` params section describes (schema-validated, defaults filled);
        ``model`` and ``beam_size`` override it (the learning-curve probes' cheap judge)."""
        return cls(
            model_dir=ev["asr_model_dir"] if model is None else None,
            model=model or ev["asr_model"],
            compute_type=ev["asr_compute_type"],
            beam_size=beam_size or ev["asr_beam_size"],
            cpu_threads=cpu_threads,
            max_tokens_per_second=ev["asr_max_tokens_per_second"],
            batch_size=ev["asr_batch_size"],
        )

    def token_cap(self, n_samples: int) -> int | None:
        """The most Whisper tokens a clip of n_samples (16 kHz) may decode to (None: no cap)."""
        if self.max_tokens_per_second is None:
            return None
        return max(MIN_TOKEN_CAP, math.ceil(self.max_tokens_per_second * n_samples / SAMPLE_RATE))

    def transcribe(self, audio) -> str:
        """audio: a wav path, or a float32 array/tensor of 16 kHz mono samples -> raw text.

        faster-whisper's own per-clip path (the reference the batched path is tested against)."""
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

    def transcribe_batch(self, clips: list) -> list[str]:
        """clips: wav paths or 16 kHz float32 arrays -> raw texts, in order.

        Clips up to 30 s go through the decoder ``batch_size`` at a time (sorted by length, so
        a batch's caps are close); longer ones, and a batch size of 1, use ``transcribe``."""
        samples = [_as_audio(c) for c in clips]
        texts = [""] * len(samples)
        short = []
        for i, s in enumerate(samples):
            if s.size == 0:
                continue
            if self.batch_size == 1 or s.size > MAX_CLIP_S * SAMPLE_RATE:
                texts[i] = self.transcribe(s)
            else:
                short.append(i)
        short.sort(key=lambda i: samples[i].size)
        for start in range(0, len(short), self.batch_size):
            chunk = short[start : start + self.batch_size]
            for i, text in zip(chunk, self._decode([samples[i] for i in chunk]), strict=True):
                texts[i] = text
        return texts

    def _decode(self, batch: list[np.ndarray]) -> list[str]:
        """One batch of clips (each <= 30 s) through the encoder and greedy/beam decoder."""
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_ctranslate2_storage, get_suppressed_tokens

        wm = self.model
        if self._decoder is None:
            tokenizer = Tokenizer(wm.hf_tokenizer, wm.model.is_multilingual, task="transcribe", language="en")
            prompt = wm.get_prompt(tokenizer, [], without_timestamps=True)
            self._decoder = (tokenizer, prompt, get_suppressed_tokens(tokenizer, [-1]))
        tokenizer, prompt, suppressed = self._decoder
        # As transcribe(): features of the whole clip (the last frame dropped), padded to 30 s.
        features = np.stack([pad_or_trim(wm.feature_extractor(s)[..., :-1]) for s in batch])
        encoded = wm.model.encode(get_ctranslate2_storage(features))
        caps = [self.token_cap(s.size) for s in batch]
        max_new = None if None in caps else max(caps)
        max_length = wm.max_length if max_new is None else min(wm.max_length, len(prompt) + max_new)
        results = wm.model.generate(
            encoded,
            [list(prompt) for _ in batch],
            beam_size=self.beam_size,
            patience=1,
            length_penalty=1,
            repetition_penalty=1,
            no_repeat_ngram_size=0,
            max_length=max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=suppressed,
            max_initial_timestamp_index=int(round(1.0 / wm.time_precision)),
        )
        texts = []
        for clip, result, cap in zip(batch, results, caps, strict=True):
            tokens = result.sequences_ids[0]
            if cap is not None and len(tokens) > cap:
                # Ran past its own cap (a repetition loop): its score, and so the no-speech
                # rule, belong to the longer sequence; decode it alone, as faster-whisper would.
                texts.append(self.transcribe(clip))
                continue
            avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
            if result.no_speech_prob > NO_SPEECH_THRESHOLD and not avg_logprob > LOG_PROB_THRESHOLD:
                texts.append("")  # faster-whisper skips the window as silence
                continue
            texts.append(tokenizer.decode(tokens).strip())
        return texts

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
