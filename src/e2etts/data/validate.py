"""Row validation before anything trains: audio decodes, duration in bounds, text usable.

Every file is decoded in full (a header alone does not prove the data is readable), via
``e2etts.audio.load_wav`` at the file's own rate, so no time goes into resampling here:
the duration after resampling is computed from the decoded length. Stereo files and other
sample rates are kept (they are converted wherever audio is loaded) and counted.

on_bad_row="error": stop at the first bad row with ``<wav> (utt <id>): <reason>``.
on_bad_row="skip": drop bad rows; the report counts them by reason and lists up to 20.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter

import pandas as pd
import soundfile as sf

from ..audio import load_wav
from ..errors import DataError, UserError
from ..text import normalize, out_of_vocab

log = logging.getLogger(__name__)
REQUIRED_COLUMNS = ("utt_id", "text", "wav")
MAX_LISTED = 20


class BadRowError(DataError):
    """A manifest row that cannot be used: ``<wav> (utt <id>): <reason>``."""

    def __init__(self, path, utt_id: str, reason: str, kind: str = "bad row"):
        super().__init__(path, reason)
        self.utt_id = utt_id
        self.kind = kind
        self.args = (f"{self.path} (utt {utt_id}): {reason}",)


def resampled_length(n_samples: int, source_rate: int, target_rate: int) -> int:
    """Samples after resampling, as torchaudio.functional.resample returns them."""
    if source_rate == target_rate:
        return n_samples
    g = math.gcd(source_rate, target_rate)
    return math.ceil(target_rate // g * n_samples / (source_rate // g))


def _probe_audio(path: str, sample_rate: int) -> tuple[float, int, int]:
    """-> (duration s after resampling to sample_rate, source channels, source rate).

    Raises DataError (from load_wav) for a missing, empty or undecodable file.
    """
    try:
        info = sf.info(path)
    except Exception:
        load_wav(path, sample_rate)  # raises the specific DataError (missing/empty/undecodable)
        raise DataError(path, "cannot read the audio header") from None
    wav = load_wav(path, info.samplerate)  # full decode + downmix, no resampling
    return (
        resampled_length(wav.numel(), info.samplerate, sample_rate) / sample_rate,
        info.channels,
        info.samplerate,
    )


def _kind(reason: str) -> str:
    for key, kind in (
        ("does not exist", "missing_file"),
        ("empty (0 bytes)", "empty_file"),
        ("no samples", "no_samples"),
        ("cannot", "undecodable"),
    ):
        if key in reason:
            return kind
    return "unreadable"


def validate_manifest(
    df: pd.DataFrame,
    *,
    sample_rate: int = 16000,
    min_duration: float,
    max_duration: float,
    on_bad_row: str = "error",
) -> tuple[pd.DataFrame, dict]:
    """Check every row; -> (clean rows with ``duration`` (s, at sample_rate), report).

    Checks: utt_id unique; the wav exists, is non-empty and decodes; its duration lies in
    [min_duration, max_duration]; the text is non-empty after normalization and inside
    the vocabulary. The clean frame's text is normalized.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"manifest lacks columns {missing} (has {list(df.columns)})")
    if on_bad_row not in ("error", "skip"):
        raise UserError(f"data.on_bad_row must be 'error' or 'skip', not {on_bad_row!r}")
    if not 0 <= min_duration < max_duration:
        raise UserError(
            f"data.min_duration={min_duration}, max_duration={max_duration}: need 0 <= min < max"
        )

    start = time.monotonic()
    kept, durations, texts = [], [], []
    dropped_by_reason: Counter = Counter()
    dropped: list[dict] = []
    converted = {"downmixed": 0, "resampled": 0}
    source_rates: Counter = Counter()
    seen_ids: set[str] = set()

    # A reader's malformed lines (data/readers.py; only present under on_bad_row: skip).
    bad_rows = df["bad"] if "bad" in df.columns else [""] * len(df)
    for pos, (utt_id, text, wav, bad_line) in enumerate(
        zip(df["utt_id"], df["text"], df["wav"], bad_rows, strict=True)
    ):
        utt_id, wav = str(utt_id), str(wav)
        try:
            if isinstance(bad_line, str) and bad_line:
                raise BadRowError(wav, utt_id, bad_line, "malformed_row")
            if utt_id in seen_ids:
                raise BadRowError(
                    wav, utt_id, "utt_id occurs more than once in the manifest", "duplicate_utt_id"
                )
            seen_ids.add(utt_id)
            clean_text = normalize(text) if isinstance(text, str) else ""
            if not clean_text:
                raise BadRowError(
                    wav,
                    utt_id,
                    "empty text (the transcript is blank after normalization)",
                    "empty_text",
                )
            bad = out_of_vocab(clean_text)
            if bad:
                raise BadRowError(
                    wav, utt_id,
                    f"text has characters outside the text vocabulary: {' '.join(map(repr, bad))} "
                    f"in {clean_text!r}; normalize the transcript (numbers as words)",
                    "out_of_vocab",
                )  # fmt: skip
            try:
                duration, channels, rate = _probe_audio(wav, sample_rate)
            except BadRowError:
                raise
            except DataError as exc:
                raise BadRowError(wav, utt_id, exc.reason, _kind(exc.reason)) from None
            if duration < min_duration or duration > max_duration:
                kind = "too_short" if duration < min_duration else "too_long"
                raise BadRowError(
                    wav, utt_id,
                    f"duration {duration:.2f} s outside [{min_duration}, {max_duration}] "
                    "(data.min_duration / data.max_duration)",
                    kind,
                )  # fmt: skip
        except BadRowError as exc:
            if on_bad_row == "error":
                exc.args = (exc.args[0] + " (data.on_bad_row: skip drops such rows)",)
                raise
            dropped_by_reason[exc.kind] += 1
            if len(dropped) < MAX_LISTED:
                dropped.append({"utt_id": utt_id, "wav": wav, "reason": exc.reason})
            continue
        converted["downmixed"] += channels > 1
        converted["resampled"] += rate != sample_rate
        source_rates[str(rate)] += 1
        kept.append(pos)
        durations.append(round(duration, 4))
        texts.append(clean_text)

    clean = df.iloc[kept].drop(columns=["bad"], errors="ignore")
    clean["text"] = texts
    clean["duration"] = durations
    clean = clean.reset_index(drop=True)
    report = {
        "rows_in": len(df),
        "rows_kept": len(clean),
        "rows_dropped": len(df) - len(clean),
        "dropped_by_reason": dict(sorted(dropped_by_reason.items())),
        "dropped_examples": dropped,
        "converted": converted,
        "source_sample_rates": dict(sorted(source_rates.items())),
        "hours_kept": round(sum(durations) / 3600, 4),
    }
    if clean.empty:
        raise UserError(
            f"no usable rows after validation ({dict(dropped_by_reason)}); see the data report"
        )
    log.info(
        "validated %d rows in %.1f s: kept %d, dropped %d %s, converted %s",
        len(df), time.monotonic() - start, len(clean), len(df) - len(clean),
        dict(dropped_by_reason), converted,
    )  # fmt: skip
    return clean, report
