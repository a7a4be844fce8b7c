"""Plan of the embedded corpus: which speaker says which sentence in which split.

Sentences are partitioned before speakers are assigned, so test (and dev) sentences never
occur in training. Some speakers are held out of training entirely: dev-unseen speakers
(for held-out model selection) and test-unseen speakers (zero-shot evaluation).
"""

from __future__ import annotations

import random

import pandas as pd

from ..errors import UserError


def _spread(speakers: list[str], n: int, rng: random.Random) -> list[str]:
    """n speakers spread over base voices (speaker names are <voice>_<variant>)."""
    by_voice: dict[str, list[str]] = {}
    for s in speakers:
        by_voice.setdefault(s.rsplit("_", 1)[0], []).append(s)
    for group in by_voice.values():
        rng.shuffle(group)
    picked: list[str] = []
    voices = sorted(by_voice)
    while len(picked) < n:
        progressed = False
        for v in voices:
            if by_voice[v] and len(picked) < n:
                picked.append(by_voice[v].pop())
                progressed = True
        if not progressed:
            break
    return picked


def plan_embedded_corpus(
    sentences: list[str],
    speakers: list[str],
    *,
    n_train: int,
    n_dev: int,
    n_test_seen_speakers: int,
    n_test_unseen_speakers: int,
    n_dev_unseen_speakers: int,
    test_utts_per_speaker: int,
    seed: int,
) -> pd.DataFrame:
    """-> DataFrame[utt_id, speaker, text, split, seen], deterministic for a seed."""
    rng = random.Random(seed)
    n_heldout = n_test_unseen_speakers + n_dev_unseen_speakers
    if n_heldout >= len(speakers):
        raise UserError(
            f"{len(speakers)} speakers cannot hold out {n_heldout} (dev + test unseen); "
            "raise data.embedded.variants_per_voice or lower n_test_unseen_speakers"
        )
    heldout = _spread(sorted(speakers), n_heldout, rng)
    test_unseen, dev_unseen = heldout[:n_test_unseen_speakers], heldout[n_test_unseen_speakers:]
    train_speakers = sorted(set(speakers) - set(heldout))
    if n_test_seen_speakers > len(train_speakers):
        raise UserError(f"data.embedded.n_test_seen_speakers={n_test_seen_speakers} exceeds "
                        f"the {len(train_speakers)} training speakers")
    test_seen = _spread(train_speakers, n_test_seen_speakers, rng)
    test_speakers = test_seen + test_unseen
    n_test = test_utts_per_speaker * len(test_speakers)
    if n_train + n_dev + n_test > len(sentences):
        raise UserError(
            f"the plan needs {n_train + n_dev + n_test} distinct sentences but only "
            f"{len(sentences)} are available; lower data.embedded.n_train"
        )
    pool = list(sentences)
    rng.shuffle(pool)
    test_sents = pool[:n_test]
    dev_sents = pool[n_test : n_test + n_dev]
    train_sents = pool[n_test + n_dev : n_test + n_dev + n_train]

    rows = []
    rotation = list(train_speakers)
    rng.shuffle(rotation)
    for i, text in enumerate(train_sents):
        rows.append((rotation[i % len(rotation)], text, "train"))
    dev_pool = list(train_speakers) + list(dev_unseen) * 2  # unseen voices well represented
    for i, text in enumerate(dev_sents):
        rows.append((dev_pool[(i * 7 + 3) % len(dev_pool)], text, "dev"))
    for j, spk in enumerate(test_speakers):
        for text in test_sents[j * test_utts_per_speaker : (j + 1) * test_utts_per_speaker]:
            rows.append((spk, text, "test"))
    frame = pd.DataFrame(rows, columns=["speaker", "text", "split"])
    frame.insert(0, "utt_id", [f"{s}-{split}-{i:05d}" for i, (s, split) in enumerate(zip(frame.speaker, frame.split, strict=True))])
    frame["seen"] = frame["speaker"].isin(train_speakers)
    return frame
