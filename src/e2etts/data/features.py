"""Feature cache per split: 80-bin log-mel (float16) and text ids, in ONE torch file.

Layout (one file keeps loading fast and the DVC out simple):
  {"utt_id": [str], "speaker": [str], "text": [str], "text_ids": [LongTensor (chars,)],
   "mel": float16 (total_frames, n_mels), all utterances concatenated,
   "offsets": LongTensor (N,) first frame of each utterance, "lengths": LongTensor (N,),
   "mel_config": dict (MelConfig fields)}
frames per utterance = samples // hop_length + 1 (centered STFT).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import torch

from ..atomic import torch_save
from ..audio import MelConfig, load_wav, log_mel
from ..errors import DataError, UserError
from ..text import encode_text, normalize

log = logging.getLogger(__name__)
DEFAULT_MEL = MelConfig()  # frozen, so one shared default instance is safe


def extract_features(
    manifest: pd.DataFrame,
    out_path: str | Path,
    mel_cfg: MelConfig = DEFAULT_MEL,
    threads: int = 1,
    text_frontend: str = "chars",
) -> dict:
    """Log-mel + text ids (text_frontend: chars | phones) for every row of a (validated)
    manifest, saved atomically.

    Nothing is written unless every row succeeds. Returns a summary dict
    (utterances, frames, seconds).
    """
    missing = {"utt_id", "speaker", "text", "wav"} - set(manifest.columns)
    if missing:
        raise UserError(f"manifest lacks columns {sorted(missing)}")
    if manifest.empty:
        raise UserError(f"empty manifest: no features to write to {out_path}")
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)))
    start = time.monotonic()
    mels: list[torch.Tensor] = []
    text_ids: list[torch.Tensor] = []

    def to_ids(text: str) -> list[int] | ValueError:
        try:
            return encode_text(normalize(str(text)), text_frontend)
        except ValueError as exc:
            return exc

    # The phone front end runs flite's t2p once per sentence: a process each, so in threads.
    with ThreadPoolExecutor(max(1, int(threads)) * 4) as pool:
        all_ids = list(pool.map(to_ids, manifest["text"]))
    try:
        rows = zip(manifest["utt_id"], all_ids, manifest["wav"], strict=True)
        with torch.inference_mode():
            for utt_id, ids, wav in rows:
                if isinstance(ids, ValueError):
                    raise DataError(wav, f"utt {utt_id}: {ids}")
                if not ids:
                    raise DataError(wav, f"utt {utt_id}: empty text")
                text_ids.append(torch.tensor(ids, dtype=torch.long))
                audio = load_wav(wav, mel_cfg.sample_rate)
                if audio.numel() <= mel_cfg.n_fft // 2:  # the centered STFT's reflect padding
                    raise DataError(
                        wav,
                        f"utt {utt_id}: {audio.numel()} samples is too short for log-mel "
                        f"(needs > {mel_cfg.n_fft // 2}); validate the manifest first",
                    )
                mels.append(log_mel(audio, mel_cfg).to(torch.float16))
    finally:
        torch.set_num_threads(previous_threads)
    lengths = torch.tensor([m.shape[0] for m in mels], dtype=torch.long)
    offsets = torch.cumsum(lengths, 0) - lengths
    payload = {
        "utt_id": [str(u) for u in manifest["utt_id"]],
        "speaker": [str(s) for s in manifest["speaker"]],
        "text": [normalize(str(t)) for t in manifest["text"]],
        "text_ids": text_ids,
        "text_frontend": text_frontend,
        "mel": torch.cat(mels),
        "offsets": offsets,
        "lengths": lengths,
        "mel_config": dataclasses.asdict(mel_cfg),
    }
    torch_save(out_path, payload)
    seconds = time.monotonic() - start
    frames = int(lengths.sum())
    log.info("features: %d utterances, %d frames (%.2f h) in %.1f s -> %s",
             len(mels), frames, frames * mel_cfg.hop_length / mel_cfg.sample_rate / 3600,
             seconds, out_path)  # fmt: skip
    return {"utterances": len(mels), "frames": frames, "seconds": round(seconds, 2)}


class FeatureSet:
    """Random access to a feature file.

    ``fs[i]`` -> dict(utt_id, speaker, text_ids LongTensor (chars,), mel float32 (T, n_mels)).
    Attributes: ``lengths`` (N,) frames per item, ``mel`` float16 (total_frames, n_mels),
    ``utt_ids``, ``speakers``, ``texts``, ``mel_config`` (MelConfig).
    """

    def __init__(self, path: str | Path, with_mel: bool = True):
        """with_mel=False: items without "mel", and the mel frames (a third of a GB for the
        default train split) are not kept; for consumers that read text and tokens only."""
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(self.path, "feature file not found; run the extract_features rule")
        try:
            data = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise DataError(
                self.path, f"cannot load the feature file ({exc}); re-run extract_features"
            ) from None
        self.utt_ids: list[str] = data["utt_id"]
        self.speakers: list[str] = data["speaker"]
        self.texts: list[str] = data["text"]
        self.text_ids: list[torch.Tensor] = data["text_ids"]
        self.text_frontend: str = data.get("text_frontend", "chars")
        self.mel: torch.Tensor | None = data["mel"] if with_mel else None
        self.offsets: torch.Tensor = data["offsets"]
        self.lengths: torch.Tensor = data["lengths"]
        self.mel_config = MelConfig(**data["mel_config"])

    def __len__(self) -> int:
        return len(self.utt_ids)

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(f"item {i} of a {len(self)}-item feature set")
        i = i % len(self)
        item = {"utt_id": self.utt_ids[i], "speaker": self.speakers[i], "text_ids": self.text_ids[i]}
        if self.mel is not None:
            start, n = int(self.offsets[i]), int(self.lengths[i])
            item["mel"] = self.mel[start : start + n].float()
        return item

    def mel_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-bin mean and std, each (n_mels,), over every frame of the set (float32)."""
        # Chunked float64 sums: a float64 copy of a whole split would be ~1 GB.
        total = torch.zeros(self.mel.shape[1], dtype=torch.float64)
        squares = torch.zeros_like(total)
        for chunk in self.mel.split(65536):
            chunk = chunk.double()
            total += chunk.sum(0)
            squares += chunk.square().sum(0)
        n = max(self.mel.shape[0], 1)
        mean = total / n
        var = (squares - n * mean.square()).clamp_min(0) / max(n - 1, 1)
        return mean.float(), var.sqrt().clamp_min(1e-3).float()
