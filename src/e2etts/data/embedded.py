"""Plan of the embedded corpus: which speaker says which sentence, in which split.

Sentences are partitioned before any speaker is assigned, so a test sentence never occurs
in dev or train and a dev sentence never in train. Speakers held out of training:
``n_test_unseen_speakers`` (zero-shot test) and ``n_dev_unseen_speakers`` (held-out
model selection), spread over the base voices. Each train sentence is spoken once, by the
training speakers in rotation: as many distinct sentences as possible per hour of audio,
which is what a small LLM needs to generalize instead of memorizing (docs/feasibility.md).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import UserError
from .voices import base_voice_of

PLAN_COLUMNS = ["utt_id", "speaker", "text", "split", "seen"]
DEV_UNSEEN_SHARE = 0.5  # of dev utterances spoken by dev-unseen speakers (when there are any)


def _spread(speakers: list[str], n: int, rng: np.random.Generator) -> list[str]:
    """n speakers drawn round-robin over base voices (random voice order and members)."""
    if n > len(speakers):
        raise ValueError(f"cannot pick {n} of {len(speakers)} speakers")
    groups: dict[str, list[str]] = {}
    for speaker in speakers:
        groups.setdefault(base_voice_of(speaker), []).append(speaker)
    voices = sorted(groups)
    voices = [voices[i] for i in rng.permutation(len(voices))]
    queues = {v: [groups[v][i] for i in rng.permutation(len(groups[v]))] for v in voices}
    picked: list[str] = []
    while len(picked) < n:
        for voice in voices:
            if queues[voice] and len(picked) < n:
                picked.append(queues[voice].pop(0))
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
    """-> DataFrame[utt_id, speaker, text, split, seen]; deterministic for a seed.

    ``seen`` is True where the speaker occurs in train. Raises UserError naming the
    parameter to lower when there are too few sentences or speakers.
    """
    counts = {
        "n_train": n_train,
        "n_dev": n_dev,
        "n_test_seen_speakers": n_test_seen_speakers,
        "n_test_unseen_speakers": n_test_unseen_speakers,
        "n_dev_unseen_speakers": n_dev_unseen_speakers,
        "test_utts_per_speaker": test_utts_per_speaker,
    }
    negative = [k for k, v in counts.items() if v < 0]
    if negative or n_train < 1:
        raise UserError(f"data.embedded: {negative or ['n_train']} must be positive")
    speakers = sorted(set(speakers))
    pool = sorted(set(sentences))
    rng = np.random.default_rng(seed)

    n_heldout = n_test_unseen_speakers + n_dev_unseen_speakers
    if n_heldout >= len(speakers):
        raise UserError(
            f"{len(speakers)} speakers cannot hold out {n_heldout} from training "
            f"(n_test_unseen_speakers={n_test_unseen_speakers} + n_dev_unseen_speakers="
            f"{n_dev_unseen_speakers}) and keep one to train on: lower n_test_unseen_speakers "
            "or n_dev_unseen_speakers, or raise data.embedded.variants_per_voice"
        )
    heldout = _spread(speakers, n_heldout, rng)
    test_unseen = sorted(heldout[:n_test_unseen_speakers])
    dev_unseen = sorted(heldout[n_test_unseen_speakers:])
    train_speakers = [s for s in speakers if s not in heldout]
    if n_test_seen_speakers > len(train_speakers):
        raise UserError(
            f"n_test_seen_speakers={n_test_seen_speakers} exceeds the {len(train_speakers)} "
            "training speakers: lower data.embedded.n_test_seen_speakers"
        )
    test_seen = sorted(_spread(train_speakers, n_test_seen_speakers, rng))
    test_speakers = test_seen + test_unseen

    n_test = test_utts_per_speaker * len(test_speakers)
    needed = n_test + n_dev + n_train
    if needed > len(pool):
        raise UserError(
            f"the plan needs {needed} distinct sentences (n_train={n_train} + n_dev={n_dev} + "
            f"test {len(test_speakers)} speakers x test_utts_per_speaker={test_utts_per_speaker})"
            f" but only {len(pool)} are available: lower data.embedded.n_train"
        )
    order = rng.permutation(len(pool))
    test_sents = [pool[i] for i in order[:n_test]]
    dev_sents = [pool[i] for i in order[n_test : n_test + n_dev]]
    train_sents = [pool[i] for i in order[n_test + n_dev : needed]]

    rows: list[tuple[str, str, str]] = []
    rotation = [train_speakers[i] for i in rng.permutation(len(train_speakers))]
    rows += [(rotation[i % len(rotation)], text, "train") for i, text in enumerate(train_sents)]

    n_dev_unseen_utts = round(DEV_UNSEEN_SHARE * n_dev) if dev_unseen else 0
    for i, text in enumerate(dev_sents):
        if i < n_dev_unseen_utts:
            rows.append((dev_unseen[i % len(dev_unseen)], text, "dev"))
        else:
            rows.append((rotation[(i - n_dev_unseen_utts) % len(rotation)], text, "dev"))

    for j, speaker in enumerate(test_speakers):
        chunk = test_sents[j * test_utts_per_speaker : (j + 1) * test_utts_per_speaker]
        rows += [(speaker, text, "test") for text in chunk]

    frame = pd.DataFrame(rows, columns=["speaker", "text", "split"])
    index = frame.groupby(["split", "speaker"]).cumcount()
    frame.insert(
        0,
        "utt_id",
        [
            f"{s}-{split}-{k:05d}"
            for s, split, k in zip(frame.speaker, frame.split, index, strict=True)
        ],
    )
    frame["seen"] = frame["speaker"].isin(set(train_speakers))
    return frame[PLAN_COLUMNS]
