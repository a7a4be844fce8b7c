"""Corpus figures and a check that speakers are distinct (resemblyzer embeddings)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def corpus_report(manifests: dict[str, pd.DataFrame]) -> dict:
    report: dict = {"splits": {}}
    texts = {split: set(df["text"]) for split, df in manifests.items()}
    train_speakers = set(manifests["train"]["speaker"])
    for split, df in manifests.items():
        speakers = set(df["speaker"])
        report["splits"][split] = {
            "utterances": len(df),
            "speakers": len(speakers),
            "seen_speakers": len(speakers & train_speakers),
            "unseen_speakers": len(speakers - train_speakers),
            "distinct_sentences": len(texts[split]),
            "hours": round(float(df["duration"].sum()) / 3600, 3),
        }
    all_df = pd.concat(manifests.values())
    report["total"] = {
        "utterances": len(all_df),
        "speakers": int(all_df["speaker"].nunique()),
        "distinct_sentences": int(all_df["text"].nunique()),
        "hours": round(float(all_df["duration"].sum()) / 3600, 3),
    }
    report["overlap"] = {
        "test_vs_train_sentences": len(texts["test"] & texts["train"]),
        "test_vs_dev_sentences": len(texts["test"] & texts["dev"]),
        "dev_vs_train_sentences": len(texts["dev"] & texts["train"]),
    }
    return report


def speaker_distinctness(manifest: pd.DataFrame, n_per_speaker: int = 4, seed: int = 0) -> dict:
    """Mean cosine of resemblyzer embeddings for same-speaker vs different-speaker pairs.

    `nearest_other_below_own` is the fraction of speakers whose most similar other
    speaker's centroid is less similar to them than their own utterances are on average:
    1.0 means every speaker is closer to itself than to any other speaker."""
    from resemblyzer import VoiceEncoder, preprocess_wav

    from ..audio import load_wav

    encoder = VoiceEncoder(device="cpu", verbose=False)
    rng = np.random.default_rng(seed)
    embeds: dict[str, np.ndarray] = {}
    for speaker, group in sorted(manifest.groupby("speaker")):
        rows = group.iloc[rng.permutation(len(group))[:n_per_speaker]]
        vecs = [encoder.embed_utterance(preprocess_wav(load_wav(w).numpy(), source_sr=16000)) for w in rows["wav"]]
        embeds[speaker] = np.stack(vecs)
    names = sorted(embeds)
    same, diff, wins = [], [], 0
    centroids = {s: embeds[s].mean(0) / np.linalg.norm(embeds[s].mean(0)) for s in names}
    for s in names:
        e = embeds[s]
        sims = e @ e.T
        own = sims[np.triu_indices(len(e), 1)]
        same.extend(own.tolist())
        others = [float((e @ centroids[o]).mean()) for o in names if o != s]
        for o in names:
            if o > s:
                diff.extend((e @ embeds[o].T).ravel().tolist())
        wins += int(max(others) < own.mean()) if others and len(own) else 0
    return {
        "speakers": len(names),
        "utterances_per_speaker": n_per_speaker,
        "same_speaker_cosine": float(np.mean(same)) if same else None,
        "different_speaker_cosine": float(np.mean(diff)) if diff else None,
        "nearest_other_below_own": wins / len(names) if names else None,
    }
