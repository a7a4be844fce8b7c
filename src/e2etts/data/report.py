"""Corpus figures per split, and a check that the speakers are distinct voices.

``speaker_distinctness`` embeds a few utterances per speaker with resemblyzer (GE2E
d-vectors, 256-d, L2-normalized; CPU; the weights ship in the package) and reports:

- ``same_speaker_cosine``: mean cosine over pairs of utterances of one speaker;
- ``different_speaker_cosine``: mean cosine over pairs of utterances of two speakers;
- ``same_base_voice_cosine``: the same over pairs of *different* speakers made from one
  flite voice (embedded corpus only), the hardest pairs to tell apart;
- ``nearest_other_below_own``: the fraction of speakers s whose own utterances are, on
  average, more similar to s's centroid (computed leaving the utterance out) than to the
  centroid of the most similar other speaker. 1.0 = every speaker is closer to itself
  than to anyone else; a speaker below it is confusable with its nearest neighbour;
- ``nearest_centroid_accuracy``: the fraction of utterances whose nearest centroid (own
  centroid leave-one-out) is their own speaker's;
- ``closest_pairs``: the five most similar speaker pairs (centroid cosine).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..text import normalize
from .voices import base_voice_of

log = logging.getLogger(__name__)


def _texts(df: pd.DataFrame) -> set[str]:
    return {normalize(str(t)) for t in df["text"]}


def corpus_report(manifests: dict[str, pd.DataFrame]) -> dict:
    """Per split: utterances, speakers (seen/unseen), distinct sentences, hours; overlaps.

    A speaker is seen when it occurs in train. Sentence overlaps test-vs-train and
    test-vs-dev must be 0; dev-vs-train is reported too.
    """
    train_speakers = set(manifests["train"]["speaker"]) if "train" in manifests else set()
    texts = {split: _texts(df) for split, df in manifests.items()}
    report: dict = {"splits": {}}
    for split, df in manifests.items():
        speakers = set(df["speaker"])
        hours = float(df["duration"].sum()) / 3600 if "duration" in df.columns else None
        report["splits"][split] = {
            "utterances": len(df),
            "speakers": len(speakers),
            "seen_speakers": len(speakers & train_speakers),
            "unseen_speakers": len(speakers - train_speakers),
            "distinct_sentences": len(texts[split]),
            "hours": None if hours is None else round(hours, 4),
        }
    everything = pd.concat(list(manifests.values()), ignore_index=True)
    report["total"] = {
        "utterances": len(everything),
        "speakers": int(everything["speaker"].nunique()),
        "distinct_sentences": len(set().union(*texts.values())) if texts else 0,
        "hours": round(float(everything["duration"].sum()) / 3600, 4)
        if "duration" in everything.columns
        else None,
    }

    def overlap(a: str, b: str) -> int | None:
        return len(texts[a] & texts[b]) if a in texts and b in texts else None

    report["overlap"] = {
        "test_vs_train_sentences": overlap("test", "train"),
        "test_vs_dev_sentences": overlap("test", "dev"),
        "dev_vs_train_sentences": overlap("dev", "train"),
    }
    report["clean"] = not any(
        report["overlap"][k] for k in ("test_vs_train_sentences", "test_vs_dev_sentences")
    )
    return report


def speaker_distinctness(manifest: pd.DataFrame, n_per_speaker: int = 4, seed: int = 0) -> dict:
    """Resemblyzer check that speakers are distinct (see the module docstring).

    Uses up to ``n_per_speaker`` utterances per speaker, drawn with ``seed``.
    """
    from resemblyzer import VoiceEncoder, preprocess_wav

    from ..audio import load_wav

    rng = np.random.default_rng(seed)
    encoder = VoiceEncoder(device="cpu", verbose=False)
    embeds: dict[str, np.ndarray] = {}
    for speaker, group in sorted(manifest.groupby("speaker"), key=lambda kv: str(kv[0])):
        rows = group.iloc[np.sort(rng.permutation(len(group))[:n_per_speaker])]
        vectors = []
        for wav in rows["wav"]:
            audio = preprocess_wav(load_wav(wav, 16000).numpy(), source_sr=16000)
            vectors.append(encoder.embed_utterance(audio))
        embeds[str(speaker)] = np.stack(vectors)
    names = sorted(embeds)
    result: dict = {
        "speakers": len(names),
        "utterances_per_speaker": n_per_speaker,
        "encoder": "resemblyzer VoiceEncoder (GE2E), cosine similarity",
    }
    if len(names) < 2:
        return result

    all_vecs = np.concatenate([embeds[s] for s in names])
    labels = np.concatenate([[i] * len(embeds[s]) for i, s in enumerate(names)])
    sims = all_vecs @ all_vecs.T
    upper = np.triu(np.ones_like(sims, dtype=bool), 1)
    same = upper & (labels[:, None] == labels[None, :])
    diff = upper & (labels[:, None] != labels[None, :])
    bases = np.array([base_voice_of(s) for s in names])[labels]
    same_base = diff & (bases[:, None] == bases[None, :])

    sums = {s: embeds[s].sum(0) for s in names}
    centroids = np.stack([sums[s] / np.linalg.norm(sums[s]) for s in names])
    per_speaker, wins, correct = {}, 0, 0
    for i, s in enumerate(names):
        e = embeds[s]
        to_others = e @ centroids.T  # (n_utts, speakers)
        to_others[:, i] = -np.inf
        if len(e) > 1:  # leave-one-out own centroid
            loo = sums[s][None, :] - e
            loo /= np.linalg.norm(loo, axis=1, keepdims=True)
            own = np.sum(e * loo, axis=1)
        else:
            own = np.full(len(e), np.nan)
        nearest = int(np.argmax(to_others.mean(0)))
        nearest_sim = float(to_others.mean(0)[nearest])
        own_mean = float(np.nanmean(own)) if len(e) > 1 else None
        wins += own_mean is not None and own_mean > nearest_sim
        correct += int(np.sum(own > to_others.max(1)))
        per_speaker[s] = {
            "own": None if own_mean is None else round(own_mean, 4),
            "nearest_other": names[nearest],
            "nearest_other_cosine": round(nearest_sim, 4),
        }
    centroid_sims = centroids @ centroids.T
    pairs = sorted(
        (
            (float(centroid_sims[i, j]), names[i], names[j])
            for i in range(len(names))
            for j in range(i + 1, len(names))
        ),
        reverse=True,
    )
    result.update(
        {
            "same_speaker_cosine": round(float(sims[same].mean()), 4) if same.any() else None,
            "different_speaker_cosine": round(float(sims[diff].mean()), 4),
            "same_base_voice_cosine": round(float(sims[same_base].mean()), 4)
            if same_base.any()
            else None,
            "nearest_other_below_own": round(wins / len(names), 4),
            "nearest_centroid_accuracy": round(correct / len(all_vecs), 4),
            "closest_pairs": [{"a": a, "b": b, "cosine": round(c, 4)} for c, a, b in pairs[:5]],
            "per_speaker": per_speaker,
        }
    )
    log.info(
        "speaker check: same %.3f, different %.3f, same-base %s, nearest-other-below-own %.2f",
        result["same_speaker_cosine"] or float("nan"), result["different_speaker_cosine"],
        result["same_base_voice_cosine"], result["nearest_other_below_own"],
    )  # fmt: skip
    return result
