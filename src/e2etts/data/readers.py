"""Readers for real corpora at a user-given path, producing the same manifest columns.

LJSpeech-1.1: <root>/metadata.csv (id|text|normalized text, no header) + <root>/wavs/<id>.wav
LibriTTS:     <root>/[subset/]<speaker>/<chapter>/<utt>.wav + <utt>.normalized.txt
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pandas as pd

from ..errors import UserError
from ..text import normalize

COLUMNS = ["utt_id", "speaker", "text", "wav"]


def read_ljspeech(root: str | Path) -> pd.DataFrame:
    root = Path(root)
    meta = root / "metadata.csv"
    if not meta.exists():
        raise UserError(f"{meta}: not found; data.corpus_path must point at the LJSpeech-1.1 "
                        "folder holding metadata.csv and wavs/")
    rows = []
    with meta.open(encoding="utf-8") as fh:
        for n, fields in enumerate(csv.reader(fh, delimiter="|", quoting=csv.QUOTE_NONE), 1):
            if len(fields) < 2:
                raise UserError(f"{meta}: line {n}: expected 'id|text|normalized text'")
            text = fields[2] if len(fields) > 2 and fields[2].strip() else fields[1]
            rows.append((fields[0], "LJ", normalize(text), str(root / "wavs" / f"{fields[0]}.wav")))
    return pd.DataFrame(rows, columns=COLUMNS)


def read_libritts(root: str | Path) -> pd.DataFrame:
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: not a directory; data.corpus_path must point at a LibriTTS "
                        "root (<speaker>/<chapter>/*.wav with *.normalized.txt)")
    rows = []
    for wav in sorted(root.rglob("*.wav")):
        text_file = wav.with_suffix(".normalized.txt")
        if not text_file.exists():
            continue
        speaker = wav.parent.parent.name
        rows.append((wav.stem, speaker, normalize(text_file.read_text(encoding="utf-8")), str(wav)))
    if not rows:
        raise UserError(f"{root}: no <utt>.wav with a sibling <utt>.normalized.txt found")
    return pd.DataFrame(rows, columns=COLUMNS)


def split_real_corpus(df: pd.DataFrame, *, dev_fraction: float, test_fraction: float,
                      n_unseen_speakers: int, seed: int) -> pd.DataFrame:
    """Partition by sentence (test sentences never in train/dev) and, with several speakers,
    hold n_unseen_speakers out of training for zero-shot testing."""
    rng = random.Random(seed)
    speakers = sorted(df["speaker"].unique())
    unseen: set[str] = set()
    if len(speakers) > 1 and n_unseen_speakers:
        if n_unseen_speakers >= len(speakers):
            raise UserError(f"data.real.n_unseen_speakers={n_unseen_speakers} leaves no training speaker")
        unseen = set(rng.sample(speakers, n_unseen_speakers))
    texts = sorted(df["text"].unique())
    rng.shuffle(texts)
    n_test = max(1, round(test_fraction * len(texts)))
    n_dev = max(1, round(dev_fraction * len(texts)))
    test_t, dev_t = set(texts[:n_test]), set(texts[n_test : n_test + n_dev])
    split = []
    for spk, text in zip(df["speaker"], df["text"], strict=True):
        if text in test_t:
            split.append("test")
        elif spk in unseen:
            split.append("drop")  # unseen speakers only speak test sentences
        elif text in dev_t:
            split.append("dev")
        else:
            split.append("train")
    out = df.assign(split=split)
    out = out[out["split"] != "drop"].reset_index(drop=True)
    out["seen"] = ~out["speaker"].isin(unseen)
    return out
