"""Neural vocoder training on ground-truth audio: random 1 s crops, mel computed on the fly."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from torch import nn

from ..audio import MelConfig, load_wav, log_mel
from ..batching import device_of
from ..config import build
from ..train import TrainTask
from .vocos import VocosConfig, VocosVocoder

HOP = MelConfig().hop_length
CROP_FRAMES = 100  # 1 s segments: enough context for a ConvNeXt stack, cheap on CPU


class WavCrops:
    """Wavs of a manifest; each access draws a random crop aligned to the hop.

    The crop offset comes from the global torch RNG, which the training loop checkpoints,
    so a resumed run draws the same crops as an uninterrupted one."""

    def __init__(self, manifest: Path, crop_frames: int = CROP_FRAMES):
        frame = pd.read_csv(manifest, sep="\t", keep_default_na=False)
        self.wavs = frame["wav"].tolist()
        self.durations = frame["duration"].tolist()
        self.crop = crop_frames * HOP

    def __len__(self) -> int:
        return len(self.wavs)

    def __getitem__(self, i: int) -> torch.Tensor:
        wav = load_wav(self.wavs[i])
        if wav.numel() <= self.crop:
            return nn.functional.pad(wav, (0, self.crop - wav.numel()))
        start_frame = int(torch.randint(0, (wav.numel() - self.crop) // HOP + 1, ()))
        return wav[start_frame * HOP : start_frame * HOP + self.crop]


class VocoderTraining(nn.Module):
    def __init__(self, model: VocosVocoder):
        super().__init__()
        self.model = model

    def forward(self, wav: torch.Tensor):
        mel = log_mel(wav)
        total, parts = self.model.loss(mel, wav)
        return total, {k: float(v) for k, v in parts.items()}


def evaluate_vocoder(model: VocosVocoder, dev: WavCrops, n: int = 32) -> dict:
    g_state = torch.get_rng_state()
    torch.manual_seed(0)  # fixed crops: comparable held-out loss across evaluations
    wav = torch.stack([dev[i] for i in range(min(n, len(dev)))]).to(device_of(model))
    torch.set_rng_state(g_state)
    total, parts = model.loss(log_mel(wav), wav)
    return {"dev_loss": float(total), **{f"dev_{k}": float(v) for k, v in parts.items()}}


def build_task(section: dict, manifest_dir: Path) -> TrainTask:
    from ..data.features import FeatureSet

    cfg = build(VocosConfig, section["model"], "vocoder.model")
    model = VocosVocoder(cfg)
    features = Path("data/features/train.pt")
    if features.exists():
        model.set_normalization(*FeatureSet(features).mel_stats())
    train = WavCrops(manifest_dir / "train.tsv")
    dev = WavCrops(manifest_dir / "dev.tsv")
    return TrainTask(
        kind="vocoder",
        model=VocoderTraining(model),
        dataset=train,
        lengths=[1] * len(train),
        collate=torch.stack,
        loss=lambda m, b: m(b),
        evaluate=lambda w: evaluate_vocoder(w.model, dev),
        export=lambda w: {"model": w.model.state_dict(), "config": cfg.__dict__},
    )
