"""Scoring one system's outputs with the WER and SIM judges; the cross-system summary.

A system's output for item ``x`` is ``<wav_dir>/x.wav`` (16 kHz mono). An output that is
missing, unreadable or silent is a failure of the system, not of the evaluation: it
counts as every reference word deleted (WER 1 for that item) and SIM 0, and is counted
in ``n_missing``. Scoring never stops on such an item.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import file_digest, write_json
from ..audio import load_wav
from ..errors import DataError, UserError
from .asr import utterance_errors, utterance_hits
from .normalize import NORMALIZER, normalize_for_wer
from .stats import (
    bootstrap_ci_mean,
    bootstrap_ci_wer,
    corpus_wer,
    seed_item_bootstrap,
)

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
SILENCE_PEAK = 1e-3  # -60 dBFS: below this everywhere, an output is treated as silent
UNINTELLIGIBLE_FACTOR = 3.0  # WER above 3x the vocoded ground truth: not ranked
UNINTELLIGIBLE_FLOOR = 0.01  # the topline WER used is at least 1%, so a perfect topline
# (WER 0 on a tiny list) does not flag every system
TOPLINES = ("gt", "gt_vocoded")
BOOTSTRAP_ROUNDS = 2000


def is_topline(name: str) -> bool:
    """Ground truth, vocoded ground truth and token resynthesis bound the systems."""
    return name in TOPLINES or name.startswith("resynth_")


class TranscriptCache:
    """Transcripts keyed by (judge, sha256 of the wav file), in an optional JSON file.

    A wav whose bytes did not change is not transcribed again by the same judge (same
    model file and decoding settings), so re-scoring after, e.g., a report change is cheap.
    The file is replaced atomically on ``save``; concurrent writers may drop each other's
    new entries (never corrupt the file), so give each scoring job its own file if that matters.
    """

    def __init__(self, path: str | os.PathLike | None, judge_key: str):
        self.path = Path(path) if path else None
        self.judge_key = judge_key
        self._all: dict[str, dict[str, str]] = {}
        if self.path and self.path.exists():
            try:
                loaded = json.loads(self.path.read_text())
                self._all = {k: dict(v) for k, v in loaded.items() if isinstance(v, dict)}
            except (json.JSONDecodeError, OSError, AttributeError, TypeError, ValueError):
                log.warning("%s: unreadable transcript cache, starting a new one", self.path)
        self._mine = self._all.setdefault(judge_key, {})
        self.hits = self.misses = 0

    def get(self, digest: str) -> str | None:
        text = self._mine.get(digest)
        if text is None:
            self.misses += 1
        else:
            self.hits += 1
        return text

    def put(self, digest: str, text: str) -> None:
        self._mine[digest] = text

    def save(self) -> None:
        if self.path:
            write_json(self.path, self._all)


def _read_output(path: Path) -> tuple[np.ndarray | None, str]:
    """-> (samples, "ok") or (None, "missing" | "unreadable" | "silent")."""
    if not path.is_file():
        return None, "missing"
    try:
        wav = load_wav(path, SAMPLE_RATE).numpy()
    except DataError:
        return None, "unreadable"
    if not np.all(np.isfinite(wav)):
        return None, "unreadable"
    if float(np.abs(wav).max()) < SILENCE_PEAK:
        return None, "silent"
    return wav, "ok"


def _judge_name(judge, default: str) -> str:
    return str(getattr(judge, "name", default))


def score_system(
    items: pd.DataFrame,
    wav_dir,
    system: str,
    wer_judge,
    sim_judge,
    rtf: float | None,
    cache_path: str | os.PathLike | None = None,
    n_boot: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict]:
    """Score ``<wav_dir>/<item_id>.wav`` for every item.

    wer_judge: has ``transcribe(samples) -> str`` (and ``name``, ``cache_key``);
    sim_judge: has ``embed(samples) -> unit vector`` (and ``name``).
    Returns (per-utterance DataFrame, metrics dict); WERs are fractions.
    """
    if len(items) == 0:
        raise ValueError("score_system: the test item list is empty")
    wav_dir = Path(wav_dir)
    asr_key = str(getattr(wer_judge, "cache_key", _judge_name(wer_judge, "asr")))
    cache = TranscriptCache(cache_path, asr_key)
    prompt_embeddings: dict[str, np.ndarray] = {}
    outputs = [_read_output(wav_dir / f"{item.item_id}.wav") for item in items.itertuples(index=False)]
    digests = [file_digest(wav_dir / f"{item.item_id}.wav") if wav is not None else None
               for item, (wav, _) in zip(items.itertuples(index=False), outputs, strict=True)]
    # Transcribe every uncached output in one call: the judge batches them (asr.WERJudge).
    hypotheses = [cache.get(d) if d is not None else "" for d in digests]
    todo = [i for i, h in enumerate(hypotheses) if h is None]
    transcribe_batch = getattr(wer_judge, "transcribe_batch", None)
    clips = [outputs[i][0] for i in todo]
    texts = transcribe_batch(clips) if transcribe_batch else [wer_judge.transcribe(c) for c in clips]
    for i, text in zip(todo, texts, strict=True):
        hypotheses[i] = text
        cache.put(digests[i], text)
    rows = []
    for item, (wav, status), hypothesis in zip(items.itertuples(index=False), outputs, hypotheses, strict=True):
        out_path = wav_dir / f"{item.item_id}.wav"
        sim, audio_s = 0.0, 0.0
        if wav is not None:
            audio_s = wav.size / SAMPLE_RATE
            prompt = str(item.prompt_wav)
            if prompt not in prompt_embeddings:  # prompts are inputs: a bad one is an error
                prompt_embeddings[prompt] = sim_judge.embed(load_wav(prompt, SAMPLE_RATE).numpy())
            sim = float(np.clip(np.dot(sim_judge.embed(wav), prompt_embeddings[prompt]), -1.0, 1.0))
        else:
            log.warning("%s: %s output %s counts as WER 1, SIM 0", system, status, out_path)
        errors, words = utterance_errors(str(item.target_text), hypothesis)
        rows.append(
            {
                "item_id": item.item_id,
                "speaker": item.speaker,
                "seen": bool(item.seen),
                "reference": item.target_text,
                "hypothesis": hypothesis,
                "errors": errors,
                "words": words,
                "wer": errors / words if words else float(errors > 0),
                "sim": sim,
                "status": status,
                "missing": status != "ok",
                "audio_s": round(audio_s, 3),
            }
        )
    cache.save()
    per_utt = pd.DataFrame(rows)
    metrics = {"system": system, **_metrics(per_utt, n_boot, seed)}
    metrics.update(
        {
            "rtf": None if rtf is None else float(rtf),
            "asr_judge": _judge_name(wer_judge, "asr"),
            "text_normalizer": NORMALIZER,
            "sim_judge": _judge_name(sim_judge, "sim"),
            "transcripts_cached": cache.hits,
        }
    )
    return per_utt, metrics


def _metrics(per_utt: pd.DataFrame, n_boot: int, seed: int) -> dict:
    errors = per_utt["errors"].to_numpy(float)
    words = per_utt["words"].to_numpy(float)
    sims = per_utt["sim"].to_numpy(float)
    seen = per_utt["seen"].to_numpy(bool)

    def part_wer(mask):
        return corpus_wer(errors[mask], words[mask]) if mask.any() else None

    def part_sim(mask):
        return float(sims[mask].mean()) if mask.any() else None

    return {
        "wer": corpus_wer(errors, words),
        "wer_ci95": list(bootstrap_ci_wer(errors, words, n=n_boot, seed=seed)),
        "wer_utt_mean": float(per_utt["wer"].mean()),
        "sim": float(sims.mean()),
        "sim_ci95": list(bootstrap_ci_mean(sims, n=n_boot, seed=seed)),
        "wer_seen": part_wer(seen),
        "wer_unseen": part_wer(~seen),
        "sim_seen": part_sim(seen),
        "sim_unseen": part_sim(~seen),
        "n_items": int(len(per_utt)),
        "n_missing": int(per_utt["missing"].sum()),
    }


def _aligned(tables: list[pd.DataFrame], order: pd.Series, column: str) -> np.ndarray:
    """(seeds, items): each seed's ``column`` in the item order ``order`` (item ids)."""
    out = []
    for table in tables:
        by_item = table.set_index("item_id")[column]
        if by_item.index.has_duplicates:
            raise DataError(f"per-utterance table lists an item twice ({column})")
        out.append(by_item.reindex(order).to_numpy(float))
    return np.stack(out)


def _shared_items(*table_lists: list[pd.DataFrame]) -> pd.Series:
    """Item ids present in every table (in the first table's order)."""
    first = table_lists[0][0]["item_id"]
    keep = np.ones(len(first), dtype=bool)
    for tables in table_lists:
        for table in tables:
            keep &= first.isin(table["item_id"]).to_numpy()
    return first[keep].reset_index(drop=True)


# Per-run metrics averaged over seeds in a row of several (the seed mean is the figure).
SEED_MEAN_KEYS = ("wer", "wer_utt_mean", "sim", "wer_seen", "wer_unseen", "sim_seen", "sim_unseen", "rtf")
BASELINES = ("cascade", "cascade_matched")


def _flatten(d: dict | None, prefix: str = "") -> dict:
    out = {}
    for key, value in (d or {}).items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _check_one_decoding(name: str, runs: dict) -> None:
    """A row pools its training seeds only when every seed was synthesized with the same
    settings (the metrics' `decoding`, which `e2etts score` copies from synthesis.json): a
    claim assembled over several sessions must not average a seed decoded one way with a
    seed decoded another. Files written before `decoding` was recorded pool only with each
    other. -> None, or UserError naming the row, the seeds and the settings that differ."""
    if len(runs) < 2:
        return
    recorded = {seed: m.get("decoding") for seed, m in runs.items()}
    if len({json.dumps(d, sort_keys=True) for d in recorded.values()}) == 1:
        return
    flat = {seed: _flatten(d) for seed, d in recorded.items()}
    keys = sorted(set().union(*flat.values()))
    differ = [k for k in keys if len({json.dumps(f.get(k, "not recorded")) for f in flat.values()}) > 1]
    where = "; ".join(
        f"s{seed}/{name}.json: " + (", ".join(f"{k}={flat[seed].get(k, 'not recorded')}" for k in differ)
                                   if recorded[seed] is not None else "decoding not recorded")
        for seed in runs
    )
    raise UserError(
        f"{name}: its training seeds were synthesized with different settings ({where}); "
        "pooling them would mix two recipes. Re-synthesize and score the odd seeds "
        "(make claim-seed SEED=...) or summarize one setting's seeds"
    )


def _seed_row(runs: dict, tables: dict, n_boot: int, seed: int) -> dict:
    """One summary row from a system's runs ({training seed or None: metrics}) and their
    per-utterance tables. One run: its metrics as scored. Several: the seed mean of each
    figure, its per-seed values and spread, and intervals from the seed-and-item bootstrap."""
    keys = list(runs)
    entry = dict(runs[keys[0]])
    if keys != [None]:
        entry["seeds"] = keys
    if len(keys) == 1:
        return entry
    for key in SEED_MEAN_KEYS:
        values = [runs[k].get(key) for k in keys]
        if all(v is not None for v in values):
            entry[key] = float(np.mean(values))
            entry[f"{key}_per_seed"] = [float(v) for v in values]
    entry["n_missing"] = int(sum(runs[k].get("n_missing", 0) for k in keys))
    for key in ("wer", "sim"):
        values = entry.get(f"{key}_per_seed")
        entry[f"{key}_seed_sd"] = float(np.std(values, ddof=1)) if values else None
    if all(k in tables for k in keys):
        seq = [tables[k] for k in keys]
        order = _shared_items(seq)
        errors, words = _aligned(seq, order, "errors"), _aligned(seq, order, "words")
        entry["wer_ci95"] = seed_item_bootstrap(errors, words, n=n_boot, seed=seed)["wer_ci95"]
        sims = _aligned(seq, order, "sim")
        entry["sim_ci95"] = seed_item_bootstrap(sims, np.ones_like(sims), n=n_boot, seed=seed)["wer_ci95"]
    return entry


def _versus(a: dict, b: dict, baseline: str, n_boot: int, seed: int) -> dict:
    """Row A against a baseline row B, both {training seed: per-utterance table}: the
    seed-and-item bootstrap (evaluate.stats.seed_item_bootstrap) on the items both scored.
    With one seed each it is the paired item bootstrap."""
    ta, tb = list(a.values()), list(b.values())
    order = _shared_items(ta, tb)
    if not len(order):
        return {}
    wer = seed_item_bootstrap(
        _aligned(ta, order, "errors"), _aligned(ta, order, "words"),
        _aligned(tb, order, "errors"), _aligned(tb, order, "words"), n=n_boot, seed=seed,
    )
    # Higher SIM is better: "A's SIM higher" is "A's negated SIM lower" (a mean is a ratio
    # over one word per item).
    sim_a, sim_b = _aligned(ta, order, "sim"), _aligned(tb, order, "sim")
    sim = seed_item_bootstrap(-sim_a, np.ones_like(sim_a), -sim_b, np.ones_like(sim_b), n=n_boot, seed=seed)
    return {
        f"p_wer_lower_than_{baseline}": wer["p_lower"],
        f"delta_wer_vs_{baseline}": wer["delta"],
        f"delta_wer_vs_{baseline}_ci95": wer["delta_ci95"],
        f"p_sim_higher_than_{baseline}": sim["p_lower"],
        f"delta_sim_vs_{baseline}": -sim["delta"],
        "n_paired": int(len(order)),
    }


def summarize(
    system_metrics: dict[str, dict],
    per_utt: dict[str, dict],
    baselines: tuple[str, ...] = BASELINES,
    n_boot: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
) -> dict:
    """-> {row: metrics + flags + tests}, in the input order.

    system_metrics: {row: {training seed: metrics}} and per_utt: {row: {training seed:
    per-utterance table}}, seed None for rows no training seed touches (gt, gt_vocoded).
    A row of one seed keeps its scored metrics; a row of several gets the seed mean of each
    figure, ``<figure>_per_seed``, ``wer_seed_sd`` / ``sim_seed_sd`` and seed-and-item
    bootstrap intervals (evaluate.stats.seed_item_bootstrap). Each row also gets:
    - ``topline``: ground truth / vocoded ground truth / resynthesis rows;
    - ``unintelligible`` (only when ``gt_vocoded`` is scored): WER above 3x its WER;
    - ``wer_rank``: 1 = lowest WER among the non-topline, intelligible systems (else None);
    - ``word_hit_rate`` (reference words recognized / reference words, seed mean) and
      ``n_empty_hypotheses`` (all seeds): on unintelligible speech WER mixes hallucinated
      insertions with deletions, and a system the judge hears as silence can "win" on WER;
    - vs each of ``baselines`` present (the cascade and its compute-matched control):
      ``p_wer_lower_than_<b>`` and ``p_sim_higher_than_<b>`` (one-sided, resampling seeds
      and items; small = this row is reliably better), ``delta_wer_vs_<b>`` (seed means)
      with ``delta_wer_vs_<b>_ci95``, ``delta_sim_vs_<b>`` and ``n_paired`` (items).
    """
    for name, runs in system_metrics.items():
        _check_one_decoding(name, runs)
    summary: dict[str, dict] = {}
    gt_vocoded = system_metrics.get("gt_vocoded")
    threshold = None
    if gt_vocoded:
        topline_wer = np.mean([m["wer"] for m in gt_vocoded.values()])
        threshold = UNINTELLIGIBLE_FACTOR * max(float(topline_wer), UNINTELLIGIBLE_FLOOR)
    for name, runs in system_metrics.items():
        tables = per_utt.get(name, {})
        entry = _seed_row(runs, tables, n_boot, seed)
        entry["topline"] = is_topline(name)
        hit_rates, empties = [], 0
        for table in tables.values():
            if {"reference", "hypothesis", "words"} <= set(table.columns):
                refs, hyps = table["reference"].astype(str), table["hypothesis"].fillna("").astype(str)
                hits = sum(utterance_hits(r, h) for r, h in zip(refs, hyps, strict=True))
                hit_rates.append(hits / max(float(table["words"].sum()), 1.0))
                empties += int(sum(not normalize_for_wer(h) for h in hyps))
        if hit_rates:
            entry["word_hit_rate"] = float(np.mean(hit_rates))
            entry["n_empty_hypotheses"] = empties
        if threshold is not None:
            entry["unintelligible"] = bool(name != "gt_vocoded" and entry["wer"] > threshold)
            entry["unintelligible_wer_threshold"] = threshold
            entry["unintelligible_factor"] = UNINTELLIGIBLE_FACTOR
        if not entry["topline"] and tables:
            # A baseline is tested against the ones before it (the control against the
            # cascade), never against itself or a later one.
            earlier = baselines[: baselines.index(name)] if name in baselines else baselines
            for baseline in earlier:
                if per_utt.get(baseline):
                    entry.update(_versus(tables, per_utt[baseline], baseline, n_boot, seed))
        summary[name] = entry
    ranked = sorted(
        (n for n, e in summary.items() if not e["topline"] and not e.get("unintelligible", False)),
        key=lambda n: (summary[n]["wer"], n),
    )
    for name, entry in summary.items():
        entry["wer_rank"] = ranked.index(name) + 1 if name in ranked else None
    return summary
