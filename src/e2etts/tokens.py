"""Speech-token files (one per split and tokenizer) joined with the feature cache."""

from __future__ import annotations

from pathlib import Path

import torch

from .data.features import FeatureSet
from .errors import UserError


class TokenizedSet:
    """Items of a FeatureSet plus their speech tokens: dict(utt_id, speaker, text_ids, mel,
    tokens (T',) long)."""

    def __init__(self, features_path: str | Path, tokens_path: str | Path, with_mel: bool = True):
        self.features = FeatureSet(features_path, with_mel=with_mel)
        payload = torch.load(tokens_path, map_location="cpu", weights_only=False)
        if payload["utt_id"] != list(self.features.utt_ids):
            raise UserError(
                f"{tokens_path}: utterances differ from {features_path}; re-extract the tokens"
            )
        self.tokens: list[torch.Tensor] = payload["tokens"]
        self.fsq_levels = tuple(payload["fsq_levels"])

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, i: int) -> dict:
        item = dict(self.features[i])
        item["tokens"] = self.tokens[i]
        return item

    def token_lengths(self) -> list[int]:
        return [len(t) for t in self.tokens]
