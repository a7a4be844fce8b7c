"""Synthesize the embedded corpus with flite + sox, in parallel and resumably.

Each wav is named after its utterance and a short hash of (text, speaker spec), so a
rerun reuses exactly the files whose text and voice are unchanged. Final files are
written atomically (temporary name, then rename): a file at its final path is complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import tempfile
import time
from multiprocessing.pool import ThreadPool
from pathlib import Path

import pandas as pd
import soundfile as sf

from ..atomic import atomic_path
from ..errors import UserError
from .voices import BASE_VOICES, SpeakerSpec

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
COMMAND_TIMEOUT_S = 120


class SynthesisError(UserError):
    """flite or sox failed; the message names the utterance, the command and its stderr."""


def _run(cmd: list[str]) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    except FileNotFoundError:
        raise SynthesisError(
            f"`{cmd[0]}` not found: install the Debian packages flite and sox"
        ) from None
    except subprocess.TimeoutExpired:
        raise SynthesisError(f"`{' '.join(cmd)}` timed out after {COMMAND_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        stderr = proc.stderr.strip() or "(no stderr)"
        raise SynthesisError(f"`{' '.join(cmd)}` exited with {proc.returncode}: {stderr}")


def synthesize_utterance(text: str, spec: SpeakerSpec, out_wav: str | os.PathLike) -> float:
    """Speak ``text`` with ``spec`` into ``out_wav`` (16 kHz mono 16-bit PCM).

    Returns the duration in seconds. Raises SynthesisError with the failing command's stderr.
    """
    if spec.base_voice not in BASE_VOICES and not Path(spec.base_voice).is_file():
        # flite silently falls back to its default voice for an unknown name.
        raise SynthesisError(
            f"unknown flite voice {spec.base_voice!r} (known: {sorted(BASE_VOICES)}, or a .flitevox path)"
        )
    out_wav = Path(out_wav)
    out_wav.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".synth.", dir=out_wav.parent) as tmp:
        text_file = Path(tmp) / "text.txt"
        raw_wav = Path(tmp) / "flite.wav"
        # Text goes through a file: no argument parsing of text that starts with '-'.
        text_file.write_text(text + "\n")
        _run(
            [
                "flite",
                "-voice",
                spec.base_voice,
                *spec.flite_args(),
                "-f",
                str(text_file),
                "-o",
                str(raw_wav),
            ]
        )
        if not raw_wav.exists() or raw_wav.stat().st_size <= 44:
            raise SynthesisError(f"flite wrote no audio for text {text!r}")
        with atomic_path(out_wav, suffix=".wav") as part:
            # -R: repeatable (fixed dither seed), so reruns give identical files.
            _run(
                ["sox", "-R", "-q", "-V1", str(raw_wav), "-b", "16", "-e", "signed-integer",
                 "-c", "1", str(part), *spec.sox_effects]
            )  # fmt: skip
            info = sf.info(str(part))
            if info.samplerate != SAMPLE_RATE or info.channels != 1 or info.frames == 0:
                raise SynthesisError(
                    f"sox chain {' '.join(spec.sox_effects)} gave {info.samplerate} Hz, "
                    f"{info.channels} channels, {info.frames} samples; it must end in `rate 16k`"
                )
    return info.frames / info.samplerate


def wav_name(utt_id: str, text: str, spec: SpeakerSpec) -> str:
    """`<utt_id>-<hash>.wav`; the hash covers the text and every synthesis setting."""
    key = json.dumps([text, spec.to_dict()], sort_keys=True)
    return f"{utt_id}-{hashlib.sha1(key.encode()).hexdigest()[:10]}.wav"


def _complete_duration(path: Path) -> float | None:
    """Duration of an existing, readable 16 kHz wav at its final path, else None."""
    if not path.exists():
        return None
    try:
        info = sf.info(str(path))
    except Exception:
        return None
    if info.samplerate != SAMPLE_RATE or info.channels != 1 or info.frames == 0:
        return None
    return info.frames / info.samplerate


def _job(args: tuple[str, str, SpeakerSpec, str]) -> tuple[str, float, bool, str | None]:
    """Worker: (utt_id, text, spec, wav) -> (utt_id, duration, reused, error message)."""
    utt_id, text, spec, wav = args
    duration = _complete_duration(Path(wav))
    if duration is not None:
        return utt_id, duration, True, None
    try:
        return utt_id, synthesize_utterance(text, spec, wav), False, None
    except UserError as exc:
        return utt_id, 0.0, False, str(exc)


def synthesize_corpus(
    plan: pd.DataFrame,
    speakers: dict[str, SpeakerSpec],
    wav_dir: str | os.PathLike,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Synthesize every row of ``plan`` (utt_id, speaker, text, ...) into ``wav_dir``.

    Returns a copy of ``plan`` with ``wav`` (path, ``wav_dir/<speaker>/<name>.wav``) and
    ``duration`` (seconds) added, in plan order. Existing complete wavs are reused.
    """
    missing = {"utt_id", "speaker", "text"} - set(plan.columns)
    if missing:
        raise UserError(f"synthesis plan lacks columns {sorted(missing)}")
    if plan["utt_id"].duplicated().any():
        dup = plan.loc[plan["utt_id"].duplicated(), "utt_id"].iloc[0]
        raise UserError(f"synthesis plan repeats utt_id {dup!r}")
    unknown = sorted(set(plan["speaker"]) - set(speakers))
    if unknown:
        raise UserError(f"synthesis plan names speakers without a SpeakerSpec: {unknown[:5]}")
    wav_dir = Path(wav_dir)
    jobs = []
    for utt_id, speaker, text in zip(plan["utt_id"], plan["speaker"], plan["text"], strict=True):
        spec = speakers[speaker]
        wav = wav_dir / speaker / wav_name(utt_id, text, spec)
        jobs.append((utt_id, text, spec, str(wav)))

    results: dict[str, float] = {}
    n_jobs = max(1, min(int(n_jobs), len(jobs) or 1))
    start = last_log = time.monotonic()
    reused = 0

    def consume(iterator) -> None:
        nonlocal reused, last_log
        for utt_id, duration, was_reused, error in iterator:
            if error is not None:
                raise SynthesisError(f"utterance {utt_id}: {error}")
            results[utt_id] = duration
            reused += was_reused
            now = time.monotonic()
            if now - last_log > 10 or len(results) == len(jobs):
                rate = (len(results) - reused) / max(now - start, 1e-9)
                log.info(
                    "synthesized %d/%d utterances (%d reused), %.1f new/s",
                    len(results), len(jobs), reused, rate,
                )  # fmt: skip
                last_log = now

    log.info("synthesis: %d utterances, %d speakers, %d jobs -> %s",
             len(jobs), plan["speaker"].nunique(), n_jobs, wav_dir)  # fmt: skip
    if n_jobs == 1:
        consume(map(_job, jobs))
    else:
        # The work happens in flite/sox child processes, so a thread pool runs n_jobs of
        # them in parallel without the pitfalls of process pools (no __main__ guard needed
        # by callers, no fork of a process holding torch threads, nothing to pickle).
        with ThreadPool(n_jobs) as pool:
            consume(pool.imap_unordered(_job, jobs, chunksize=4))
    out = plan.copy()
    out["wav"] = [job[3] for job in jobs]
    out["duration"] = [round(results[job[0]], 4) for job in jobs]
    return out
