"""Row validation before anything trains: audio decodes, duration in bounds, text usable.

on_bad_row="error" stops at the first bad row with `<wav> (utt <id>): <reason>`;
"skip" drops bad rows and counts them by reason in the report.
"""

from __future__ import annotations

import logging
from collections import Counter

import pandas as pd
import soundfile as sf

from ..audio import load_wav
from ..errors import DataError, UserError
from ..text import normalize, out_of_vocab

log = logging.getLogger(__name__)
REQUIRED = ("utt_id", "speaker", "text", "wav")


def check_row(row, sample_rate: int, min_duration: float, max_duration: float) -> tuple[float, dict]:
    """-> (duration in seconds at sample_rate, notes); raises DataError with the reason."""
    notes = {}
    wav = load_wav(row.wav, sample_rate)  # exists, non-empty, decodes; downmix + resample
    info = sf.info(row.wav)
    if info.channels > 1:
        notes["downmixed"] = 1
    if info.samplerate != sample_rate:
        notes["resampled"] = 1
    duration = wav.numel() / sample_rate
    if not min_duration <= duration <= max_duration:
        raise DataError(row.wav, f"utt {row.utt_id}: duration {duration:.2f} s outside "
                        f"[{min_duration}, {max_duration}] (data.min_duration/max_duration)")
    text = normalize(str(row.text))
    if not text:
        raise DataError(row.wav, f"utt {row.utt_id}: empty text")
    bad = out_of_vocab(text)
    if bad:
        raise DataError(row.wav, f"utt {row.utt_id}: characters outside the text vocabulary "
                        f"{''.join(bad)!r}; normalize the transcript (numbers as words)")
    return duration, notes


def validate_manifest(
    df: pd.DataFrame,
    *,
    sample_rate: int = 16000,
    min_duration: float = 0.5,
    max_duration: float = 15.0,
    on_bad_row: str = "error",
) -> tuple[pd.DataFrame, dict]:
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise UserError(f"manifest lacks columns {', '.join(missing)}")
    if on_bad_row not in ("error", "skip"):
        raise UserError(f"data.on_bad_row must be 'error' or 'skip', not {on_bad_row!r}")
    keep, durations, reasons, dropped = [], [], Counter(), []
    notes_total: Counter = Counter()
    for row in df.itertuples():
        try:
            duration, notes = check_row(row, sample_rate, min_duration, max_duration)
        except DataError as exc:
            if on_bad_row == "error":
                raise DataError(exc.path, exc.reason + " (set data.on_bad_row: skip to drop such rows)") from None
            reason = exc.reason.split(": ", 1)[-1].split(" (")[0]
            reasons[reason] += 1
            if len(dropped) < 20:
                dropped.append({"utt_id": row.utt_id, "wav": row.wav, "reason": exc.reason})
            continue
        notes_total.update(notes)
        keep.append(row.Index)
        durations.append(round(duration, 3))
    clean = df.loc[keep].copy()
    clean["text"] = [normalize(str(t)) for t in clean["text"]]
    clean["duration"] = durations
    report = {
        "rows_in": len(df),
        "rows_kept": len(clean),
        "rows_dropped": len(df) - len(clean),
        "dropped_by_reason": dict(reasons),
        "dropped_examples": dropped,
        "converted": dict(notes_total),
    }
    if clean.empty:
        raise UserError("no usable rows after validation; see the data report")
    log.info("validated %d rows: kept %d, dropped %d", len(df), len(clean), len(df) - len(clean))
    return clean.reset_index(drop=True), report
