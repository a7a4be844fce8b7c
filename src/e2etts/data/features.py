"""Feature cache per split: 80-bin log-mel (float16) and text ids, one torch file.

Layout (a single file keeps loading fast and the DVC out simple):
  {"utt_id": [...], "speaker": [...], "text": [...], "text_ids": [LongTensor],
   "mel": float16 (total_frames, 80) concatenated, "offsets": (N,), "lengths": (N,),
   "mel_config": dict}
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pandas as pd
import torch

from ..atomic import torch_save
from ..audio import MelConfig, load_wav, log_mel
from ..errors import DataError
from ..text import encode, normalize

log = logging.getLogger(__name__)


def extract_features(manifest: pd.DataFrame, out_path: Path, mel_cfg: MelConfig = MelConfig(), threads: int = 1) -> dict:
    """Log-mel + text ids for every row of a validated manifest, saved atomically."""
    torch.set_num_threads(max(1, threads))
    mels, text_ids = [], []
    for row in manifest.itertuples():
        with torch.no_grad():
            mels.append(log_mel(load_wav(row.wav, mel_cfg.sample_rate), mel_cfg).to(torch.float16))
        try:
            text_ids.append(torch.tensor(encode(normalize(row.text)), dtype=torch.long))
        except ValueError as exc:
            raise DataError(row.wav, f"utt {row.utt_id}: {exc}") from None
    lengths = torch.tensor([m.shape[0] for m in mels], dtype=torch.long)
    offsets = torch.cumsum(lengths, 0) - lengths
    payload = {
        "utt_id": manifest["utt_id"].astype(str).tolist(),
        "speaker": manifest["speaker"].astype(str).tolist(),
        "text": manifest["text"].astype(str).tolist(),
        "text_ids": text_ids,
        "mel": torch.cat(mels) if mels else torch.zeros(0, mel_cfg.n_mels, dtype=torch.float16),
        "offsets": offsets,
        "lengths": lengths,
        "mel_config": dataclasses.asdict(mel_cfg),
    }
    torch_save(out_path, payload)
    log.info("%d utterances, %d frames -> %s", len(mels), int(lengths.sum()), out_path)
    return {"utterances": len(mels), "frames": int(lengths.sum())}


class FeatureSet:
    """Random access to a feature file: item i -> dict(utt_id, speaker, text_ids, mel (T, 80))."""

    def __init__(self, path: str | Path):
        path = Path(path)
        if not path.exists():
            raise DataError(path, "feature file not found; run the extract_features rule")
        self.path = path
        data = torch.load(path, map_location="cpu", weights_only=False)
        self.utt_ids: list[str] = data["utt_id"]
        self.speakers: list[str] = data["speaker"]
        self.texts: list[str] = data["text"]
        self.text_ids: list[torch.Tensor] = data["text_ids"]
        self.mel: torch.Tensor = data["mel"]
        self.offsets: torch.Tensor = data["offsets"]
        self.lengths: torch.Tensor = data["lengths"]
        self.mel_config = data["mel_config"]

    def __len__(self) -> int:
        return len(self.utt_ids)

    def __getitem__(self, i: int) -> dict:
        start, n = int(self.offsets[i]), int(self.lengths[i])
        return {
            "utt_id": self.utt_ids[i],
            "speaker": self.speakers[i],
            "text_ids": self.text_ids[i],
            "mel": self.mel[start : start + n].float(),
        }

    def mel_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-bin mean and std (80,) over every frame of the split."""
        mel = self.mel.float()
        return mel.mean(0), mel.std(0).clamp_min(1e-3)
