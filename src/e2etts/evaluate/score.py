"""Scoring a system's outputs with the WER and SIM judges, and the cross-system summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..audio import load_wav
from ..errors import DataError
from .asr import utterance_errors
from .stats import bootstrap_ci_mean, bootstrap_ci_wer, paired_bootstrap_mean, paired_bootstrap_wer

UNINTELLIGIBLE_FACTOR = 3.0


def score_system(items: pd.DataFrame, wav_dir, system: str, wer_judge, sim_judge, rtf: float | None):
    """-> (per-utterance DataFrame, metrics dict). A missing or silent output counts as all
    words wrong (WER 1) and SIM 0, and is counted in n_missing."""
    wav_dir = Path(wav_dir)
    rows = []
    prompt_cache: dict[str, np.ndarray] = {}
    for item in items.itertuples():
        path = wav_dir / f"{item.item_id}.wav"
        hyp, missing = "", False
        try:
            wav = load_wav(path).numpy()
            if np.abs(wav).max() < 1e-4:
                raise DataError(path, "silent")
        except DataError:
            wav, missing = None, True
        if wav is not None:
            hyp = wer_judge.transcribe(wav)
        errors, words = utterance_errors(item.target_text, hyp)
        if missing:
            errors = words
        if item.prompt_wav not in prompt_cache:
            prompt_cache[item.prompt_wav] = sim_judge.embed(load_wav(item.prompt_wav).numpy())
        sim = 0.0 if wav is None else float(np.dot(sim_judge.embed(wav), prompt_cache[item.prompt_wav]))
        rows.append({
            "item_id": item.item_id, "speaker": item.speaker, "seen": bool(item.seen),
            "reference": item.target_text, "hypothesis": hyp, "errors": errors, "words": words,
            "wer": errors / max(1, words), "sim": sim, "missing": missing,
        })
    per = pd.DataFrame(rows)
    e, w = per["errors"].to_numpy(), per["words"].to_numpy()
    seen = per["seen"].to_numpy(bool)

    def wer_of(mask):
        return float(e[mask].sum() / max(1, w[mask].sum())) if mask.any() else None

    metrics = {
        "system": system,
        "wer": float(e.sum() / max(1, w.sum())),
        "wer_ci95": list(bootstrap_ci_wer(e, w)),
        "wer_utt_mean": float(per["wer"].mean()),
        "sim": float(per["sim"].mean()),
        "sim_ci95": list(bootstrap_ci_mean(per["sim"].to_numpy())),
        "wer_seen": wer_of(seen),
        "wer_unseen": wer_of(~seen),
        "sim_seen": float(per["sim"][seen].mean()) if seen.any() else None,
        "sim_unseen": float(per["sim"][~seen].mean()) if (~seen).any() else None,
        "rtf": rtf,
        "n_items": len(per),
        "n_missing": int(per["missing"].sum()),
        "asr_judge": getattr(wer_judge, "name", "asr"),
        "sim_judge": getattr(sim_judge, "name", "sim"),
    }
    return per, metrics


def summarize(system_metrics: dict[str, dict], per_utt: dict[str, pd.DataFrame], baseline: str = "cascade") -> dict:
    """summary[name] = {wer, wer_ci95, sim, sim_ci95, rtf, n_items, ...}; plus paired
    bootstrap p-values against the baseline and the 'unintelligible' flag (WER > 3x the
    gt_vocoded topline), for systems only ranked when intelligible."""
    summary: dict = {}
    topline = system_metrics.get("gt_vocoded", {}).get("wer")
    for name, m in system_metrics.items():
        entry = {k: m.get(k) for k in ("wer", "wer_ci95", "sim", "sim_ci95", "rtf", "n_items",
                                         "wer_utt_mean", "wer_seen", "wer_unseen", "sim_seen",
                                         "sim_unseen", "n_missing")}
        if topline is not None and name not in ("gt", "gt_vocoded"):
            entry["unintelligible"] = bool(m["wer"] > UNINTELLIGIBLE_FACTOR * max(topline, 1e-9))
        if baseline in per_utt and name != baseline and name in per_utt:
            a = per_utt[name].set_index("item_id")
            b = per_utt[baseline].set_index("item_id").loc[a.index]
            entry["p_wer_lower_than_" + baseline] = paired_bootstrap_wer(a["errors"], a["words"], b["errors"], b["words"])
            entry["p_sim_higher_than_" + baseline] = paired_bootstrap_mean(a["sim"], b["sim"])
        summary[name] = entry
    return summary
