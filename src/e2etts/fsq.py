"""Finite scalar quantization (FSQ; Mentzer et al. 2023, arXiv 2309.15505).

Each of d = len(levels) channels is squashed by tanh to a bounded range holding L_i integer
values, rounded with a straight-through gradient, and rescaled to [-1, 1]. The implicit
codebook is the product grid, size prod(levels); index = mixed-radix number of the digits.

Every consumer of speech tokens in this package reads *code vectors* (B, T, d), never
indices, so that straight-through vectors (joint training) and expectations of a
distribution over the codebook (Gumbel-softmax samples of the LLM) flow through the same
path: `indices_to_vectors`, `probs_to_vectors` and `codebook` convert between views.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class FSQ(nn.Module):
    """FSQ(levels) — e.g. levels=(8, 5, 5, 5) gives 1000 codes of dimension 4.

    forward(z (B, T, d)) -> (vectors (B, T, d) in [-1, 1], indices (B, T) long).
    """

    def __init__(self, levels: tuple[int, ...] | list[int] = (8, 5, 5, 5), eps: float = 1e-3):
        super().__init__()
        levels = tuple(int(v) for v in levels)
        if not levels or min(levels) < 2:
            raise ValueError(f"FSQ levels must be >= 2, got {levels}")
        self.levels = levels
        self.dim = len(levels)
        self.codebook_size = math.prod(levels)
        self.eps = eps
        lv = torch.tensor(levels, dtype=torch.float32)
        # Mixed-radix basis: index = sum_i digit_i * prod(levels[:i]).
        basis = torch.cumprod(torch.tensor((1, *levels[:-1]), dtype=torch.long), dim=0)
        self.register_buffer("_levels", lv, persistent=False)
        self.register_buffer("_basis", basis, persistent=False)
        # Integer codes per channel lie in [-(L//2), (L-1)//2]; divide by L//2 to land in
        # [-1, 1] (odd L: symmetric; even L: e.g. 8 -> {-4..3}/4, max 0.75; 2 -> {-1, 0}).
        self.register_buffer("_half_width", (lv // 2), persistent=False)
        self.register_buffer(
            "_codebook", self.indices_to_vectors(torch.arange(self.codebook_size)), persistent=False
        )

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """Squash z by tanh into an interval whose rounding gives exactly L_i integers.

        Integer codes per channel are {-(L//2), ..., (L-1)//2}: symmetric for odd L, shifted
        by 1/2 for even L (e.g. 8 -> -4..3). The interval is centred on that set (centre c =
        0 or -1/2) with half-width r = (L/2)(1 - eps), i.e. every code, the edge codes too,
        gets an equally wide bin. The paper's variant (r = (L-1)/2 (1 - eps), offset and
        atanh shift) gives the edge codes half-width bins and is NaN for L = 2, hence this
        form. The shift atanh(-c/r) maps z = 0 to code 0, the grid centre.
        """
        c = torch.where(self._levels % 2 == 0, -0.5, 0.0)
        r = self._levels / 2 * (1 - self.eps)
        return c + r * torch.tanh(z + torch.atanh(-c / r))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (B, T, d) -> (vectors (B, T, d), indices (B, T) long).

        vectors equal the rounded codes in the forward pass; their gradient is that of the
        bounded (unrounded) z (straight-through estimator).
        """
        if z.shape[-1] != self.dim:
            raise ValueError(f"FSQ expects last dim {self.dim}, got {z.shape[-1]}")
        vectors, indices = self.quantize(self.bound(z.float()))
        return vectors.type_as(z), indices

    def quantize(self, bounded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """bounded = bound(z) (B, T, d) float -> (vectors (B, T, d) float, indices (B, T)):
        the rounding half of forward, for callers that also need the bounded values (soft
        code distributions, gradients measured before the rounding)."""
        q = bounded + (torch.round(bounded) - bounded).detach()
        vectors = q / self._half_width
        digits = (torch.round(bounded).detach() + self._half_width).long()
        indices = (digits * self._basis).sum(-1)
        return vectors, indices

    def code_log_probs(self, bounded: torch.Tensor, width: float) -> torch.Tensor:
        """A soft code assignment: bounded (B, T, d) -> log P(code) (B, T, K).

        Channel i holds level values v = -(L_i // 2) .. (L_i - 1) // 2 (the integers that
        rounding picks); p_i(v) = softmax_v(-(b_i - v)^2 / (2 width^2)), a Gaussian of
        `width` grid steps around the bounded value, and P(k) = prod_i p_i(digit_i(k)).
        The most likely code is the rounded one (the hard index); P is differentiable in
        `bounded`, so a loss on P moves the tokenizer toward the codes it rewards.
        """
        max_level = max(self.levels)
        values = torch.arange(max_level, device=bounded.device) - self._half_width[:, None]  # (d, Lmax)
        exists = torch.arange(max_level, device=bounded.device) < self._levels[:, None]
        dist = (bounded.float()[..., None] - values) ** 2  # (B, T, d, Lmax)
        logits = (-dist / (2 * width**2)).masked_fill(~exists, float("-inf"))
        log_p = logits.log_softmax(-1)
        digits = (torch.arange(self.codebook_size, device=bounded.device)[:, None] // self._basis) % self._levels.long()
        # log P(k) = sum_i log p_i(digit_i(k)): gather each channel's digit of every code.
        return sum(log_p[..., i, digits[:, i]] for i in range(self.dim))

    def indices_to_vectors(self, indices: torch.Tensor) -> torch.Tensor:
        """indices (...) long -> vectors (..., d) float."""
        digits = (indices[..., None] // self._basis) % self._levels.long()
        return (digits.float() - self._half_width) / self._half_width

    def vectors_to_indices(self, vectors: torch.Tensor) -> torch.Tensor:
        """Hard code vectors (..., d) -> indices (...) long."""
        digits = (torch.round(vectors * self._half_width) + self._half_width).long()
        return (digits * self._basis).sum(-1)

    def codebook(self) -> torch.Tensor:
        """All code vectors, (K, d); row k is indices_to_vectors(k)."""
        return self._codebook

    def probs_to_vectors(self, probs: torch.Tensor) -> torch.Tensor:
        """probs (B, T, K) (one-hot, straight-through one-hot or soft) -> (B, T, d).

        The expectation of the code vector under the distribution; differentiable in probs.
        """
        return probs @ self._codebook.to(probs.dtype)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, codebook_size={self.codebook_size}"
