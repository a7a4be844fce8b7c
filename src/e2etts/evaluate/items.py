"""The fixed test list: each item = a prompt utterance of a test speaker + an unseen target.

The target utterance's text is the sentence to speak and its audio is the ground truth;
the prompt is another utterance of the same speaker (preferably 2-6 s long).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import UserError


def make_test_items(test_manifest: pd.DataFrame, n_items: int, seed: int, seen_speakers: set[str]) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    test = test_manifest.sort_values("utt_id").reset_index(drop=True)
    groups = {s: g for s, g in test.groupby("speaker", sort=True) if len(g) >= 2}
    if not groups:
        raise UserError("test manifest has no speaker with 2 or more utterances; raise "
                        "data.embedded.test_utts_per_speaker")
    seen = sorted(s for s in groups if s in seen_speakers)
    unseen = sorted(s for s in groups if s not in seen_speakers)
    # Alternate seen / unseen speakers so both halves are balanced whatever n_items is.
    order = []
    for i in range(max(len(seen), len(unseen))):
        if i < len(unseen):
            order.append(unseen[i])
        if i < len(seen):
            order.append(seen[i])
    targets_by_speaker = {s: list(rng.permutation(len(groups[s]))) for s in order}
    rows = []
    while len(rows) < n_items and any(targets_by_speaker.values()):
        for speaker in order:
            if len(rows) >= n_items or not targets_by_speaker[speaker]:
                continue
            g = groups[speaker]
            t = targets_by_speaker[speaker].pop()
            target = g.iloc[t]
            others = g.drop(g.index[t])
            good = others[(others["duration"] >= 2.0) & (others["duration"] <= 6.0)]
            pool = good if len(good) else others
            prompt = pool.iloc[int(rng.integers(len(pool)))]
            rows.append({
                "item_id": f"item{len(rows):04d}",
                "speaker": speaker,
                "seen": speaker in seen_speakers,
                "prompt_utt_id": prompt["utt_id"],
                "prompt_wav": prompt["wav"],
                "prompt_text": prompt["text"],
                "target_utt_id": target["utt_id"],
                "target_text": target["text"],
                "target_wav": target["wav"],
            })
    if len(rows) < n_items:
        raise UserError(f"only {len(rows)} test items can be made, {n_items} asked (eval.n_items); "
                        "lower eval.n_items or raise data.embedded.test_utts_per_speaker")
    return pd.DataFrame(rows)
