"""The fixed test list (docs/evaluation.md): each item pairs two utterances of one test speaker.

- target: its text is the sentence to synthesize, its audio is the ground truth;
- prompt: another utterance of the same speaker (audio + text), preferably 2-6 s long.

Items are split as evenly as the data allow between speakers seen in training and unseen
(zero-shot) speakers, and spread round-robin over the speakers of each half, so a small
list still covers many voices. Every utterance is a target at most once. The list depends
only on the manifest's content (not its row order), ``n_items`` and ``seed``; while both
halves have utterances to spare, a longer list with the same seed extends a shorter one.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..errors import UserError

log = logging.getLogger(__name__)

PROMPT_MIN_S, PROMPT_MAX_S = 2.0, 6.0
REQUIRED = ("utt_id", "speaker", "text", "wav", "duration")
ITEM_COLUMNS = [
    "item_id",
    "speaker",
    "seen",
    "prompt_utt_id",
    "prompt_wav",
    "prompt_text",
    "target_utt_id",
    "target_text",
    "target_wav",
]


def _pick_prompt(others: pd.DataFrame, rng: np.random.Generator) -> pd.Series:
    """A random utterance in 2-6 s if any, else the one closest to that range."""
    dur = others["duration"].to_numpy(float)
    good = np.flatnonzero((dur >= PROMPT_MIN_S) & (dur <= PROMPT_MAX_S))
    if good.size:
        return others.iloc[int(good[rng.integers(good.size)])]
    gap = np.maximum(PROMPT_MIN_S - dur, dur - PROMPT_MAX_S)
    return others.iloc[int(np.argmin(gap))]


def _speaker_queue(groups: dict[str, pd.DataFrame], speakers: list[str], rng: np.random.Generator):
    """Yield (speaker, target row, prompt row) round-robin over ``speakers`` in seeded order."""
    order = [speakers[i] for i in rng.permutation(len(speakers))]
    targets = {s: list(rng.permutation(len(groups[s]))) for s in order}
    while any(targets.values()):
        for speaker in order:
            if not targets[speaker]:
                continue
            group = groups[speaker]
            t = int(targets[speaker].pop(0))
            others = group.drop(index=group.index[t])
            yield speaker, group.iloc[t], _pick_prompt(others, rng)


def make_test_items(
    test_manifest: pd.DataFrame, n_items: int, seed: int, seen_speakers: set[str]
) -> pd.DataFrame:
    """-> DataFrame with ITEM_COLUMNS, ``n_items`` rows (item0000, item0001, ...).

    test_manifest: utt_id, speaker, text, wav, duration (the test split). seen_speakers:
    the speakers of the training split. Raises UserError if the manifest cannot give
    ``n_items`` items (a speaker needs 2 or more utterances to give any).
    """
    missing = [c for c in REQUIRED if c not in test_manifest.columns]
    if missing:
        raise UserError(
            f"test manifest lacks column(s) {', '.join(missing)} (needs {', '.join(REQUIRED)})"
        )
    if n_items < 1:
        raise UserError(f"eval.n_items must be >= 1, got {n_items}")
    test = test_manifest.loc[:, list(REQUIRED)].copy()
    test["speaker"] = test["speaker"].astype(str)
    test["utt_id"] = test["utt_id"].astype(str)
    test["text"] = test["text"].fillna("").astype(str)
    test = test[test["text"].str.strip() != ""]
    if test["utt_id"].duplicated().any():
        dup = test.loc[test["utt_id"].duplicated(), "utt_id"].iloc[0]
        raise UserError(f"test manifest has duplicate utt_id {dup!r}")
    test = test.sort_values("utt_id", kind="stable").reset_index(drop=True)
    groups = {str(s): g for s, g in test.groupby("speaker", sort=True) if len(g) >= 2}
    seen_set = {str(s) for s in seen_speakers}
    halves = {
        True: sorted(s for s in groups if s in seen_set),
        False: sorted(s for s in groups if s not in seen_set),
    }
    capacity = {k: sum(len(groups[s]) for s in v) for k, v in halves.items()}
    if capacity[True] + capacity[False] < n_items:
        raise UserError(
            f"the test manifest gives at most {capacity[True] + capacity[False]} test items "
            f"({len(groups)} speakers with 2+ utterances: {capacity[True]} utterances of seen "
            f"speakers, {capacity[False]} of unseen ones), {n_items} asked; lower eval.n_items "
            "or put more test utterances per speaker in the test split"
        )
    # Half seen, half unseen; a half that is short is topped up from the other one.
    want = {False: min(capacity[False], (n_items + 1) // 2)}
    want[True] = min(capacity[True], n_items - want[False])
    want[False] = n_items - want[True]
    for seen, label in ((True, "seen"), (False, "unseen")):
        if want[seen] == 0:
            log.warning(
                "test items: no %s-speaker items (no such speaker with 2+ test utterances)", label
            )
    rng = np.random.default_rng(seed)
    picked: dict[bool, list] = {}
    for seen in (False, True):  # fixed order keeps the rng stream reproducible
        queue = _speaker_queue(groups, halves[seen], np.random.default_rng(rng.integers(2**32)))
        picked[seen] = [next(queue) for _ in range(want[seen])]
    # Interleave unseen / seen so any prefix of the list (a report's first items) has both.
    rows = []
    for i in range(max(want.values())):
        for seen in (False, True):
            if i < len(picked[seen]):
                speaker, target, prompt = picked[seen][i]
                rows.append(
                    {
                        "item_id": f"item{len(rows):04d}",
                        "speaker": speaker,
                        "seen": seen,
                        "prompt_utt_id": prompt["utt_id"],
                        "prompt_wav": prompt["wav"],
                        "prompt_text": prompt["text"],
                        "target_utt_id": target["utt_id"],
                        "target_text": target["text"],
                        "target_wav": target["wav"],
                    }
                )
    items = pd.DataFrame(rows, columns=ITEM_COLUMNS)
    items["seen"] = items["seen"].astype(bool)
    return items
