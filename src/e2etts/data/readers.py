"""Readers for real corpora, producing manifest rows (utt_id, speaker, text, wav).

LJSpeech-1.1: <root>/metadata.csv (``id|text|normalized text``, no header, no quoting)
              and <root>/wavs/<id>.wav; one speaker, "LJ".
LibriTTS:     <root>/[<subset>/]<speaker>/<chapter>/<utt>.wav with a sibling
              <utt>.normalized.txt; found by a recursive glob, so the root may hold
              several subsets (train-clean-100, dev-clean, ...).

Audio is not opened here: validation decodes, downmixes and resamples every file.

A malformed metadata line stops the read (data.on_bad_row: error) or becomes a row whose
``bad`` column says why (skip): validation then drops and counts it in the data report
with every other bad row. The ``bad`` column exists only when such rows do.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UserError
from ..text import normalize

log = logging.getLogger(__name__)
COLUMNS = ["utt_id", "speaker", "text", "wav"]
BAD = "bad"


def read_ljspeech(root: str | Path, on_bad_row: str = "error") -> pd.DataFrame:
    """LJSpeech-1.1 -> DataFrame[utt_id, speaker="LJ", text (normalized column), wav]
    (+ ``bad`` for malformed lines kept under on_bad_row="skip")."""
    root = Path(root)
    meta = root / "metadata.csv"
    if not meta.is_file():
        raise UserError(
            f"{meta}: not found; data.corpus_path must point at the LJSpeech-1.1 folder "
            "that holds metadata.csv and wavs/"
        )
    rows, bad = [], []
    with open(meta, encoding="utf-8", newline="") as handle:
        for n, fields in enumerate(csv.reader(handle, delimiter="|", quoting=csv.QUOTE_NONE), 1):
            if not fields or not "".join(fields).strip():
                continue
            # 3 columns; a few rows lack the normalized one. A 4th column (a '|' in the
            # text) would make the wrong column the transcript.
            if len(fields) not in (2, 3) or not fields[0].strip():
                reason = (f"line {n}: expected 'id|text|normalized text', found {len(fields)} "
                          f"column{'s' if len(fields) != 1 else ''}")
                if on_bad_row != "skip":
                    raise UserError(f"{meta}: {reason} (data.on_bad_row: skip drops such rows)")
                bad.append((f"{meta.name}:{n}", "LJ", "", f"{meta}:{n}", reason))
                continue
            utt_id = fields[0].strip()
            # The normalized column spells numbers and abbreviations out; a few rows lack it.
            text = fields[2] if len(fields) > 2 and fields[2].strip() else fields[1]
            rows.append((utt_id, "LJ", normalize(text), str(root / "wavs" / f"{utt_id}.wav")))
    if not rows:
        raise UserError(f"{meta}: no rows" + (f" ({len(bad)} malformed)" if bad else ""))
    frame = _frame(rows, meta)
    if bad:
        log.warning("%s: %d malformed lines kept as bad rows (data.on_bad_row: skip)", meta, len(bad))
        frame = pd.concat([frame.assign(**{BAD: ""}), pd.DataFrame(bad, columns=[*COLUMNS, BAD])],
                          ignore_index=True)
    return frame


def read_libritts(root: str | Path) -> pd.DataFrame:
    """LibriTTS (any subsets under root) -> DataFrame[utt_id, speaker, text, wav].

    speaker = the speaker directory (two levels above the wav); text = normalized
    transcript. Wavs without a .normalized.txt are skipped (and counted in the log).
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(
            f"{root}: not a directory; data.corpus_path must point at a LibriTTS root "
            "(<speaker>/<chapter>/<utt>.wav with <utt>.normalized.txt, optionally in subsets)"
        )
    rows, no_text = [], 0
    for wav in sorted(root.rglob("*.wav")):
        text_file = wav.with_name(wav.stem + ".normalized.txt")
        if not text_file.is_file():
            no_text += 1
            continue
        text = normalize(text_file.read_text(encoding="utf-8"))
        rows.append((wav.stem, wav.parent.parent.name, text, str(wav)))
    if not rows:
        raise UserError(
            f"{root}: no <utt>.wav with a sibling <utt>.normalized.txt found "
            "(expected the LibriTTS layout <speaker>/<chapter>/<utt>.wav)"
        )
    if no_text:
        log.warning("%s: skipped %d wavs without a .normalized.txt", root, no_text)
    return _frame(rows, root)


def _frame(rows: list[tuple], source: Path) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=COLUMNS)
    dup = frame["utt_id"].duplicated()
    if dup.any():
        raise UserError(f"{source}: utterance id {frame.loc[dup, 'utt_id'].iloc[0]!r} occurs twice")
    return frame.sort_values("utt_id", kind="stable").reset_index(drop=True)


def _pick_texts(texts: list[str], weight: dict[str, int], target: float) -> set[str]:
    """Texts from the front of ``texts`` until their utterance count reaches ``target``."""
    picked, total = set(), 0
    for text in texts:
        if total >= target:
            break
        picked.add(text)
        total += weight[text]
    return picked


def split_real_corpus(
    df: pd.DataFrame,
    *,
    dev_fraction: float,
    test_fraction: float,
    n_unseen_speakers: int,
    seed: int,
) -> pd.DataFrame:
    """Add ``split`` (train/dev/test) and ``seen`` columns, partitioning by sentence text.

    - With more than one speaker, ``n_unseen_speakers`` speakers (seeded) are held out of
      training; they occur only in test (``seen`` False). Sentences only they speak are
      test sentences; their rows whose sentence was drawn for train/dev are dropped.
    - The other sentences are shuffled (seeded) and dealt to test and dev until about
      ``test_fraction`` / ``dev_fraction`` of the training speakers' utterances are covered.
      A sentence's every utterance lands in one split: test sentences never occur in train
      or dev, dev sentences never in train.
    """
    for name, value in (("dev_fraction", dev_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise UserError(f"data.real.{name}={value}: must be in [0, 1)")
    if dev_fraction + test_fraction >= 1:
        raise UserError("data.real.dev_fraction + test_fraction must be below 1")
    rng = np.random.default_rng(seed)
    speakers = sorted(df["speaker"].unique())
    unseen: set[str] = set()
    if len(speakers) > 1 and n_unseen_speakers > 0:
        if n_unseen_speakers >= len(speakers):
            raise UserError(
                f"data.real.n_unseen_speakers={n_unseen_speakers} leaves no training speaker "
                f"(the corpus has {len(speakers)}): lower n_unseen_speakers"
            )
        unseen = {speakers[i] for i in rng.permutation(len(speakers))[:n_unseen_speakers]}
    elif n_unseen_speakers > 0:
        log.info("one speaker in the corpus: no speaker is held out (n_unseen_speakers ignored)")

    is_unseen = df["speaker"].isin(unseen)
    seen_counts = df.loc[~is_unseen, "text"].value_counts().to_dict()
    texts = sorted(seen_counts)
    texts = [texts[i] for i in rng.permutation(len(texts))]
    n_seen_rows = int((~is_unseen).sum())
    test_texts = _pick_texts(texts, seen_counts, test_fraction * n_seen_rows)
    rest = [t for t in texts if t not in test_texts]
    dev_texts = _pick_texts(rest, seen_counts, dev_fraction * n_seen_rows)
    # Sentences spoken only by held-out speakers are test sentences.
    test_texts |= set(df.loc[is_unseen, "text"]) - set(seen_counts)

    split = np.where(
        df["text"].isin(test_texts), "test", np.where(df["text"].isin(dev_texts), "dev", "train")
    )
    out = df.assign(split=split)
    drop = is_unseen & (out["split"] != "test")
    if drop.any():
        log.info("dropped %d utterances of held-out speakers whose sentences are in train/dev",
                 int(drop.sum()))  # fmt: skip
    out = out[~drop].reset_index(drop=True)
    if not (out["split"] == "train").any():
        raise UserError(
            "no training utterances left: lower data.real.test_fraction, dev_fraction or "
            "n_unseen_speakers"
        )
    train_speakers = set(out.loc[out["split"] == "train", "speaker"])
    out["seen"] = out["speaker"].isin(train_speakers)
    log.info(
        "real corpus split: %s; held-out speakers: %s",
        out["split"].value_counts().to_dict(), sorted(unseen),
    )  # fmt: skip
    return out
