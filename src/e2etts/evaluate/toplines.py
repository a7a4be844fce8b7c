"""Toplines: what the judges give ground truth, vocoded ground truth, and token resynthesis.

They bound what any system can reach with this corpus, vocoder and tokenizer.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import torch

from ..atomic import write_json
from ..audio import load_wav, log_mel, save_wav


def _finish(out_dir: Path, name: str, n: int, audio_s: float, synth_s: float,
            decoding: dict | None = None) -> None:
    stats = {"system": name, "n_items": n, "audio_s": audio_s, "synth_s": synth_s,
             "rtf": synth_s / max(audio_s, 1e-6) if synth_s else None}
    if decoding is not None:
        stats["decoding"] = decoding
    write_json(out_dir / "synthesis.json", stats)


def ground_truth(items: pd.DataFrame, out_dir: Path) -> None:
    """The target utterances themselves (resampled/written like every system's output)."""
    audio = 0.0
    for row in items.itertuples():
        wav = load_wav(row.target_wav)
        save_wav(out_dir / f"{row.item_id}.wav", wav)
        audio += wav.numel() / 16000
    _finish(out_dir, "gt", len(items), audio, 0.0)


@torch.no_grad()
def vocoded(items: pd.DataFrame, vocoder, out_dir: Path, decoding: dict | None = None) -> None:
    """Ground-truth mel -> the shared vocoder (decoding: its settings, recorded)."""
    audio, spent = 0.0, 0.0
    for row in items.itertuples():
        mel = log_mel(load_wav(row.target_wav))
        t = time.perf_counter()
        wav = vocoder(mel)
        spent += time.perf_counter() - t
        save_wav(out_dir / f"{row.item_id}.wav", wav)
        audio += wav.numel() / 16000
    _finish(out_dir, "gt_vocoded", len(items), audio, spent, decoding)


@torch.no_grad()
def resynthesize(items: pd.DataFrame, system, out_dir: Path, name: str, seed: int = 0) -> None:
    """Ground-truth tokens of the target (this system's tokenizer) -> flow (with the same
    prompt as the systems get) -> vocoder: the ceiling for a perfect LLM."""
    audio, spent = 0.0, 0.0
    for i, row in enumerate(items.itertuples()):
        t = time.perf_counter()
        wav = system.resynthesize(row.prompt_wav, row.target_wav, seed=seed + i)
        spent += time.perf_counter() - t
        save_wav(out_dir / f"{row.item_id}.wav", wav)
        audio += wav.numel() / 16000
    _finish(out_dir, name, len(items), audio, spent, system.decoding)
